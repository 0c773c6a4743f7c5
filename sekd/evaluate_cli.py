"""`sekd evaluate --clean DIR --enhanced DIR`: score enhanced files against clean references."""

from __future__ import annotations

import sys
from pathlib import Path

from .data.datasets import match_pairs
from .metrics import MEASURE, METRICS, evaluate_pairs
from .outputs import check_outputs, check_writable
from .results import write_results


def pair_by_name(clean_dir, enhanced_dir) -> list[tuple[str, Path, Path]]:
    """(stem, clean, enhanced) matched by file stem (`match_pairs`); mismatches are errors."""
    pairs = match_pairs(clean_dir, enhanced_dir, labels=("--clean", "--enhanced"))
    return [(c.stem, c, e) for c, e in pairs]


def format_summary(summary: dict) -> str:
    shown = [k for k in METRICS if summary["mean"][k] == summary["mean"][k]]  # not NaN
    head = " ".join(f"{MEASURE[k].title:>12}" for k in shown)
    vals = " ".join(f"{summary['mean'][k]:>12.3f}" for k in shown)
    note = (
        f"means over the {summary['scored']} scored file(s) of {summary['count']}; "
        f"{summary['failed']} failed and are NOT in the means"
        if summary["failed"]
        else f"means over all {summary['count']} file(s)"
    )
    return f"{head}\n{vals}\n{note}"


def check_result_paths(args, pairs) -> None:
    """--json / --csv checked before any scoring: neither an input of this command, nor a
    folder or a link, nor the other one, nor (without --overwrite) an existing file; and their
    folders writable."""
    outputs = [Path(p) for p in (args.json, args.csv) if p]
    inputs = [f for pair in pairs for f in pair[1:]]
    check_outputs(outputs, args.overwrite, inputs=inputs)
    for out in outputs:
        check_writable(out.parent)


def run(args) -> int:
    pairs = pair_by_name(args.clean, args.enhanced)
    if args.noisy:  # the inputs, for the SI-SDR improvement
        matched = match_pairs(args.noisy, args.clean, labels=("--noisy", "--clean"))
        noisy = {c.stem: n for n, c in matched}
        pairs = [(name, c, e, noisy[name]) for name, c, e in pairs]
    check_result_paths(args, pairs)
    rows, summary = evaluate_pairs(pairs, workers=args.workers)
    print(format_summary(summary))
    for r in rows:
        if r["error"]:
            print(f"  failed: {r['name']}: {r['error']}", file=sys.stderr)
    write_results(rows, summary, args.json, args.csv, overwrite=args.overwrite)
    return 1 if summary["failed"] else 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="PESQ, STOI, CSIG/CBAK/COVL, SI-SDR and output gain of enhanced vs clean folders",
    )
    p.add_argument("--clean", required=True, help="folder of clean references")
    p.add_argument("--enhanced", required=True, help="folder of enhanced files (same names)")
    p.add_argument(
        "--noisy", default=None, help="folder of the noisy inputs (same names): adds SI-SDRi"
    )
    p.add_argument("--workers", type=int, default=1, help="processes (one thread each)")
    p.add_argument(
        "--json", default=None, help="write per-file results and means as strict JSON (no NaN)"
    )
    p.add_argument("--csv", default=None, help="write per-file results as CSV")
    p.add_argument(
        "--overwrite", action="store_true", help="allow --json / --csv to replace existing files"
    )
    p.set_defaults(func=run)
