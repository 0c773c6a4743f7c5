"""Deployment speed on CPU: real-time factor (seconds of compute per second of audio) of
PyTorch eager, PyTorch with `torch.compile` and ONNX Runtime, at 1 and 2 threads, for the small
models and the teachers, measured side by side in one run; plus each one's peak memory.

Every model runs as `sekd enhance` runs it: BatchNorm folded, batch 1, the whole signal (10 s
of real bundled speech by default) in one call. Rounds are interleaved (one call of every model
and runtime per round, the first round a warm-up) so that drift in the machine's load hits them
alike; the median round is reported. Presets without a committed model are timed with their
untrained weights (speed does not depend on the weights). Peak memory is each (model,
runtime)'s peak resident memory (VmHWM) in a fresh process enhancing the same signal at one
thread. Run:
`python benchmarks/deploy_speed.py [--presets ...] [--seconds 10] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sekd.data import Corpus, read_audio
from sekd.enhance import enhance_signal
from sekd.export import OnnxModel, export_onnx
from sekd.models import build, load_model
from sekd.models.fuse import fold_batchnorm
from sekd.outputs import write_text
from sekd.study.readme import deploy_table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["student_1p5gf", "student_5p3gf", "student_8p1gf", "cpu_teacher", "manner_b"]
# the committed model timed for a preset, where the study has one
COMMITTED = {
    "student_1p5gf": ROOT / "checkpoints/cpu/student_mvat_dual_kd/model.pt",
    "cpu_teacher": ROOT / "checkpoints/cpu/teacher/model.pt",
}
RUNTIMES = ("eager", "compile", "onnxruntime")
LOAD_AT_START = os.getloadavg()  # other work on the machine shows here


def speech(seconds: float) -> np.ndarray:
    """`seconds` of real speech: the bundled noisy VoiceBank-DEMAND test files end to end."""
    files = Corpus().select(kind="pair", dataset="voicebank-demand", split="test", role="noisy")
    x = np.concatenate([read_audio(f.path) for f in sorted(files, key=lambda f: f.path.name)])
    n = int(seconds * 16_000)
    return np.resize(x, n).astype(np.float32)


def model_of(preset: str):
    path = COMMITTED.get(preset)
    if path is not None and path.is_file():
        return load_model(path)
    torch.manual_seed(0)
    return build(preset).eval()


def runtime(name: str, model, onnx_path: Path, threads: int):
    """(the model as `name` runs it, None) or (None, the reason it does not run here)."""
    if name == "eager":
        return model, None
    if name == "onnxruntime":
        return OnnxModel(onnx_path, threads=threads), None
    # one compiled graph per model: past dynamo's recompile limit (8 by default, shared by
    # every model of one class) it would fall back to eager without a word
    torch._dynamo.config.recompile_limit = 256
    try:
        return torch.compile(model), None
    except Exception as exc:  # the CPU build lacks a compiler, or the graph breaks
        return None, f"{type(exc).__name__}: {exc}"


def call(fn, x: np.ndarray) -> float:
    t = time.perf_counter()
    enhance_signal(fn, x, level=None)
    return time.perf_counter() - t


def time_all(fns: dict, x: np.ndarray, rounds: int) -> dict:
    """{key: [seconds per round]} over interleaved rounds; the first (warm-up) round dropped."""
    times = {k: [] for k in fns}
    for r in range(rounds + 1):
        for k, fn in fns.items():
            s = call(fn, x)
            if r:
                times[k].append(s)
    return times


MEMORY_SNIPPET = """
import sys, torch, numpy as np
sys.path.insert(0, sys.argv[4])
from deploy_speed import model_of, runtime, speech
from sekd.enhance import enhance_signal
from sekd.models.fuse import fold_batchnorm
torch.set_num_threads(1)
fn, _ = runtime(sys.argv[2], fold_batchnorm(model_of(sys.argv[1])), sys.argv[3], 1)
if fn is None:
    print("nan"); raise SystemExit
enhance_signal(fn, speech(float(sys.argv[5])), level=None)
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0]
print(int(hwm.split()[1]) / 1024)
"""


def peak_mb(preset: str, name: str, onnx_path: Path, seconds: float) -> float:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SNIPPET, preset, name, str(onnx_path),
         str(Path(__file__).parent), str(seconds)],
        capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def measure(presets, seconds, threads_list, rounds, folder: Path, runtimes=RUNTIMES) -> dict:
    x = speech(seconds)
    models = {p: fold_batchnorm(model_of(p)) for p in presets}
    paths = {p: folder / f"{p}.onnx" for p in presets}
    export_s = {}
    for p, m in models.items():
        t = time.perf_counter()
        export_onnx(m, paths[p], p)
        export_s[p] = time.perf_counter() - t
    rows, unavailable = [], {}
    for threads in threads_list:
        torch.set_num_threads(threads)
        fns = {}
        for p, m in models.items():
            for name in runtimes:
                fn, why = runtime(name, m, paths[p], threads)
                if fn is None:
                    unavailable[name] = why
                    continue
                fns[(p, name)] = fn
        times = time_all(fns, x, rounds)
        for (p, name), ts in times.items():
            rows.append({"preset": p, "runtime": name, "threads": threads,
                         "rtf": statistics.median(ts) / seconds, "rtf_min": min(ts) / seconds,
                         "rounds": rounds})  # fmt: skip
    memory = {
        f"{p}/{name}": peak_mb(p, name, paths[p], seconds) for p in presets for name in runtimes
    }
    return {"rows": rows, "peak_memory_mb": memory, "unavailable": unavailable,
            "export_seconds": export_s}  # fmt: skip


def print_table(report: dict) -> None:
    print("\n".join(deploy_table(report)))
    for name, why in report["unavailable"].items():
        print(f"{name}: not run here ({why})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", default=DEFAULT)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = measure(
            args.presets, args.seconds, args.threads, args.rounds, Path(tmp), args.runtimes
        )
    report = {"load_average_at_start": LOAD_AT_START, "args": vars(args),
              "cpus": os.cpu_count(), "torch": torch.__version__, **report}  # fmt: skip
    if args.json:  # first: a long run's figures are kept whatever happens next
        write_text(args.json, json.dumps(report, indent=1))
    print_table(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
