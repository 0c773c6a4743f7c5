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


def parse_set(items) -> dict:
    """`SECTION.KEY=VALUE` items as nested overrides; VALUE is read as TOML (1e-3, true,
    [1, 2], "text"), and as a plain string when it is not TOML (a path)."""
    import tomllib

    over: dict = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        *sections, leaf = key.strip().split(".")
        node = over
        for sec in sections:
            node = node.setdefault(sec, {})
        node[leaf] = value
    return over


def run(args) -> int:
    from .config import _merge, load_config
    from .train import train

    over: dict = parse_set(args.set)
    if args.max_steps is not None:
        over = _merge(over, {"train": {"max_steps": args.max_steps}})
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
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override a config value, e.g. data.voicebank_root=/data/vb16k, train.bf16=true, "
        'teacher.checkpoints=["teacher.pt"] (repeatable)',
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA if present)"
    )
    p.set_defaults(func=run)
