"""Training losses: MANNER weighted L1 + multi-resolution STFT, output KD, the SNR-teacher loss.

Definitions: shared/docs/manner.md (training recipe) and methods.md sections 3-4. Every loss
takes waveforms of shape (B, 1, T) or (B, T) and checks them; parts are returned by name
because the notebooks plot them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# (n_fft, hop, window) of the three resolutions, as in the MANNER / DEMUCS recipe.
STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))
WEIGHT_EPS = 2e-7


def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    """(B, 1, T) or (B, T) -> (B, T)."""
    if x.dim() == 3 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() == 2:
        return x
    raise ValueError(f"{name}: expected a (B, 1, T) or (B, T) waveform, got shape {tuple(x.shape)}")


def _check_same(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """(B, T) -> (B, F, frames): sqrt(clamp(re^2 + im^2, 1e-7)) with a Hann window."""
    window = torch.hann_window(win, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, win, window, return_complex=True)
    return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=1e-7))


def mrstft_loss(
    estimate: torch.Tensor, target: torch.Tensor, resolutions=STFT_RESOLUTIONS, estimate_mags=None
):
    """Per-example spectral convergence and log-magnitude L1, each averaged over resolutions.

    Shape: estimate, target (B, 1, T) or (B, T) -> (sc, mag), each (B,). The MANNER loss uses
    0.5 * sc + 0.5 * mag. `estimate_mags` (one magnitude per resolution) skips recomputing the
    estimate's STFTs when several losses share the same estimate.
    """
    est, tgt = _as_batch(estimate, "estimate"), _as_batch(target, "target")
    _check_same(est, tgt, "mrstft_loss(estimate, target)")
    if estimate_mags is None:
        estimate_mags = magnitudes(est, resolutions)
    sc = est.new_zeros(est.shape[0])
    mag = est.new_zeros(est.shape[0])
    for (n_fft, hop, win), X in zip(resolutions, estimate_mags):
        Y = stft_magnitude(tgt, n_fft, hop, win)
        sc = sc + torch.linalg.vector_norm(Y - X, dim=(1, 2)) / torch.linalg.vector_norm(
            Y, dim=(1, 2)
        )
        mag = mag + (torch.log(Y) - torch.log(X)).abs().mean(dim=(1, 2))
    return sc / len(resolutions), mag / len(resolutions)


def magnitudes(x: torch.Tensor, resolutions=STFT_RESOLUTIONS) -> list[torch.Tensor]:
    """STFT magnitudes of (B, T) or (B, 1, T) signals at every resolution."""
    x = _as_batch(x, "signal")
    return [stft_magnitude(x, *r) for r in resolutions]


def estimate_magnitudes(estimate: torch.Tensor, noisy: torch.Tensor) -> dict:
    """The student-side magnitudes the weighted loss needs (estimate and noisy - estimate);
    shared by the supervised loss and KD, which differ only in their targets."""
    est, nsy = _as_batch(estimate, "estimate"), _as_batch(noisy, "noisy")
    return {"clean": magnitudes(est), "noise": magnitudes(nsy - est)}


@dataclass
class LossParts:
    """total (scalar) and per-example parts (B,): l1, sc, mag of the clean and noise sides."""

    total: torch.Tensor
    clean: torch.Tensor
    noise: torch.Tensor
    weight: torch.Tensor
    l1: torch.Tensor
    sc: torch.Tensor
    mag: torch.Tensor

    def scalars(self, prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}{k}": float(getattr(self, k).detach().mean())
            for k in ("total", "clean", "noise", "weight", "l1", "sc", "mag")
        }


def _l1_mrstft(estimate: torch.Tensor, target: torch.Tensor, estimate_mags=None):
    l1 = (estimate - target).abs().mean(-1)  # (B,)
    sc, mag = mrstft_loss(estimate, target, estimate_mags=estimate_mags)
    return l1 + 0.5 * sc + 0.5 * mag, l1, sc, mag


def weighted_loss(
    estimate: torch.Tensor, clean: torch.Tensor, noisy: torch.Tensor, estimate_mags=None
) -> LossParts:
    """The MANNER supervised loss (manner.md, training recipe).

    clean loss = L1 + MR-STFT on (clean, estimate); noise loss = the same on (noisy - clean,
    noisy - estimate); per example a = E_clean / (E_clean + E_noise + 2e-7); the total is the
    batch mean of a * clean + (1 - a) * noise. The reported l1/sc/mag are the same weighting of
    their clean and noise parts. `estimate_mags` (from `estimate_magnitudes`) is reused if given.

    Shape: estimate, clean, noisy (B, 1, T) or (B, T) -> LossParts.
    """
    est, cln, nsy = (
        _as_batch(t, n) for t, n in ((estimate, "estimate"), (clean, "clean"), (noisy, "noisy"))
    )
    _check_same(est, cln, "weighted_loss(estimate, clean)")
    _check_same(est, nsy, "weighted_loss(estimate, noisy)")
    noise, noise_est = nsy - cln, nsy - est
    e_clean, e_noise = cln.pow(2).sum(-1), noise.pow(2).sum(-1)
    a = e_clean / (e_clean + e_noise + WEIGHT_EPS)  # (B,)
    em = estimate_mags or {"clean": None, "noise": None}
    c_total, c_l1, c_sc, c_mag = _l1_mrstft(est, cln, em["clean"])
    n_total, n_l1, n_sc, n_mag = _l1_mrstft(noise_est, noise, em["noise"])
    mix = lambda c, n: a * c + (1 - a) * n  # noqa: E731
    return LossParts(
        total=mix(c_total, n_total).mean(),
        clean=c_total,
        noise=n_total,
        weight=a,
        l1=mix(c_l1, n_l1),
        sc=mix(c_sc, n_sc),
        mag=mix(c_mag, n_mag),
    )


def kd_loss(
    student_out: torch.Tensor, teacher_out: torch.Tensor, noisy: torch.Tensor, estimate_mags=None
) -> LossParts:
    """Output KD (methods.md section 3): the weighted loss with the teacher's output as the clean
    target and (noisy - teacher) as the noise target. The teacher side carries no gradient."""
    return weighted_loss(student_out, teacher_out.detach(), noisy, estimate_mags)


def snr_teacher_loss(student_out, teacher_out, clean, alpha: float = 0.5):
    """alpha * 1/2 * mse(student, teacher) + (1 - alpha) * 1/2 * mse(student, clean).

    methods.md section 4; mse averages over samples and the batch. Returns (total, parts) with
    parts {"teacher": mse to teacher, "clean": mse to clean}.
    """
    s = _as_batch(student_out, "student_out")
    t = _as_batch(teacher_out, "teacher_out").detach()
    c = _as_batch(clean, "clean")
    _check_same(s, t, "snr_teacher_loss(student, teacher)")
    _check_same(s, c, "snr_teacher_loss(student, clean)")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    m_t, m_c = F.mse_loss(s, t), F.mse_loss(s, c)
    return alpha * 0.5 * m_t + (1 - alpha) * 0.5 * m_c, {"teacher": m_t, "clean": m_c}
