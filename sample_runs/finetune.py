"""Fine-tune a pretrained checkpoint on a second task and save the full weights.

    python sample_runs/finetune.py --init ckpt/base.safetensors --task legal \
        --out ckpt/legal.safetensors --steps 2000

Its first eval loss is that of the loaded weights, so a good start shows at step 0.
"""

from __future__ import annotations

import argparse

import tinynet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", required=True, help="checkpoint to start from")
    ap.add_argument("--task", default="legal", help="task to fine-tune on")
    ap.add_argument("--out", default="ckpt/finetuned.safetensors", help="checkpoint to write")
    ap.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    params, meta = tinynet.load(args.init)
    if meta.get("kind") not in (None, "full"):
        raise SystemExit(f"error: {args.init} is a {meta['kind']} checkpoint, not full weights")
    print(f"fine-tuning {args.init} (task {meta.get('task')!r}) on task {args.task!r}", flush=True)
    summary = tinynet.train(params, args.task, args.steps, args.lr, seed=args.seed)
    path = tinynet.save(
        tinynet.checkpoint_path(args.out),
        params,
        {"kind": "full", "task": args.task, "steps": args.steps, "base": str(args.init)},
    )
    print(f"saved {path}", flush=True)
    tinynet.report({"script": "finetune", "init": str(args.init), "out": str(path), **summary})


if __name__ == "__main__":
    main()
