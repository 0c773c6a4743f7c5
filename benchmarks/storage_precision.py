"""What storing a model at float16 ([export] dtype = "float16") changes in what it computes: each
checkpoint's model at float32 against the same model with its weights rounded to float16, on
the bundled VoiceBank-DEMAND test pairs, side by side in one run. Per model: the SI-SDR of the
rounded model's output against the float32 model's over the files where they differ (how far
apart the two outputs are), how many files give equal outputs, and the largest change of PESQ
and STOI over the files.

    python benchmarks/storage_precision.py checkpoints/cpu/teacher/model.pt \\
        runs/cpu/snr_teacher1_diverse/last.pt --files 6 \\
        --json results/cpu/diagnostics/storage_precision.json

A checkpoint already stored at float16 gives equal outputs on every file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sekd.data.audio import read_audio
from sekd.enhance import enhance_signal
from sekd.metrics import pesq_wb, si_sdr, stoi
from sekd.models.registry import model_from_state, model_state
from sekd.results import dumps
from sekd.study.scoring import voicebank_pairs
from sekd.train import load_trained


def compare(path, pairs) -> dict:
    full = load_trained(path)
    # the model as a float16 checkpoint holds it (the state save_model writes), read back
    half = model_from_state(model_state(full, dtype="float16")).eval()
    apart, equal, d_pesq, d_stoi = [], 0, [], []
    for _, noisy, clean in pairs:
        x, c = read_audio(noisy), read_audio(clean)
        with torch.no_grad():
            a = enhance_signal(full, x).astype(np.float64)
            b = enhance_signal(half, x).astype(np.float64)
        if np.array_equal(a, b):
            equal += 1
        else:
            apart.append(si_sdr(a, b))
        d_pesq.append(abs(pesq_wb(c, b) - pesq_wb(c, a)))
        d_stoi.append(abs(stoi(c, b) - stoi(c, a)))
    return {
        "checkpoint": str(path),
        "files": len(pairs),
        "equal_files": equal,
        "si_sdr_apart_min_db": float(min(apart)) if apart else None,
        "si_sdr_apart_median_db": float(np.median(apart)) if apart else None,
        "pesq_change_max": float(max(d_pesq)),
        "stoi_change_max": float(max(d_stoi)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--files", type=int, default=6, help="VoiceBank-DEMAND test pairs to use")
    ap.add_argument("--json", type=Path, help="write the rows here as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    pairs = voicebank_pairs(limit=args.files)
    rows = [compare(p, pairs) for p in args.checkpoints]
    for r in rows:
        apart = (
            f"{r['si_sdr_apart_min_db']:.1f} dB apart at least "
            f"(median {r['si_sdr_apart_median_db']:.1f})"
            if r["si_sdr_apart_min_db"] is not None
            else "equal"
        )
        print(
            f"{r['checkpoint']}: outputs {apart}, equal on {r['equal_files']} file(s); "
            f"|PESQ change| <= "
            f"{r['pesq_change_max']:.4f}, |STOI change| <= {r['stoi_change_max']:.4f} "
            f"over {r['files']} files"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
