"""GPU readiness in one command: a few `paper`-profile steps of the MANNER-B teacher (supervised)
and of the 1.5GF student with MV-AT + KD, in float32 and in bf16 autocast; steps/s and peak
memory of each; a one-process DistributedDataParallel step (NCCL on CUDA, gloo on CPU) that
must give the single-process loss; and the bf16 loss against the float32 loss on the same batch
and weights, within a stated relative tolerance.

    python benchmarks/gpu_check.py                       # CUDA, paper presets, 4 s x batch 4
    python benchmarks/gpu_check.py --device cpu --tiny   # the same checks at toy size (tests)

Writes the figures as JSON with --json (results/benchmarks/gpu_check.json on a GPU machine).
Exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from sekd.data import build_train_set, step_loader
from sekd.device import pick_device
from sekd.distill import DistillationObjective, ObjectiveConfig
from sekd.losses import weighted_loss
from sekd.models import build

BF16_TOLERANCE = 0.05  # relative difference of the bf16-autocast loss to the float32 loss


def batch(tiny: bool, device) -> dict:
    """One training batch of real mixtures (the bundled corpus), 4 x 4 s (tiny: 4 x 0.5 s)."""
    from sekd.config import DataConfig

    seg = 8000 if tiny else 64_000
    cfg = DataConfig(speech_datasets=("ms-snsd-vctk",), noise_datasets=("ms-snsd-noise",),
                     snr_range=(0.0, 15.0), segment=seg, examples_per_epoch=8)  # fmt: skip
    (parts,) = next(iter(step_loader(build_train_set(cfg, 100), 0, 100, 4)))
    return {k: parts[k].to(device) for k in ("mixture", "clean")}


def peak_memory(device) -> float:
    """MB: CUDA's peak allocated memory, or the process's peak resident size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_arm(name: str, tiny: bool, device):
    """(model, loss function of a batch) of one arm: teacher supervised or student MV-AT + KD."""
    torch.manual_seed(0)
    if name == "teacher":
        model = build("tiny_teacher" if tiny else "manner_b").to(device)
        return model, lambda b: weighted_loss(model(b["mixture"]), b["clean"], b["mixture"]).total
    model = build("tiny_student" if tiny else "student_1p5gf").to(device)
    teacher = build("tiny_teacher" if tiny else "manner_b").to(device).eval()
    obj = DistillationObjective(ObjectiveConfig(at="mvat", kd=True), model, teacher)
    return model, lambda b: obj(b["mixture"], b["clean"])[0]


def autocast(device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def steps_per_second(loss_of, params, steps: int, device, context=nullcontext):
    """(steps/s, last loss) of `steps` Adam steps on loss_of(); the first step warms up."""
    opt = torch.optim.Adam(params, 1e-4)
    times = []
    for k in range(steps + 1):
        t0 = time.perf_counter()
        with context():
            loss = loss_of()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if k:
            times.append(time.perf_counter() - t0)
    return len(times) / sum(times), float(loss.detach())


def time_steps(name, tiny, device, bf16, steps, data) -> dict:
    model, loss_of = make_arm(name, tiny, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rate, loss = steps_per_second(
        lambda: loss_of(data), model.parameters(), steps, device, lambda: autocast(device, bf16)
    )
    return {"arm": name, "dtype": "bf16" if bf16 else "float32", "steps_per_s": rate,
            "peak_mb": peak_memory(device), "loss": loss}  # fmt: skip


def first_loss(name, tiny, device, bf16, data) -> float:
    model, loss_of = make_arm(name, tiny, device)
    with torch.no_grad(), autocast(device, bf16):
        return float(loss_of(data))


def ddp_step(tiny, device, data) -> dict:
    """One optimisation step of the student under a one-process DDP group, against the same
    step without DDP: the losses and updated weights must agree."""
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29547")
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        out = {}
        for wrapped in (False, True):
            model, _ = make_arm("student", tiny, device)
            net = model
            if wrapped:
                ids = [device.index or 0] if device.type == "cuda" else None
                net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
            loss = weighted_loss(net(data["mixture"]), data["clean"], data["mixture"]).total
            opt = torch.optim.Adam(model.parameters(), 1e-3)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out[wrapped] = (float(loss), [p.detach().clone() for p in model.parameters()])
        same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(out[False][1], out[True][1]))
        return {"backend": backend, "loss": out[True][0], "loss_single": out[False][0],
                "weights_equal": bool(same and out[True][0] == out[False][0])}  # fmt: skip
    finally:
        dist.destroy_process_group()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="toy presets and 0.5 s segments")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    data = batch(args.tiny, device)
    rows = [
        time_steps(arm, args.tiny, device, bf16, args.steps, data)
        for arm in ("teacher", "student")
        for bf16 in (False, True)
    ]
    agreement = []
    for arm in ("teacher", "student"):
        f32, b16 = (first_loss(arm, args.tiny, device, bf16, data) for bf16 in (False, True))
        rel = abs(b16 - f32) / abs(f32)
        agreement.append({"arm": arm, "loss_float32": f32, "loss_bf16": b16,
                          "relative_difference": rel, "tolerance": BF16_TOLERANCE,
                          "ok": rel <= BF16_TOLERANCE})  # fmt: skip
    ddp = ddp_step(args.tiny, device, data)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report = {"device": str(device), "device_name": name, "torch": torch.__version__,
              "tiny": args.tiny, "steps": rows, "bf16_vs_float32": agreement,
              "ddp": ddp}  # fmt: skip
    for r in rows:
        print(f"{r['arm']:>8} {r['dtype']:>8}: {r['steps_per_s']:7.2f} steps/s, "
              f"peak {r['peak_mb']:8.0f} MB, loss {r['loss']:.4f}")  # fmt: skip
    for a in agreement:
        print(f"{a['arm']:>8} bf16 vs float32 loss: {a['relative_difference']:.2e} relative "
              f"(tolerance {a['tolerance']}): {'ok' if a['ok'] else 'FAIL'}")  # fmt: skip
    print(f"DDP ({ddp['backend']}, 1 process): loss {ddp['loss']:.6f} vs single "
          f"{ddp['loss_single']:.6f}, weights equal: {ddp['weights_equal']}")  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0 if all(a["ok"] for a in agreement) and ddp["weights_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
