import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_the_cpu_at_toy_size(tmp_path):
    """The GPU check a maintainer runs on CUDA, here on the CPU with toy presets, so it cannot
    rot: every arm steps in float32 and bf16 autocast, the bf16 loss is within tolerance of
    the float32 loss, and a one-process DDP (gloo) step equals the plain step."""
    out = tmp_path / "gpu_check.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny",
         "--steps", "1", "--json", str(out)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(out.read_text())
    assert {(s["arm"], s["dtype"]) for s in report["steps"]} == {
        (a, d) for a in ("teacher", "student") for d in ("float32", "bf16")
    }
    assert all(s["steps_per_s"] > 0 and s["peak_mb"] > 0 for s in report["steps"])
    assert all(a["ok"] for a in report["bf16_vs_float32"])
    assert report["ddp"]["backend"] == "gloo" and report["ddp"]["weights_equal"]


def test_storage_precision_sees_float16_rounding_and_nothing_in_a_float16_model(tmp_path):
    """The float16-storage check on the CPU with a tiny model: a float32 model's rounded copy
    computes something else on every file (finite SI-SDR apart), while a model stored at
    float16 gives equal outputs on every file."""
    import torch

    from sekd.models import build, save_model

    torch.manual_seed(0)
    model = build("waveunet_tiny")
    save_model(model, tmp_path / "full.pt", "waveunet_tiny")
    save_model(model, tmp_path / "half.pt", "waveunet_tiny", dtype="float16")
    out = tmp_path / "p.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "storage_precision.py"),
         str(tmp_path / "full.pt"), str(tmp_path / "half.pt"), "--files", "2",
         "--json", str(out)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    full, half = json.loads(out.read_text())
    assert full["files"] == half["files"] == 2
    assert full["equal_files"] == 0 and full["si_sdr_apart_min_db"] > 0
    assert half["equal_files"] == 2 and half["si_sdr_apart_min_db"] is None
    assert half["pesq_change_max"] == half["stoi_change_max"] == 0.0


def test_deploy_speed_times_every_runtime_side_by_side_at_toy_size(tmp_path):
    """The deployment benchmark at toy size, so it cannot rot: one row per model, runtime and
    thread count, positive real-time factors, a peak memory for each, and the table the docs
    print from it."""
    out = tmp_path / "deploy.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "deploy_speed.py"), "--presets",
         "waveunet_tiny", "--seconds", "1", "--rounds", "1", "--threads", "1",
         "--runtimes", "eager", "onnxruntime", "--json", str(out)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(out.read_text())
    assert {(x["preset"], x["runtime"], x["threads"]) for x in report["rows"]} == {
        ("waveunet_tiny", "eager", 1),
        ("waveunet_tiny", "onnxruntime", 1),
    }
    assert all(x["rtf"] > 0 for x in report["rows"])
    assert set(report["peak_memory_mb"]) == {"waveunet_tiny/eager", "waveunet_tiny/onnxruntime"}
    assert "| waveunet_tiny |" in r.stdout and "ONNX Runtime, 1 thread" in r.stdout
