"""Training speed: the student alone vs the student with MV-AT + KD from a teacher, one run.

Target: the distillation overhead per step is at most the teacher's forward time
(without gradient, plain `teacher(x)`) plus 10 %. The forward that keeps every attention view
is timed too, for reference (the objective keeps only the paired blocks'). Prints steps/s,
audio-seconds/s and the overhead ratio. Run:
`python benchmarks/train_speed.py [--student student_1p5gf --teacher cpu_teacher] [--json F]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from sekd.distill import DistillationObjective, ObjectiveConfig
from sekd.models import build


def make_step(objective, opt, x, c):
    def step():
        total, _, _ = objective(x, c)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    return step


def interleaved(fns: dict, rounds: int) -> dict:
    """Seconds per call of each function, timed in alternation (one call of each per round) so
    that drift in the machine's load hits them alike; the first round warms up and is dropped.
    Returns {label: [seconds per round]}."""
    times = {k: [] for k in fns}
    for r in range(rounds + 1):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            if r:
                times[k].append(time.perf_counter() - t)
    return times


LOAD_AT_START = os.getloadavg()  # other work on the machine shows here
BLOCK = 10


def overhead_ratio(seconds: dict) -> float:
    """(distillation step - student step) / teacher forward, from one estimate of each."""
    distill, alone = seconds["student + MV-AT + KD"], seconds["student alone"]
    return (distill - alone) / seconds["teacher forward"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", default="student_1p5gf")
    ap.add_argument("--teacher", default="cpu_teacher")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=20, help="timed rounds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    T = int(args.seconds * 16_000)
    x, c = torch.randn(args.batch, 1, T), 0.5 * torch.randn(args.batch, 1, T)
    teacher = build(args.teacher).eval()
    fns = {}
    for label, cfg in (
        ("student alone", ObjectiveConfig()),
        ("student + MV-AT + KD", ObjectiveConfig(at="mvat", kd=True)),
    ):
        student = build(args.student)
        obj = DistillationObjective(cfg, student, teacher if cfg.needs_teacher else None)
        fns[label] = make_step(obj, torch.optim.Adam(student.parameters(), 1e-3), x, c)

    def teacher_forward():
        with torch.no_grad():
            teacher(x)

    def teacher_forward_views():
        with torch.no_grad():
            teacher(x, return_views=True)

    fns["teacher forward"] = teacher_forward
    fns["teacher forward, all views"] = teacher_forward_views
    times = interleaved(fns, args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    ratio, ratio_min = overhead_ratio(med), overhead_ratio(low)
    # the same ratio over each block of BLOCK consecutive rounds: how much it moves over time
    blocks = [
        overhead_ratio({k: statistics.median(v[i : i + BLOCK]) for k, v in times.items()})
        for i in range(0, args.steps - BLOCK + 1, BLOCK)
    ]
    teacher_fwd = med.pop("teacher forward")
    teacher_views = med.pop("teacher forward, all views")
    results = med
    overhead = results["student + MV-AT + KD"] - results["student alone"]
    audio = args.batch * args.seconds
    for label, s in results.items():
        print(f"{label:<22} {1 / s:7.2f} steps/s  {audio / s:7.2f} audio-s/s")
    print(
        f"teacher forward (no grad): {teacher_fwd:.3f} s; "
        f"with every view kept: {teacher_views:.3f} s"
    )
    print(
        f"distillation overhead {overhead:.3f} s = {ratio:.2f} x teacher forward "
        f"(medians of {args.steps} interleaved rounds; target <= 1.10); from the fastest round "
        f"of each: {ratio_min:.2f} x; "
        f"{overhead / teacher_views:.2f} x the forward with every view"
    )
    if blocks:
        print(
            f"per block of {BLOCK} rounds: {', '.join(f'{b:.2f}' for b in blocks)} "
            f"(min {min(blocks):.2f}, max {max(blocks):.2f})"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "load_average_at_start": LOAD_AT_START,
                    "args": vars(args),
                    "estimator": "median over interleaved rounds (min also stored)",
                    "seconds_per_step": results,
                    "teacher_forward_s": teacher_fwd,
                    "teacher_forward_all_views_s": teacher_views,
                    "overhead_over_teacher_forward_all_views": overhead / teacher_views,
                    "overhead_over_teacher_forward": ratio,
                    "min_seconds": low,
                    "overhead_over_teacher_forward_min": ratio_min,
                    f"overhead_per_block_of_{BLOCK}_rounds": blocks,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
