"""Train a low-rank delta (LoRA-style) on top of a frozen base; save only the delta.

    python sample_runs/finetune_adapter.py --base ckpt/base.safetensors --task medical \
        --rank 4 --out ckpt/medical-adapter.safetensors --steps 2000

The adapter holds, for each weight matrix W (d_in x d_out), two factors A (d_in x r) and
B (r x d_out); the adapted weight is W + (alpha / r) A B. B starts at zero, so step 0 is
exactly the base model.
"""

from __future__ import annotations

import argparse

import tinynet
from tinynet import np

MATRICES = ("w1", "w2")


def adapted(base: dict[str, np.ndarray], delta: dict[str, np.ndarray], scale: float) -> dict:
    """The base weights with the low-rank delta applied."""
    out = dict(base)
    for name in MATRICES:
        out[name] = base[name] + scale * delta[f"{name}.lora_a"] @ delta[f"{name}.lora_b"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="frozen base checkpoint")
    ap.add_argument("--task", default="medical", help="task to adapt to")
    ap.add_argument("--out", default="ckpt/adapter.safetensors", help="adapter file to write")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()

    base, meta = tinynet.load(args.base)
    rng = np.random.default_rng(args.seed)
    delta: dict[str, np.ndarray] = {}
    for name in MATRICES:
        d_in, d_out = base[name].shape
        delta[f"{name}.lora_a"] = rng.normal(0, 1 / np.sqrt(d_in), (d_in, args.rank)).astype(
            np.float32
        )
        delta[f"{name}.lora_b"] = np.zeros((args.rank, d_out), np.float32)
    scale = args.alpha / args.rank
    _, _, x_eval, y_eval = tinynet.make_task(args.task)

    def grad_fn(xb: np.ndarray, yb: np.ndarray) -> dict[str, np.ndarray]:
        # Chain rule through W = W0 + s·A·B: dA = s·dW·Bᵀ, dB = s·Aᵀ·dW.
        g = tinynet.grads(adapted(base, delta, scale), xb, yb)
        out = {}
        for name in MATRICES:
            a, b = delta[f"{name}.lora_a"], delta[f"{name}.lora_b"]
            out[f"{name}.lora_a"] = scale * g[name] @ b.T
            out[f"{name}.lora_b"] = scale * a.T @ g[name]
        return out

    n_delta = sum(v.size for v in delta.values())
    n_base = sum(v.size for v in base.values())
    print(
        f"adapter rank {args.rank} on {args.base} (task {meta.get('task')!r}) for task "
        f"{args.task!r}: {n_delta} trainable of {n_base} parameters",
        flush=True,
    )
    summary = tinynet.train(
        base,
        args.task,
        args.steps,
        args.lr,
        seed=args.seed,
        grad_fn=grad_fn,
        trainable=delta,
        eval_fn=lambda: tinynet.loss(adapted(base, delta, scale), x_eval, y_eval),
    )
    path = tinynet.save(
        tinynet.checkpoint_path(args.out),
        delta,
        {
            "kind": "adapter",
            "task": args.task,
            "steps": args.steps,
            "base": str(args.base),
            "rank": args.rank,
            "alpha": args.alpha,
        },
    )
    print(f"saved {path} ({n_delta} parameters)", flush=True)
    tinynet.report(
        {"script": "finetune_adapter", "base": str(args.base), "out": str(path), **summary}
    )


if __name__ == "__main__":
    main()
