"""`sekd evaluate --clean DIR --enhanced DIR`: score enhanced files against clean references."""

from __future__ import annotations

from pathlib import Path

from .data.datasets import match_pairs
from .metrics import METRICS, evaluate_pairs
from .results import write_results


def pair_by_name(clean_dir, enhanced_dir) -> list[tuple[str, Path, Path]]:
    """(stem, clean, enhanced) matched by file stem (`match_pairs`); mismatches are errors."""
    pairs = match_pairs(clean_dir, enhanced_dir, labels=("--clean", "--enhanced"))
    return [(c.stem, c, e) for c, e in pairs]


def format_summary(summary: dict) -> str:
    head = " ".join(f"{k.upper():>7}" for k in METRICS)
    vals = " ".join(f"{summary['mean'][k]:>7.3f}" for k in METRICS)
    return f"{head}\n{vals}\nfiles: {summary['count']}, failed: {summary['failed']}"


def run(args) -> int:
    pairs = pair_by_name(args.clean, args.enhanced)
    rows, summary = evaluate_pairs(pairs, workers=args.workers)
    print(format_summary(summary))
    for r in rows:
        if r["error"]:
            print(f"  failed: {r['name']}: {r['error']}")
    write_results(rows, summary, args.json, args.csv)
    return 1 if summary["failed"] else 0


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="PESQ, STOI, CSIG/CBAK/COVL of enhanced vs clean folders")
    p.add_argument("--clean", required=True, help="folder of clean references")
    p.add_argument("--enhanced", required=True, help="folder of enhanced files (same names)")
    p.add_argument("--workers", type=int, default=1, help="processes (one thread each)")
    p.add_argument("--json", default=None, help="write per-file results and means as JSON")
    p.add_argument("--csv", default=None, help="write per-file results as CSV")
    p.set_defaults(func=run)
