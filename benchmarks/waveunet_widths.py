"""Band-teacher training speed against the U-Net's width, side by side in one run.

One training step of a band teacher as the SNR study runs it (batch 16 of 16,384-sample
segments, 1/2 MSE, Adam) for the CPU preset (`waveunet_cpu`, width 0.25), twice its width
(`waveunet_cpu_wide`) and the paper's width (`waveunet_snr`), timed in alternation. Prints
seconds per step, the ratio to the CPU preset and the hours one 6,000-step band teacher takes
at that speed. Run: `python benchmarks/waveunet_widths.py [--threads 2] [--rounds 3] [--json F]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from train_speed import interleaved

from sekd.models import build, count_parameters

PRESETS = ("waveunet_cpu", "waveunet_cpu_wide", "waveunet_snr")
TEACHER_STEPS = 6000  # a band teacher's length in the cpu profile (configs/cpu/snr_common.toml)


def make_step(preset: str, batch: int, samples: int):
    torch.manual_seed(0)
    model = build(preset).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    x, c = 0.1 * torch.randn(batch, 1, samples), 0.1 * torch.randn(batch, 1, samples)

    def step():
        loss = 0.5 * F.mse_loss(model(x), c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, count_parameters(model)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (one step each)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--samples", type=int, default=16384)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    steps, params = {}, {}
    for p in PRESETS:
        steps[p], params[p] = make_step(p, a.batch, a.samples)
    times = interleaved(steps, a.rounds)
    base = statistics.median(times[PRESETS[0]])
    rows = []
    for p in PRESETS:
        s = statistics.median(times[p])
        hours = s * TEACHER_STEPS / 3600
        rows.append({"preset": p, "parameters": params[p], "seconds_per_step": s,
                     "ratio_to_cpu": s / base, "teacher_hours": hours})  # fmt: skip
        print(f"{p:18s} {params[p]:>11,d} params  {s:7.2f} s/step  x{s / base:5.1f}  "
              f"{TEACHER_STEPS} steps: {hours:6.1f} h")  # fmt: skip
    out = {"threads": a.threads, "batch": a.batch, "samples": a.samples, "rounds": a.rounds,
           "load_at_start": os.getloadavg(), "rows": rows}  # fmt: skip
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
