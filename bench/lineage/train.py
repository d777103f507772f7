"""A small character-level language model, trained the way nanoGPT's train.py trains:
config by ``--key=value`` flags, token arrays in ``data/<dataset>/{train,val}.bin`` read
through ``np.memmap``, a checkpoint at ``<out_dir>/ckpt.safetensors`` overwritten at every
evaluation, ``--init_from=resume`` continuing from (and overwriting) that same file, and
``--init_from=<folder>`` fine-tuning another run's weights. numpy + safetensors only, so
it runs on any CPU; nothing in it knows about ecotrain.

    python train.py --dataset=docs --out_dir=out --max_iters=1500
    python train.py --dataset=docs --out_dir=out --init_from=resume --max_iters=3000
    python train.py --dataset=typing --out_dir=out-ft --init_from=out --max_iters=600
"""

import math
import os
import sys
import time

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

# -- config (nanoGPT style: globals overridden by --key=value) --------------------------------
dataset = "docs"
out_dir = "out"
init_from = "scratch"  # scratch | resume | <folder holding another run's ckpt.safetensors>
max_iters = 1500
eval_interval = 500
eval_iters = 20
batch_size = 64
block_size = 8
n_embd = 16
n_hidden = 128
learning_rate = 3e-3
weight_decay = 1e-4
seed = 1337
eval_only = False
for arg in sys.argv[1:]:
    key, _, value = arg.lstrip("-").partition("=")
    if key not in globals():
        raise SystemExit(f"unknown config key {key}")
    old = globals()[key]
    globals()[key] = type(old)(value) if not isinstance(old, bool) else value == "True"

rng = np.random.default_rng(seed)
data_dir = os.path.join("data", dataset)
train_data = np.memmap(os.path.join(data_dir, "train.bin"), dtype=np.uint16, mode="r")
val_data = np.memmap(os.path.join(data_dir, "val.bin"), dtype=np.uint16, mode="r")
vocab_size = 256  # bytes


def get_batch(split):
    data = train_data if split == "train" else val_data
    ix = rng.integers(0, len(data) - block_size - 1, batch_size)
    x = np.stack([data[i : i + block_size] for i in ix]).astype(np.int64)
    y = np.array([data[i + block_size] for i in ix], dtype=np.int64)
    return x, y


# -- the model: embeddings -> tanh MLP -> logits, with its backward pass ----------------------
def init_params():
    return {
        "wte": rng.normal(0, 0.3, (vocab_size, n_embd)).astype(np.float32),
        "w1": rng.normal(
            0, 1 / math.sqrt(block_size * n_embd), (block_size * n_embd, n_hidden)
        ).astype(np.float32),
        "b1": np.zeros(n_hidden, dtype=np.float32),
        "w2": rng.normal(0, 1 / math.sqrt(n_hidden), (n_hidden, vocab_size)).astype(np.float32),
        "b2": np.zeros(vocab_size, dtype=np.float32),
    }


def forward(p, x, y):
    emb = p["wte"][x].reshape(len(x), -1)
    h = np.tanh(emb @ p["w1"] + p["b1"])
    logits = h @ p["w2"] + p["b2"]
    logits -= logits.max(1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(1, keepdims=True)
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-9).mean()
    return loss, (emb, h, probs)


def backward(p, x, y, cache):
    emb, h, probs = cache
    d = probs.copy()
    d[np.arange(len(y)), y] -= 1
    d /= len(y)
    g = {"w2": h.T @ d, "b2": d.sum(0)}
    dh = (d @ p["w2"].T) * (1 - h**2)
    g["w1"], g["b1"] = emb.T @ dh, dh.sum(0)
    demb = (dh @ p["w1"].T).reshape(len(x), block_size, n_embd)
    g["wte"] = np.zeros_like(p["wte"])
    np.add.at(g["wte"], x, demb)
    return g


def estimate_loss(p):
    out = {}
    for split in ("train", "val"):
        losses = [forward(p, *get_batch(split))[0] for _ in range(eval_iters)]
        out[split] = float(np.mean(losses))
    return out


# -- init ----------------------------------------------------------------------------------------
iter_num, best_val_loss = 0, 1e9
ckpt_path = os.path.join(out_dir, "ckpt.safetensors")
if init_from == "scratch":
    print("Initializing a new model from scratch")
    params = init_params()
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v_ = {k: np.zeros_like(v) for k, v in params.items()}
elif init_from == "resume":
    print(f"Resuming training from {out_dir}")
    state = load_file(ckpt_path)
    with safe_open(ckpt_path, framework="np") as f:
        meta = f.metadata()
    iter_num, best_val_loss = int(meta["iter_num"]), float(meta["best_val_loss"])
    params = {k: state[k] for k in init_params()}
    m = {k: state[f"adam_m.{k}"] for k in params}
    v_ = {k: state[f"adam_v.{k}"] for k in params}
else:
    print(f"Initializing from the weights in {init_from}")
    state = load_file(os.path.join(init_from, "ckpt.safetensors"))
    params = {k: state[k] for k in init_params()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v_ = {k: np.zeros_like(v) for k, v in params.items()}
os.makedirs(out_dir, exist_ok=True)


def save_checkpoint():
    tensors = dict(params)
    tensors.update({f"adam_m.{k}": x for k, x in m.items()})
    tensors.update({f"adam_v.{k}": x for k, x in v_.items()})
    meta = {"iter_num": str(iter_num), "best_val_loss": str(best_val_loss)}
    print(f"saving checkpoint to {out_dir}")
    save_file(tensors, ckpt_path, metadata=meta)


# -- training loop (AdamW) -------------------------------------------------------------------------
t0 = time.time()
beta1, beta2 = 0.9, 0.99
while True:
    if iter_num % eval_interval == 0:
        losses = estimate_loss(params)
        print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        if iter_num > 0 and not eval_only:
            best_val_loss = min(best_val_loss, losses["val"])
            save_checkpoint()  # always_save_checkpoint: the same file, every evaluation
    if eval_only or iter_num >= max_iters:
        break
    x, y = get_batch("train")
    loss, cache = forward(params, x, y)
    grads = backward(params, x, y, cache)
    t = iter_num + 1
    for k in params:
        m[k] = beta1 * m[k] + (1 - beta1) * grads[k]
        v_[k] = beta2 * v_[k] + (1 - beta2) * grads[k] ** 2
        step = learning_rate * (m[k] / (1 - beta1**t)) / (np.sqrt(v_[k] / (1 - beta2**t)) + 1e-8)
        params[k] = (params[k] * (1 - learning_rate * weight_decay) - step).astype(np.float32)
    iter_num += 1
print(f"done: {iter_num} iterations in {time.time() - t0:.1f} s")
