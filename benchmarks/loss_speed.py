"""The MANNER weighted loss (+ KD) forward and backward: sekd's implementation vs the plain
autograd chain it replaced (one STFT per signal, `.real` / `.imag` magnitudes, autograd through
every term), side by side in one run. Both give the same loss (checked here to 1e-5 relative)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
from train_speed import interleaved  # benchmarks/ is on the path when run as a script

from sekd.losses import STFT_RESOLUTIONS, weighted_losses

LOAD_AT_START = os.getloadavg()


def _plain_mag(x, n_fft, hop, win):
    window = torch.hann_window(win, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, win, window, return_complex=True)
    return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=1e-7))


def _plain_part(est, tgt, est_mags):
    sc = mag = 0.0
    for r, X in zip(STFT_RESOLUTIONS, est_mags):
        Y = _plain_mag(tgt, *r)
        sc = sc + torch.linalg.vector_norm(Y - X, dim=(1, 2)) / torch.linalg.vector_norm(
            Y, dim=(1, 2)
        )
        mag = mag + (torch.log(Y) - torch.log(X)).abs().mean(dim=(1, 2))
    n = len(STFT_RESOLUTIONS)
    return (est - tgt).abs().mean(-1) + 0.5 * sc / n + 0.5 * mag / n


def plain_weighted(est, clean, noisy, mags):
    noise = noisy - clean
    ec, en = clean.pow(2).sum(-1), noise.pow(2).sum(-1)
    a = ec / (ec + en + 2e-7)
    c = _plain_part(est, clean, mags[0])
    n = _plain_part(noisy - est, noise, mags[1])
    return (a * c + (1 - a) * n).mean()


def plain(est, clean, noisy, teacher):
    mags = ([_plain_mag(est, *r) for r in STFT_RESOLUTIONS],
            [_plain_mag(noisy - est, *r) for r in STFT_RESOLUTIONS])  # fmt: skip
    return plain_weighted(est, clean, noisy, mags) + plain_weighted(est, teacher, noisy, mags)


def sekd_loss(est, clean, noisy, teacher):
    sup, kd = weighted_losses(est, [clean, teacher], noisy)  # as DistillationObjective
    return sup.total + kd.total


def main() -> None:
    ap = argparse.ArgumentParser(description="batch of 4 one-second signals, as train_speed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    clean = 0.1 * torch.randn(4, 16_000)
    noisy, teacher = clean + 0.05 * torch.randn(4, 16_000), clean + 0.02 * torch.randn(4, 16_000)
    est = (clean + 0.03 * torch.randn(4, 16_000)).requires_grad_()
    a, b = plain(est, clean, noisy, teacher), sekd_loss(est, clean, noisy, teacher)
    assert torch.allclose(a, b, rtol=1e-5), (a.item(), b.item())
    fns = {
        "plain autograd": lambda: plain(est, clean, noisy, teacher).backward(),
        "sekd": lambda: sekd_loss(est, clean, noisy, teacher).backward(),
    }
    times = interleaved(fns, args.rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    speedup = med["plain autograd"] / med["sekd"]
    for k, v in med.items():
        print(f"{k:<16} {1000 * v:7.1f} ms (supervised + KD loss, forward + backward)")
    print(f"speed-up {speedup:.2f}x (medians of {args.rounds} alternating rounds)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        out = {"load_average_at_start": LOAD_AT_START, "args": vars(args), "median_s": med,
               "speedup": speedup}  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
