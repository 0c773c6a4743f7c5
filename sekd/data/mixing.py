"""Mixing speech and noise at an exact SNR (docs/method.md section 6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Mean-square energy below which a signal counts as silent (about -100 dBFS).
ENERGY_FLOOR = 1e-10


class MixingError(ValueError):
    """Silent speech or noise, or an unusable SNR."""


@dataclass
class Mixture:
    """One example: the signals travel with the SNR used to build them and the noise type."""

    mixture: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    snr: float
    noise_type: str = ""


def snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    """10 log10(sum s^2 / sum n^2), in float64."""
    s = np.sum(np.asarray(clean, dtype=np.float64) ** 2)
    n = np.sum(np.asarray(noise, dtype=np.float64) ** 2)
    return float(10.0 * np.log10(s / n))


def noise_segment(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random segment of `length` samples; a shorter noise is looped from a random offset."""
    if len(noise) == 0:
        raise MixingError("noise has no samples")
    if len(noise) >= length:
        start = int(rng.integers(0, len(noise) - length + 1))
        return noise[start : start + length]
    start = int(rng.integers(0, len(noise)))
    reps = int(np.ceil((start + length) / len(noise)))
    return np.tile(noise, reps)[start : start + length]


def mix(
    clean: np.ndarray,
    noise: np.ndarray,
    snr: float,
    rng: np.random.Generator,
    noise_type: str = "",
    source: str = "",
) -> Mixture:
    """Add a random segment of `noise` to `clean` at exactly `snr` dB.

    The SNR is measured over the whole clean signal and the noise segment actually added. If the
    mixture would clip (|x| > 1), mixture, clean and noise are scaled together, which keeps the
    SNR. `source` names the inputs in error messages.
    """
    clean = np.asarray(clean, dtype=np.float64)
    if not np.isfinite(snr):
        raise MixingError(f"SNR must be finite, got {snr} {source}".strip())
    if np.mean(clean**2) < ENERGY_FLOOR:
        raise MixingError(f"speech is silent (energy below {ENERGY_FLOOR:g}) {source}".strip())
    seg = noise_segment(np.asarray(noise, dtype=np.float64), len(clean), rng)
    if np.mean(seg**2) < ENERGY_FLOOR:
        raise MixingError(
            f"noise segment is silent (energy below {ENERGY_FLOOR:g}) {source}".strip()
        )
    gain = np.sqrt(np.sum(clean**2) / (np.sum(seg**2) * 10.0 ** (snr / 10.0)))
    seg = seg * gain
    mixture = clean + seg
    peak = np.max(np.abs(mixture))
    if peak > 1.0:
        scale = 1.0 / peak
        mixture, clean, seg = mixture * scale, clean * scale, seg * scale
    return Mixture(
        mixture=mixture.astype(np.float32),
        clean=clean.astype(np.float32),
        noise=seg.astype(np.float32),
        snr=float(snr),
        noise_type=noise_type,
    )
