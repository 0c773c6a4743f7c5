"""`sekd train --config FILE --out DIR [--resume] [--max-steps N] [--seed S] [--device D]`."""

from __future__ import annotations

import json


def run(args) -> int:
    from .config import load_config
    from .train import train

    over: dict = {}
    if args.max_steps is not None:
        over["train"] = {"max_steps": args.max_steps}
    if args.seed is not None:
        over["seed"] = args.seed
    cfg = load_config(args.config, **over)
    summary = train(cfg, args.out, resume=args.resume, device=args.device)
    print(json.dumps(summary, indent=1))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model from a TOML config (see configs/)")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True, help="run folder (metrics.jsonl, last.pt, best.pt)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--max-steps", type=int, default=None, help="override train.max_steps")
    p.add_argument("--seed", type=int, default=None, help="override the seed")
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA if present)"
    )
    p.set_defaults(func=run)
