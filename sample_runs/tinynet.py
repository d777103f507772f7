"""A tiny NumPy network, synthetic tasks and checkpoint files, shared by the sample scripts.

The sample scripts are ordinary training programs: they know nothing of ecotrain (it finds
the checkpoints they read and write from outside). Everything runs on a CPU in seconds.

Tasks: every task is a regression onto a fixed random "teacher" network. The task named
``base`` uses the base teacher; any other task name uses the base teacher plus a small
perturbation seeded by the name, so a network pretrained on ``base`` is a good start for it
(that is what makes fine-tuning worth it, and what ecotrain's savings are about).

Checkpoints: safetensors (``safetensors.numpy``) when that package is importable, else a
NumPy ``.npz``; both carry a small metadata dict (task, kind, steps, base checkpoint).
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

# These matrices are small: one BLAS thread is faster, and on a busy machine far faster (idle
# BLAS threads spin). Set before NumPy loads; the scripts import NumPy through this module.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

D_IN, HIDDEN, D_OUT = 64, 256, 8
N_TRAIN, N_EVAL = 8192, 2048
PERTURBATION = 0.35  # how far a fine-tuning task's teacher is from the base teacher

try:  # safetensors is optional: fall back to .npz without it
    from safetensors.numpy import load as _st_load
    from safetensors.numpy import save as _st_save

    HAVE_SAFETENSORS = True
except ImportError:
    HAVE_SAFETENSORS = False

EXT = ".safetensors" if HAVE_SAFETENSORS else ".npz"


# --- tasks ------------------------------------------------------------------------------


def _teacher(task: str) -> dict[str, np.ndarray]:
    base = np.random.default_rng(12345)
    teacher = {
        "A": base.normal(0, 1 / np.sqrt(D_IN), (D_IN, 64)),
        "B": base.normal(0, 1 / np.sqrt(64), (64, D_OUT)),
    }
    if task != "base":
        rng = np.random.default_rng(zlib.crc32(task.encode()))
        for key, value in teacher.items():
            teacher[key] = value + PERTURBATION * rng.normal(0, value.std(), value.shape)
    return teacher


def make_task(task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_eval, y_eval) for a task name; the same name, the same data."""
    teacher = _teacher(task)
    rng = np.random.default_rng(zlib.crc32(b"data:" + task.encode()))
    x = rng.normal(0, 1, (N_TRAIN + N_EVAL, D_IN)).astype(np.float32)
    y = np.tanh(x @ teacher["A"]) @ teacher["B"]
    y = (y + 0.01 * rng.normal(0, 1, y.shape)).astype(np.float32)
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


# --- the model --------------------------------------------------------------------------


def init_params(seed: int = 0) -> dict[str, np.ndarray]:
    """A fresh two-layer MLP: tanh(x W1 + b1) W2 + b2."""
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(0, 1 / np.sqrt(D_IN), (D_IN, HIDDEN)).astype(np.float32),
        "b1": np.zeros(HIDDEN, np.float32),
        "w2": rng.normal(0, 1 / np.sqrt(HIDDEN), (HIDDEN, D_OUT)).astype(np.float32),
        "b2": np.zeros(D_OUT, np.float32),
    }


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and the hidden activations (kept for the backward pass)."""
    h = np.tanh(x @ p["w1"] + p["b1"])
    return h @ p["w2"] + p["b2"], h


def loss(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error."""
    pred, _ = forward(p, x)
    return float(np.mean((pred - y) ** 2))


def grads(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the mean squared error with respect to every parameter."""
    pred, h = forward(p, x)
    d_pred = 2.0 * (pred - y) / pred.size
    d_h = (d_pred @ p["w2"].T) * (1.0 - h * h)
    return {
        "w1": x.T @ d_h,
        "b1": d_h.sum(0),
        "w2": h.T @ d_pred,
        "b2": d_pred.sum(0),
    }


class Adam:
    """Plain Adam over a dict of arrays, updated in place."""

    def __init__(self, params: dict[str, np.ndarray], lr: float) -> None:
        self.lr, self.t = lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict[str, np.ndarray], g: dict[str, np.ndarray]) -> None:
        self.t += 1
        b1, b2 = 0.9, 0.999
        scale = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for k in params:
            self.m[k] = b1 * self.m[k] + (1 - b1) * g[k]
            self.v[k] = b2 * self.v[k] + (1 - b2) * g[k] * g[k]
            params[k] -= (scale * self.m[k] / (np.sqrt(self.v[k]) + 1e-8)).astype(np.float32)


def train(
    params: dict[str, np.ndarray],
    task: str,
    steps: int,
    lr: float,
    batch: int = 256,
    seed: int = 0,
    grad_fn=None,
    trainable: dict[str, np.ndarray] | None = None,
    eval_fn=None,
    log_every: int | None = None,
) -> dict:
    """Minibatch Adam on a task; prints losses; returns initial/final eval loss and timing.

    ``trainable`` (default: ``params``) is what the optimiser updates and ``grad_fn(x, y)``
    its gradients; ``eval_fn()`` gives the eval loss. The adapter script passes its own.
    """
    x, y, x_eval, y_eval = make_task(task)
    trainable = params if trainable is None else trainable
    grad_fn = grad_fn or (lambda xb, yb: grads(params, xb, yb))
    eval_fn = eval_fn or (lambda: loss(params, x_eval, y_eval))
    opt = Adam(trainable, lr)
    rng = np.random.default_rng(seed)
    log_every = log_every or max(1, steps // 5)
    start = time.perf_counter()
    initial = eval_fn()
    print(f"step {0:>6}  eval loss {initial:.6f}", flush=True)
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(x), batch)
        opt.step(trainable, grad_fn(x[idx], y[idx]))
        if step % log_every == 0 or step == steps:
            print(f"step {step:>6}  eval loss {eval_fn():.6f}", flush=True)
    final = eval_fn()
    return {
        "task": task,
        "steps": steps,
        "initial_eval_loss": initial,
        "final_eval_loss": final,
        "seconds": round(time.perf_counter() - start, 3),
    }


# --- checkpoints ------------------------------------------------------------------------


def checkpoint_path(out: str) -> Path:
    """The file to write for ``--out``: its suffix follows the format available here."""
    path = Path(out)
    if path.suffix in (".safetensors", ".npz"):
        path = path.with_suffix(EXT)
    elif not path.suffix:
        path = path.with_name(path.name + EXT)
    return path


def save(path: Path, tensors: dict[str, np.ndarray], meta: dict[str, object]) -> Path:
    """Write tensors and a flat metadata dict; returns the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text_meta = {k: json.dumps(v) for k, v in meta.items()}
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    if path.suffix == ".safetensors":
        # Serialise in memory and write with Python's own open(), like torch.save does: the
        # file I/O then goes through Python (its audit hook sees the write).
        path.write_bytes(_st_save(arrays, metadata=text_meta))
    else:
        # np.savez adds .npz itself when missing; write to an open file to keep our name.
        with open(path, "wb") as fh:
            np.savez(fh, __metadata__=np.array(json.dumps(text_meta)), **arrays)
    return path


def load(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Read a checkpoint written by :func:`save` (either format)."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"error: no checkpoint at {path}")
    if path.suffix == ".safetensors":
        if not HAVE_SAFETENSORS:
            raise SystemExit(f"error: reading {path} needs `pip install safetensors`")
        data = path.read_bytes()  # Python's open(), as for the write
        header_len = int.from_bytes(data[:8], "little")  # safetensors: u64 length, JSON header
        text_meta = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
        tensors = _st_load(data)
    else:
        with np.load(path, allow_pickle=False) as data:
            tensors = {k: data[k] for k in data.files if k != "__metadata__"}
            text_meta = json.loads(str(data["__metadata__"])) if "__metadata__" in data else {}
    meta = {k: json.loads(v) for k, v in text_meta.items()}
    return tensors, meta


def report(summary: dict) -> None:
    """The last line of every script: a JSON summary a test or a notebook can parse."""
    print(json.dumps(summary, sort_keys=True), flush=True)


if __name__ == "__main__":
    # `python tinynet.py --ext` tells a shell script which checkpoint suffix will be written.
    import sys

    if sys.argv[1:] == ["--ext"]:
        print(EXT)
    else:
        print(__doc__)
