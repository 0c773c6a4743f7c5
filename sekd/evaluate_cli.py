"""`sekd evaluate --clean DIR --enhanced DIR`: score enhanced files against clean references."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .data.datasets import match_pairs
from .metrics import METRICS, evaluate_pairs


def pair_by_name(clean_dir, enhanced_dir) -> list[tuple[str, Path, Path]]:
    """(stem, clean, enhanced) matched by file stem (`match_pairs`); mismatches are errors."""
    pairs = match_pairs(clean_dir, enhanced_dir, labels=("--clean", "--enhanced"))
    return [(c.stem, c, e) for c, e in pairs]


def write_results(rows: list[dict], summary: dict, json_path=None, csv_path=None) -> None:
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"files": rows, **summary}, indent=1))
    if csv_path:
        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="") as fh:
            extra = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in METRICS]
            extra = [k for k in extra if k not in ("name", "error")]
            w = csv.DictWriter(fh, fieldnames=["name", *METRICS, *extra, "error"])
            w.writeheader()
            w.writerows(rows)


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
