"""Merge fine-tuned checkpoints by weight averaging, and evaluate the merge on their tasks.

    python sample_runs/merge.py ckpt/legal.safetensors ckpt/finance.safetensors \
        -o ckpt/merged.safetensors

All inputs must be full checkpoints of the same shapes (fine-tunes of one base).
"""

from __future__ import annotations

import argparse

import tinynet
from tinynet import np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", help="two or more full checkpoints")
    ap.add_argument("-o", "--out", default="ckpt/merged.safetensors", help="checkpoint to write")
    ap.add_argument("--weights", type=float, nargs="*", help="one per input (default: equal)")
    args = ap.parse_args()
    if len(args.inputs) < 2:
        raise SystemExit("error: merge needs at least two checkpoints")
    weights = np.array(args.weights or [1.0] * len(args.inputs), dtype=np.float64)
    if len(weights) != len(args.inputs) or weights.sum() <= 0:
        raise SystemExit("error: give one positive weight per input")
    weights = weights / weights.sum()

    loaded = [tinynet.load(p) for p in args.inputs]
    keys = set(loaded[0][0])
    for path, (tensors, meta) in zip(args.inputs, loaded, strict=True):
        if meta.get("kind") not in (None, "full") or set(tensors) != keys:
            raise SystemExit(f"error: {path} is not a full checkpoint of the same model")
    merged = {
        k: sum(w * t[k].astype(np.float64) for w, (t, _) in zip(weights, loaded, strict=True))
        for k in sorted(keys)
    }
    merged = {k: v.astype(np.float32) for k, v in merged.items()}

    tasks = [str(meta.get("task", "base")) for _, meta in loaded]
    losses = {}
    for task in dict.fromkeys(tasks):
        _, _, x_eval, y_eval = tinynet.make_task(task)
        each = [tinynet.loss(t, x_eval, y_eval) for t, _ in loaded]
        losses[task] = tinynet.loss(merged, x_eval, y_eval)
        inputs_text = ", ".join(f"{v:.6f}" for v in each)
        print(f"task {task!r}: merged eval loss {losses[task]:.6f} (inputs: {inputs_text})")
    path = tinynet.save(
        tinynet.checkpoint_path(args.out),
        merged,
        {"kind": "full", "task": "+".join(tasks), "steps": 0, "base": list(args.inputs)},
    )
    print(f"saved {path}", flush=True)
    tinynet.report(
        {"script": "merge", "inputs": list(args.inputs), "out": str(path), "eval_loss": losses}
    )


if __name__ == "__main__":
    main()
