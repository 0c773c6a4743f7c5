"""Training losses: MANNER weighted L1 + multi-resolution STFT, output KD, the SNR-teacher loss.

Definitions: docs/method.md sections 3-5. Every loss
takes waveforms of shape (B, 1, T) or (B, T) and checks them; parts are returned by name
because the notebooks plot them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

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


@functools.lru_cache(maxsize=32)
def _hann(win: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.hann_window(win, device=device, dtype=dtype)


def stft(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """(B, T) -> complex (B, F, frames), Hann window of `win` samples, centred frames."""
    return torch.stft(x, n_fft, hop, win, _hann(win, x.device, x.dtype), return_complex=True)


class _Magnitude(torch.autograd.Function):
    """sqrt(clamp(re^2 + im^2, 1e-7)) with a hand-written backward: the same values and
    gradients as the autograd chain (tested bitwise), three times faster, because the chain's
    backward builds complex zero tensors and reduces over a size-2 axis."""

    @staticmethod
    def forward(ctx, spec):
        power = _power(spec)
        mag = power.clamp(min=1e-7).sqrt_()
        ctx.save_for_backward(spec, mag, power)
        return mag

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        spec, mag, power = ctx.saved_tensors
        # d|z| / d(re, im) = (re, im) / |z| where unclamped; PyTorch's complex gradient
        # convention is dL/dre + i dL/dim
        return spec * (grad / mag).masked_fill_(power <= 1e-7, 0.0)


def _power(spec: torch.Tensor) -> torch.Tensor:
    """re^2 + im^2 of a complex tensor, as the chain `.real**2 + .imag**2` rounds it."""
    r = torch.view_as_real(spec)
    re, im = r[..., 0], r[..., 1]
    return (re * re).add_(im * im)


def magnitude(spec: torch.Tensor) -> torch.Tensor:
    """sqrt(clamp(re^2 + im^2, 1e-7)) of a complex spectrogram (real output, same shape)."""
    return _Magnitude.apply(spec)


def _target_magnitude(spec: torch.Tensor) -> torch.Tensor:
    """`magnitude` without gradient, overwriting `spec` (a temporary) to save allocations:
    bitwise the same values. Targets are computed this way on every step."""
    r = torch.view_as_real(spec)
    r.mul_(r)
    return torch.add(r[..., 0], r[..., 1]).clamp_min_(1e-7).sqrt_()


def spectra(x: torch.Tensor, resolutions=STFT_RESOLUTIONS) -> list[torch.Tensor]:
    """Complex STFTs of (B, T) or (B, 1, T) signals at every resolution."""
    x = _as_batch(x, "signal")
    return [stft(x, *r) for r in resolutions]


def mrstft_loss(
    estimate: torch.Tensor,
    target: torch.Tensor,
    resolutions=STFT_RESOLUTIONS,
    estimate_mags=None,
    target_mags=None,
):
    """Per-example spectral convergence and log-magnitude L1, each averaged over resolutions.

    Shape: estimate, target (B, 1, T) or (B, T) -> (sc, mag), each (B,). The MANNER loss uses
    0.5 * sc + 0.5 * mag. `estimate_mags` / `target_mags` (one magnitude per resolution) skip
    the STFTs of that side when several losses share them. The target carries no gradient.
    """
    est, tgt = _as_batch(estimate, "estimate"), _as_batch(target, "target")
    _check_same(est, tgt, "mrstft_loss(estimate, target)")
    if estimate_mags is None:
        estimate_mags = magnitudes(est, resolutions)
    if target_mags is None:
        target_mags = magnitudes(tgt, resolutions)
    sc, mag = _mrstft(_estimate_terms(estimate_mags), _target_terms(target_mags))
    return sc[0], mag[0]


def _estimate_terms(mags):
    """(X, log X) per resolution; log X carries no graph (`_SpectralDistance` differentiates
    through X), so one log serves every loss that compares X to a target."""
    return [(X, torch.log(X.detach())) for X in mags]


def _target_terms(mags):
    """(Y, ||Y||) per resolution, without gradient."""
    return [(Y, torch.linalg.vector_norm(Y, dim=(1, 2))) for Y in (m.detach() for m in mags)]


class _SpectralDistance(torch.autograd.Function):
    """Per target k and example b, (K, B) each: spectral convergence ||Y_k - X||_F / ||Y_k||_F
    and mean |log Y_k - log X|, with a hand-written backward (the gradient reaches X only).
    Targets come as flat (Y, ||Y||) pairs. Same values as the autograd chain; gradients equal
    to rounding (tested), in about half the passes over memory and few new tensors: one
    gradient for all K targets (the supervised loss and KD share X), and log Y only inside
    the forward, since sign(log Y - log X) = sign(Y - X) is all the backward needs of it."""

    @staticmethod
    def forward(ctx, X, log_x, *targets):
        diffs, norm_d, sc, mag = [], [], [], []
        for Y, norm_y in zip(targets[0::2], targets[1::2]):
            diffs.append(Y - X)
            norm_d.append(torch.linalg.vector_norm(diffs[-1], dim=(1, 2)))
            sc.append(norm_d[-1] / norm_y)
            mag.append(torch.log(Y).sub_(log_x).abs_().mean(dim=(1, 2)))
        norm_d, norm_y = torch.stack(norm_d), torch.stack(targets[1::2])
        ctx.save_for_backward(X, norm_d, norm_y, *diffs)
        return torch.stack(sc), torch.stack(mag)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_sc, g_mag):
        X, norm_d, norm_y, *diffs = ctx.saved_tensors
        # d sc_k / dX = -(Y_k - X) / (||Y_k - X|| ||Y_k||), zero where X == Y_k (as autograd)
        a = torch.where(norm_d > 0, -g_sc / (norm_d * norm_y), 0.0)[..., None, None]
        # d mag_k / dX = -sign(log Y_k - log X) / (X * count), and log is increasing
        c = (-g_mag / (X.shape[1] * X.shape[2]))[..., None, None]
        # one new tensor, updated in place (fresh tensors page-fault on every step)
        grad = torch.sign(diffs[0]).mul_(c[0])
        for k in range(1, len(diffs)):
            grad.addcmul_(torch.sign(diffs[k]), c[k])
        grad.div_(X)
        for k, diff in enumerate(diffs):
            grad.addcmul_(a[k], diff)
        return grad, None, *([None] * (2 * len(diffs)))


def _mrstft(estimate_terms, *target_terms):
    """(sc, mag), each (K, B), of one estimate against K targets, from `_estimate_terms` and
    K `_target_terms` of the same resolutions."""
    sc = mag = 0.0
    for r, (X, log_x) in enumerate(estimate_terms):
        s, m = _SpectralDistance.apply(X, log_x, *(t for terms in target_terms for t in terms[r]))
        sc, mag = sc + s, mag + m
    n = len(estimate_terms)
    return sc / n, mag / n


def magnitudes(x: torch.Tensor, resolutions=STFT_RESOLUTIONS) -> list[torch.Tensor]:
    """STFT magnitudes of (B, T) or (B, 1, T) signals at every resolution."""
    return [magnitude(s) for s in spectra(x, resolutions)]


def _signal_and_residual(noisy_spec, spec, target: bool = False):
    """Magnitudes of a signal and of noisy - signal from their spectra (STFT is linear).
    target=True: without gradient, by `_target_magnitude`, overwriting `spec`."""
    mag = _target_magnitude if target else magnitude
    noise = [mag(n - s) for n, s in zip(noisy_spec, spec)]  # first: spec may be overwritten
    return [mag(s) for s in spec], noise


def estimate_magnitudes(estimate: torch.Tensor, noisy: torch.Tensor) -> dict:
    """What the weighted loss needs of the estimate side, shared by the supervised loss and KD
    (which differ only in their targets): the magnitudes of the estimate ("clean") and of
    noisy - estimate ("noise"), each with its log, and the noisy spectra ("noisy_spec").

    The STFT is linear, so STFT(noisy - estimate) is taken as STFT(noisy) - STFT(estimate) (equal
    up to float rounding): one STFT with gradient per resolution instead of two, and the noisy
    spectra serve every noise-side target too.
    """
    est, nsy = _as_batch(estimate, "estimate"), _as_batch(noisy, "noisy")
    _check_same(est, nsy, "estimate_magnitudes(estimate, noisy)")
    with torch.no_grad():
        noisy_spec = spectra(nsy)
    clean, noise = _signal_and_residual(noisy_spec, spectra(est))
    return {
        "clean": _estimate_terms(clean),
        "noise": _estimate_terms(noise),
        "noisy_spec": noisy_spec,
    }


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


def weighted_loss(
    estimate: torch.Tensor, clean: torch.Tensor, noisy: torch.Tensor, estimate_mags=None
) -> LossParts:
    """The MANNER supervised loss (docs/method.md section 4).

    clean loss = L1 + MR-STFT on (clean, estimate); noise loss = the same on (noisy - clean,
    noisy - estimate); per example a = E_clean / (E_clean + E_noise + 2e-7); the total is the
    batch mean of a * clean + (1 - a) * noise. The reported l1/sc/mag are the same weighting of
    their clean and noise parts. `estimate_mags` (from `estimate_magnitudes`) is reused if given.
    Noise-side spectra are differences of spectra (see `estimate_magnitudes`).

    Shape: estimate, clean, noisy (B, 1, T) or (B, T) -> LossParts.
    """
    return weighted_losses(estimate, [clean], noisy, estimate_mags)[0]


def weighted_losses(
    estimate: torch.Tensor, cleans, noisy: torch.Tensor, estimate_mags=None
) -> list[LossParts]:
    """`weighted_loss` of one estimate against each of several clean targets, in one pass: the
    estimate-side spectra and the gradient tensors are shared. The objective scores the student
    against the clean signal and the teacher's output (KD) this way. Targets carry no gradient.
    """
    est, nsy = _as_batch(estimate, "estimate"), _as_batch(noisy, "noisy")
    _check_same(est, nsy, "weighted_loss(estimate, noisy)")
    clns = []
    for cln in cleans:
        cln = _as_batch(cln, "clean").detach()
        _check_same(est, cln, "weighted_loss(estimate, clean)")
        clns.append(cln)
    noise_est = nsy - est
    em = estimate_mags or estimate_magnitudes(est, nsy)
    K, B = len(clns), est.shape[0]
    with torch.no_grad():  # targets, no gradient: all K at once, then split
        specs = [s.unflatten(0, (K, B)) for s in spectra(torch.cat(clns))]
        sides = _signal_and_residual(em["noisy_spec"], specs, target=True)
        clean_t, noise_t = ([_target_terms(m[k] for m in mags) for k in range(K)] for mags in sides)
    c_sc, c_mag = _mrstft(em["clean"], *clean_t)  # (K, B) each
    n_sc, n_mag = _mrstft(em["noise"], *noise_t)
    out = []
    for k, cln in enumerate(clns):
        noise = nsy - cln
        e_clean, e_noise = cln.pow(2).sum(-1), noise.pow(2).sum(-1)
        a = e_clean / (e_clean + e_noise + WEIGHT_EPS)  # (B,)
        c_l1 = (est - cln).abs().mean(-1)  # (B,)
        n_l1 = (noise_est - noise).abs().mean(-1)
        c_total = c_l1 + 0.5 * c_sc[k] + 0.5 * c_mag[k]
        n_total = n_l1 + 0.5 * n_sc[k] + 0.5 * n_mag[k]
        out.append(
            LossParts(
                total=_mix(a, c_total, n_total).mean(),
                clean=c_total,
                noise=n_total,
                weight=a,
                l1=_mix(a, c_l1, n_l1),
                sc=_mix(a, c_sc[k], n_sc[k]),
                mag=_mix(a, c_mag[k], n_mag[k]),
            )
        )
    return out


def _mix(a: torch.Tensor, clean_part: torch.Tensor, noise_part: torch.Tensor) -> torch.Tensor:
    """The per-example weighting of a clean-side and a noise-side part, a in [0, 1]."""
    return a * clean_part + (1 - a) * noise_part


def kd_loss(
    student_out: torch.Tensor, teacher_out: torch.Tensor, noisy: torch.Tensor, estimate_mags=None
) -> LossParts:
    """Output KD (docs/method.md section 3): the weighted loss with the teacher's output as the
    clean target and (noisy - teacher) as the noise target. The teacher side carries no
    gradient."""
    return weighted_loss(student_out, teacher_out.detach(), noisy, estimate_mags)


def snr_teacher_loss(student_out, teacher_out, clean, alpha: float = 0.5):
    """alpha * 1/2 * mse(student, teacher) + (1 - alpha) * 1/2 * mse(student, clean).

    docs/method.md section 5; mse averages over samples and the batch. Returns (total, parts) with
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


def si_sdr_gain_loss(estimate, clean, gain_weight: float = 10.0, eps: float = 1e-8):
    """-SI-SDR(estimate, clean) in dB + gain_weight * (a - 1)^2, a mean over the batch.

    Beyond the paper (docs/method.md section 5): a band teacher's objective that does not
    reward attenuation. Per example, both signals zero-mean as in `sekd.metrics.si_sdr`, and
    a = <estimate, clean> / <clean, clean> the least-squares gain of the estimate on the
    clean signal. SI-SDR alone sees neither the scale nor the sign of the estimate; the gain
    term pins both (a = -1 costs 4 x gain_weight, a = 1 nothing), so a student distilling
    from the teacher's waveform gets an output at the clean signal's level and polarity.
    Returns (total, parts) with parts {"si_sdr": mean SI-SDR, "gain": mean a}.
    """
    e, c = _as_batch(estimate, "estimate"), _as_batch(clean, "clean")
    _check_same(e, c, "si_sdr_gain_loss(estimate, clean)")
    if not gain_weight >= 0:
        raise ValueError(f"gain_weight must be >= 0, got {gain_weight}")
    e = e - e.mean(dim=-1, keepdim=True)
    c = c - c.mean(dim=-1, keepdim=True)
    a = (e * c).sum(-1) / ((c * c).sum(-1) + eps)
    target = a[:, None] * c
    ratio = ((target**2).sum(-1) + eps) / (((e - target) ** 2).sum(-1) + eps)
    sdr = 10.0 * torch.log10(ratio)
    total = -sdr.mean() + gain_weight * ((a - 1.0) ** 2).mean()
    return total, {"si_sdr": sdr.mean(), "gain": a.mean()}
