"""Untrained reference "models" for the tables: the noisy input itself, and classical spectral
gating (the `noisereduce` package). Both take and return (B, 1, T) tensors like the networks, so
`metrics.evaluate_model` scores them the same way."""

from __future__ import annotations

import numpy as np
import torch

from .data.audio import SAMPLE_RATE
from .losses import stft


class _Reference:
    def to(self, device):
        return self

    def eval(self):
        return self


class NoisyInput(_Reference):
    """Returns its input: scores the noisy mixtures themselves."""

    def __call__(self, x):
        return x


class SpectralGating(_Reference):
    """Non-stationary spectral gating (Sainburg et al.; `noisereduce.reduce_noise`), the
    classical row of Table 1: a trained teacher that cannot beat it is not a teacher.
    Defaults are the package's; `prop_decrease` < 1 removes less noise."""

    def __init__(self, prop_decrease: float = 1.0):
        self.prop_decrease = prop_decrease

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import noisereduce

        a = x.detach().cpu().double().numpy()
        out = np.stack(
            [
                noisereduce.reduce_noise(
                    y=row[0],
                    sr=SAMPLE_RATE,
                    stationary=False,
                    prop_decrease=self.prop_decrease,
                    n_jobs=1,
                )[None]
                for row in a
            ]
        )
        return torch.from_numpy(out[..., : a.shape[-1]].astype(np.float32)).to(x.device)


def ideal_ratio_mask(noisy, clean, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """The oracle ideal ratio mask (Wang et al.): each STFT bin of the mixture scaled by
    |S| / sqrt(|S|^2 + |N|^2), with S the clean and N = noisy - clean the noise. It needs the
    clean signal, so it is not an enhancer but a ceiling for mask-based ones: what attenuating
    each time-frequency bin of the mixture, with the noisy phase kept, can reach at best."""
    x = torch.as_tensor(np.asarray(noisy, np.float64))
    s = torch.as_tensor(np.asarray(clean, np.float64))
    if x.shape != s.shape or x.ndim != 1:
        raise ValueError(f"noisy and clean must be 1-D of one length, got {x.shape}, {s.shape}")
    X, S, N = stft(x, n_fft, hop, n_fft), stft(s, n_fft, hop, n_fft), stft(x - s, n_fft, hop, n_fft)
    mask = S.abs() / torch.sqrt(S.abs() ** 2 + N.abs() ** 2).clamp_min(1e-12)
    win = torch.hann_window(n_fft, dtype=torch.float64)
    y = torch.istft(X * mask, n_fft, hop, window=win, length=x.shape[-1])
    return y.numpy().astype(np.float32)
