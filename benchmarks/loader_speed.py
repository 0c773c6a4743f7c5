"""Input pipeline vs model: examples/s the training loader delivers with 0, 1 and 2 worker
processes, beside the examples/s a training step consumes, for the `paper` and `cpu` presets,
measured side by side in one run. The loader must outrun the model or the device waits.

    python benchmarks/loader_speed.py [--device cuda] [--steps 5] [--json F]

The paper profile reads VoiceBank-DEMAND windows (a file read per example); here both presets
mix the bundled corpus on the fly at their own segment length (4 s paper, 1 s cpu), which costs
more per example than reading a prepared window.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from sekd.config import DataConfig
from sekd.data import build_train_set, step_loader
from sekd.device import pick_device
from sekd.losses import weighted_loss
from sekd.models import build

sys.path.insert(0, str(Path(__file__).parent))
from gpu_check import steps_per_second  # noqa: E402

PRESETS = {"paper": ("manner_b", 64_000), "cpu": ("cpu_teacher", 16_000)}


def loader_rate(segment: int, workers: int, batches: int, batch: int = 4) -> float:
    cfg = DataConfig(speech_datasets=("ms-snsd-vctk",), noise_datasets=("ms-snsd-noise",),
                     snr_range=(0.0, 15.0), segment=segment,
                     examples_per_epoch=batch * (batches + 2))  # fmt: skip
    ds = build_train_set(cfg, 0)
    it = iter(step_loader(ds, 0, 0, batch, num_workers=workers))
    next(it)  # workers started, first batch out
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t0)


def model_rate(preset: str, segment: int, device, steps: int, batch: int = 4) -> float:
    """Examples/s of supervised training steps of `preset` on `device`."""
    torch.manual_seed(0)
    model = build(preset).to(device)
    x = torch.randn(batch, 1, segment, device=device) * 0.1
    rate, _ = steps_per_second(
        lambda: weighted_loss(model(x), 0.5 * x, x).total, model.parameters(), steps, device
    )
    return rate * batch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=None, help="default: CUDA if present, else CPU")
    ap.add_argument("--steps", type=int, default=3, help="model steps timed per preset")
    ap.add_argument("--batches", type=int, default=20, help="loader batches timed")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    rows = []
    for profile, (preset, segment) in PRESETS.items():
        row = {"profile": profile, "preset": preset, "segment": segment, "device": str(device),
               "model_examples_per_s": model_rate(preset, segment, device, args.steps)}  # fmt: skip
        for w in (0, 1, 2):
            row[f"loader_{w}_workers_examples_per_s"] = loader_rate(segment, w, args.batches)
        rows.append(row)
        print(
            f"{profile:>5} ({preset}, {segment / 16000:g} s): model consumes "
            f"{row['model_examples_per_s']:8.1f} ex/s on {device}; loader delivers "
            + ", ".join(
                f"{row[f'loader_{w}_workers_examples_per_s']:.1f} ({w} workers)" for w in (0, 1, 2)
            )  # fmt: skip
            + f" ex/s: ratio loader(0 workers)/model "
            f"{row['loader_0_workers_examples_per_s'] / row['model_examples_per_s']:.1f}x"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
