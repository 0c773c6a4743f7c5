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
