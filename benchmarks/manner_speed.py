"""MANNER forward speed on CPU: fast path vs a literal transcription, real-time factors, memory.

The fast path is the inference path of `sekd enhance` / `evaluate_model`: depthwise convolutions
as channels-last Conv2d, BatchNorm folded into the convolutions, unfold/fold chunking, fused
attention. The literal path is the spec as written: plain depthwise Conv1d, loop chunking,
explicit softmax attention, separate BatchNorm.

Prints, per preset, seconds of compute per second of audio (RTF) for 1 and 2 threads at 1 s and
8 s inputs (batch 1), the fast path beside the literal one (loop chunking, explicit softmax
attention) measured in the same run, and peak memory of enhancing 60 s with and without
chunking (each in a fresh process, measured as its peak resident memory, VmHWM). Run:
`python benchmarks/manner_speed.py [--presets ...] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from sekd.models import build
from sekd.models.fuse import fold_batchnorm
from sekd.models.manner import set_channels_last_depthwise, set_literal

DEFAULT = [
    "student_1p5gf",
    "student_5p3gf",
    "student_8p1gf",
    "cpu_teacher",
    "manner_s_38gf",
    "manner_b",
]


def timed(model, x, reps: int) -> float:
    with torch.no_grad():
        model(x)
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t)
    return best


# Peak memory is VmHWM of the child: ru_maxrss would be wrong here, because Linux carries it
# across execve, so a child started from this (large) process would report our peak.
MEMORY_SNIPPET = """
import sys, numpy as np, torch
from sekd.enhance import enhance_signal
from sekd.models import build
from sekd.models.fuse import fold_batchnorm
from sekd.models.manner import set_channels_last_depthwise
torch.set_num_threads(2)
m = build(sys.argv[1]).eval()
x = np.random.default_rng(0).normal(0, 0.1, 60 * 16000).astype(np.float32)
chunk = None if sys.argv[2] == "none" else int(float(sys.argv[2]) * 16000)
enhance_signal(m, x, chunk=chunk)
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0]
print(int(hwm.split()[1]) / 1024)
"""


def peak_mb(preset: str, chunk: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SNIPPET, preset, chunk],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


LOAD_AT_START = os.getloadavg()  # other work on the machine shows here


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=DEFAULT)
    ap.add_argument("--seconds", nargs="+", type=float, default=[1.0, 8.0])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--memory-preset", default="student_1p5gf")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    print(f"{'preset':<15} {'thr':>3} {'sec':>4} {'fast RTF':>9} {'literal RTF':>12} {'saving':>7}")
    for preset in args.presets:
        # literal: plain depthwise Conv1d, separate BatchNorm, loop chunking, explicit softmax
        model = set_literal(set_channels_last_depthwise(build(preset).eval(), False), True)
        # fast, the inference path: channels-last depthwise, BN folded, unfold/fold, SDPA
        fast_model = set_literal(set_channels_last_depthwise(fold_batchnorm(model), True), False)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for sec in args.seconds:
                x = torch.randn(1, 1, int(sec * 16000))
                fast = timed(fast_model, x, args.reps)
                lit = timed(model, x, args.reps)
                row = {
                    "preset": preset,
                    "threads": threads,
                    "seconds": sec,
                    "fast_rtf": fast / sec,
                    "literal_rtf": lit / sec,
                    "time_saving": 1 - fast / lit,
                }
                rows.append(row)
                print(
                    f"{preset:<15} {threads:>3} {sec:>4.0f} {row['fast_rtf']:>9.4f} "
                    f"{row['literal_rtf']:>12.4f} {100 * row['time_saving']:>6.1f}%"
                )
    mem = {c: peak_mb(args.memory_preset, c) for c in ("none", "10")}
    print(
        f"peak memory (VmHWM), 60 s with {args.memory_preset}: whole file {mem['none']:.0f} MB, "
        f"10 s chunks {mem['10']:.0f} MB"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "load_average_at_start": LOAD_AT_START,
                    "rows": rows,
                    "peak_memory_mb_60s": mem,
                    "memory_preset": args.memory_preset,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
