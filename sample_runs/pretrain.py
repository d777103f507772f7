"""Pretrain a small MLP on the synthetic ``base`` task and save a checkpoint.

    python sample_runs/pretrain.py --out ckpt/base.safetensors --steps 6000

Under ecotrain:  ecotrain run --project demo -- python sample_runs/pretrain.py --out ...
(writes .npz instead of .safetensors when the safetensors package is not installed).
"""

from __future__ import annotations

import argparse

import tinynet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="ckpt/base.safetensors", help="checkpoint to write")
    ap.add_argument("--steps", type=int, default=6000, help="optimiser steps")
    ap.add_argument("--task", default="base", help="task name (default: base)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    params = tinynet.init_params(args.seed)
    print(f"pretraining on task {args.task!r} for {args.steps} steps", flush=True)
    summary = tinynet.train(params, args.task, args.steps, args.lr, seed=args.seed)
    path = tinynet.save(
        tinynet.checkpoint_path(args.out),
        params,
        {"kind": "full", "task": args.task, "steps": args.steps, "base": None},
    )
    print(f"saved {path}", flush=True)
    tinynet.report({"script": "pretrain", "out": str(path), **summary})


if __name__ == "__main__":
    main()
