"""How to spend this machine's cores on the study: for the teacher and each student arm of the
cpu profile, training steps/s of one process with 2 threads against two concurrent processes
with 1 thread each (their summed steps/s), measured side by side in one run on real batches.
The SNR study's runs (band teacher 1 at both widths, S1) are arms too: `--arms` picks some.

    python benchmarks/study_throughput.py [--steps 20] [--arms A B ...] [--json FILE]

Pause other work on the machine while it runs (it measures the whole machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARMS = {
    "teacher": "teacher.toml",
    "student_baseline": "student_baseline.toml",
    "student_mvat_dual_q1": "student_mvat_dual_q1.toml",
    "student_mvat_dual_kd": "student_mvat_dual_kd.toml",
    "snr_teacher1": "snr_teacher1.toml",
    "snr_teacher1_wide": "snr_teacher1_wide.toml",
    "snr_s1": "snr_s1.toml",
}


def worker(config: str, teacher: str, steps: int) -> None:
    """Run `steps` optimisation steps of a config and print steps/s (the first 2 warm up)."""
    import torch

    from sekd.config import load_config
    from sekd.data import build_train_set, step_loader
    from sekd.models import build
    from sekd.train import TrainingObjective

    cfg = load_config(ROOT / "configs" / "cpu" / config)
    if cfg.teacher.checkpoints:  # a distilled arm: an untrained teacher of the profile's preset
        cfg = load_config(ROOT / "configs" / "cpu" / config, teacher={"checkpoints": [teacher]})
    torch.manual_seed(0)
    model = build(cfg.model.preset)
    obj = TrainingObjective(cfg, model, torch.device("cpu"))
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    ds = build_train_set(cfg.data, cfg.seed)
    batches = iter(step_loader(ds, 0, cfg.seed, cfg.train.batch_size))
    for k in range(steps + 2):
        if k == 2:
            t0 = time.perf_counter()
        (parts,) = next(batches)
        total, _ = obj(parts)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - t0)}))


def launch(config, teacher, steps, threads):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", config, "--teacher", teacher, "--steps", str(steps)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def rate(proc) -> float:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"worker failed ({proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])["steps_per_s"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", default=None)
    ap.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--teacher", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.teacher, args.steps)
        return 0
    from sekd.models import build, save_model

    with tempfile.TemporaryDirectory() as tmp:
        teacher = str(save_model(build("cpu_teacher"), Path(tmp) / "teacher.pt"))
        rows = []
        for arm in args.arms:
            config = ARMS[arm]
            one = rate(launch(config, teacher, args.steps, 2))
            pair = [launch(config, teacher, args.steps, 1) for _ in range(2)]
            two = [rate(p) for p in pair]
            row = {"arm": arm, "one_process_2_threads": one, "two_processes_1_thread": two,
                   "two_processes_total": sum(two),
                   "ratio_two_over_one": sum(two) / one}  # fmt: skip
            rows.append(row)
            print(f"{arm:<22} 1 x 2 threads: {one:5.2f} steps/s | 2 x 1 thread: "
                  f"{two[0]:5.2f} + {two[1]:5.2f} = {sum(two):5.2f} steps/s | "
                  f"ratio {row['ratio_two_over_one']:.2f}x")  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
