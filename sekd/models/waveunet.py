"""The time-domain U-Net of the SNR teachers-student paper (Hao et al., ICME 2020, Fig. 3).

docs/method.md section 5: 12 encoder blocks Conv1d(k15, same) + BN + LeakyReLU(0.1) with
48 + 24 i channels, the first 7 followed by decimation by 2 (keep every other sample); a
bottleneck block of the same kind; 12 decoder blocks that each concatenate the matching
encoder feature (taken before decimation) and run Conv1d(k5, same) + BN + LeakyReLU(0.1), the
last 7 starting with linear upsampling by 2; a 1x1 conv + tanh over [decoder output, input].
The first author's public Wave-U-Net code is the variant with 24 + 24 i channels and 12
decimations (10,132,802 parameters). `width` scales every channel count for CPU presets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .shapes import as_waveform_batch


@dataclass(frozen=True)
class WaveUNetConfig:
    layers: int = 12
    base: int = 48  # channels of the first block
    step: int = 24  # channel increase per block
    decimate: int = 7  # how many of the first blocks decimate by 2
    enc_kernel: int = 15
    dec_kernel: int = 5
    width: float = 1.0
    # Half-pixel linear upsampling (False) depends only on neighbouring samples, so the model is
    # shift-equivariant and chunked inference is exact; the public code uses True, whose
    # sample positions depend on the whole input length.
    align_corners: bool = False

    def __post_init__(self):
        if not 0 <= self.decimate <= self.layers:
            raise ValueError(f"decimate must be in 0..{self.layers}, got {self.decimate}")
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")

    def channels(self) -> list[int]:
        return [max(1, round(self.width * (self.base + self.step * i))) for i in range(self.layers)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> WaveUNetConfig:
        return cls(**d)


def _block(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(cin, cout, k, padding=k // 2), nn.BatchNorm1d(cout), nn.LeakyReLU(0.1)
    )


class WaveUNet(nn.Module):
    """(B, 1, T) or (B, T) noisy waveform -> (B, 1, T) enhanced waveform in (-1, 1)."""

    def __init__(self, cfg: WaveUNetConfig = WaveUNetConfig()):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels()
        self.encoder = nn.ModuleList(
            _block(1 if i == 0 else ch[i - 1], ch[i], cfg.enc_kernel) for i in range(cfg.layers)
        )
        self.bottleneck = _block(ch[-1], ch[-1], cfg.enc_kernel)
        # decoder block j mirrors encoder block i = layers - 1 - j
        self.decoder = nn.ModuleList()
        prev = ch[-1]
        for i in reversed(range(cfg.layers)):
            self.decoder.append(_block(prev + ch[i], ch[i], cfg.dec_kernel))
            prev = ch[i]
        self.out = nn.Sequential(nn.Conv1d(ch[0] + 1, 1, 1), nn.Tanh())

    @torch.no_grad()
    def init_identity(self, noisy: torch.Tensor) -> float:
        """Start at the identity: the output layer reads only the input channel (weight 1, the
        decoder features' weights and the bias 0), so the model outputs tanh(noisy), the input
        itself at speech levels, with positive polarity. The decoder is trained from there, a
        residual start (the random initialisation outputs a small signal unrelated to the input,
        and a band teacher at high SNR spends thousands of steps climbing back to the input's
        own quality). Returns the R^2 of that output on `noisy` (1 where |noisy| << 1)."""
        conv = self.out[0]
        conv.weight.zero_()
        conv.weight[:, -1] = 1.0  # the last input channel of the output layer is the input
        conv.bias.zero_()
        x = as_waveform_batch(noisy).double()
        resid = torch.tanh(x) - x
        return float(1.0 - resid.pow(2).sum() / x.pow(2).sum())

    @property
    def total_stride(self) -> int:
        return 2**self.cfg.decimate

    def valid_length(self, length: int) -> int:
        s = self.total_stride
        return -(-length // s) * s

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) or (B, T) -> (B, 1, T).

        The input is not normalised per example, so the items of a zero-padded batch of
        different lengths differ from runs at batch 1 only near the end of the shorter items
        (their receptive field reaches into the padding); `sekd enhance` runs files one by one.
        """
        noisy = as_waveform_batch(noisy)
        length = noisy.shape[-1]
        x = F.pad(noisy, (0, self.valid_length(length) - length))
        inp, skips = x, []
        for i, block in enumerate(self.encoder):
            x = block(x)
            skips.append(x)
            if i < self.cfg.decimate:
                x = x[..., ::2]  # decimation: keep every other sample
        x = self.bottleneck(x)
        for j, block in enumerate(self.decoder):
            i = self.cfg.layers - 1 - j
            if i < self.cfg.decimate:
                x = F.interpolate(
                    x, scale_factor=2, mode="linear", align_corners=self.cfg.align_corners
                )
            x = block(torch.cat([x, skips[i]], 1))
        return self.out(torch.cat([x, inp], 1))[..., :length]
