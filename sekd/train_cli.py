"""`sekd train --config FILE --out DIR [--resume | --overwrite] [--max-steps N] [--seed S]
[--device D]`."""

from __future__ import annotations

import argparse
import json


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def run(args) -> int:
    from .config import load_config
    from .train import train

    over: dict = {}
    if args.max_steps is not None:
        over["train"] = {"max_steps": args.max_steps}
    if args.seed is not None:
        over["seed"] = args.seed
    cfg = load_config(args.config, **over)
    summary = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite, device=args.device)
    print(json.dumps(summary, indent=1))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model from a TOML config (see configs/)")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True, help="run folder (metrics.jsonl, last.pt, best.pt)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the run in OUT (last.pt)")
    mode.add_argument(
        "--overwrite", action="store_true", help="replace a run that OUT already holds"
    )
    p.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="optimisation steps (>= 1); default: the config's train.max_steps, or "
        "train.epochs full epochs when that is 0",
    )
    p.add_argument("--seed", type=int, default=None, help="override the seed")
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA if present)"
    )
    p.set_defaults(func=run)
