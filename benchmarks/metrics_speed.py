"""Seconds per utterance of each metric, and evaluate_pairs throughput with 1 and 2 workers.

Targets: all metrics together <= 1.6 x PESQ alone per file; 2 workers >= 1.8 x the
throughput of 1. Run:
`python benchmarks/metrics_speed.py [--json results/benchmarks/metrics_speed.json]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sekd.data import Corpus, read_audio  # noqa: E402
from sekd.metrics import composite, evaluate_pairs, pesq_wb, score, stoi  # noqa: E402

LOAD_AT_START = os.getloadavg()  # other work on the machine shows here


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    nd, cd = Corpus().pair_dirs("voicebank_demand", "test")
    files = sorted(cd.iterdir())
    data = [(read_audio(f), read_audio(nd / f.name)) for f in files]
    fns = {
        "pesq": lambda c, e: pesq_wb(c, e),
        "stoi": lambda c, e: stoi(c, e),
        "composite (given PESQ)": lambda c, e: composite(c, e, pesq_score=2.0),
        "all (score)": lambda c, e: score(c, e),
    }
    for fn in fns.values():
        fn(*data[0])
    # rounds in alternation, so drift in the machine's load hits every metric alike; the
    # fastest round of each is its cost
    per = {k: float("inf") for k in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            for c, e in data:
                fn(c, e)
            per[name] = min(per[name], (time.perf_counter() - t) / len(data))
    # the set three times, so pool start-up does not dominate a one-second run
    pairs = [(f"{f.stem}_{k}", f, nd / f.name) for k in range(3) for f in files]
    thr = {1: 0.0, 2: 0.0}
    for _ in range(args.rounds):  # alternating again; the best round of each
        for w in thr:
            t = time.perf_counter()
            evaluate_pairs(pairs, workers=w, progress=False)
            thr[w] = max(thr[w], len(pairs) / (time.perf_counter() - t))
    out = {
        "load_average_at_start": LOAD_AT_START,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "files": len(files),
        "seconds_per_file": per,
        "all_over_pesq": per["all (score)"] / per["pesq"],
        "files_per_second": {str(k): v for k, v in thr.items()},
        "speedup_2_over_1": thr[2] / thr[1],
    }
    for k, v in per.items():
        print(f"{k:<24} {1000 * v:8.1f} ms / file")
    print(f"all metrics / PESQ alone: {out['all_over_pesq']:.2f}x (target <= 1.6x)")
    print(
        f"evaluate_pairs: 1 worker {thr[1]:.2f} files/s, 2 workers {thr[2]:.2f} files/s, "
        f"speed-up {out['speedup_2_over_1']:.2f}x (target >= 1.8x)"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
