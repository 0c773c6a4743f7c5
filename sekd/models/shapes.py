"""Input checks shared by every model."""

from __future__ import annotations

import torch


def as_waveform_batch(noisy: torch.Tensor) -> torch.Tensor:
    """(B, T) or (B, 1, T) -> (B, 1, T); anything else is a clear error."""
    if noisy.dim() == 2:
        noisy = noisy[:, None]
    if noisy.dim() != 3 or noisy.shape[1] != 1:
        raise ValueError(f"expected a (B, 1, T) or (B, T) waveform, got shape {tuple(noisy.shape)}")
    return noisy
