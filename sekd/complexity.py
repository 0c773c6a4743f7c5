"""Parameters, paper-convention MACs (thop-style) and true FLOPs: one counter for CLI and notebooks.

Paper convention (the MV-AT Table 1 "FLOPs", docs/manner.md): convolutions and linears count one MAC
per multiply-add, a transposed convolution counts output_length x C_in x kernel per output
channel, batch norm counts 4 ops per element, the attention's functional matmuls count nothing.
True MACs: every convolution (transposed ones by their real cost), linear and attention matmul;
true FLOPs = 2 x true MACs. Batch norm and pointwise activations are not counted (they fold or
are negligible), matching `torch.utils.flop_counter`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .models import build, count_parameters
from .models.manner import GlobalAttention


@dataclass
class Complexity:
    preset: str
    params: int
    macs_paper: int
    flops: int
    samples: int

    def to_dict(self) -> dict:
        return asdict(self)


def count_macs(model: nn.Module, samples: int) -> tuple[int, int]:
    """(paper-convention MACs, true MACs) of one forward pass on a (1, 1, samples) input."""
    paper, true = [0], [0]

    def conv(m, inp, out):
        k = m.kernel_size[0]
        if isinstance(m, nn.ConvTranspose1d):
            paper[0] += out.numel() * (m.in_channels // m.groups) * k
            true[0] += inp[0].numel() * (m.out_channels // m.groups) * k
        else:
            macs = out.numel() * (m.in_channels // m.groups) * k
            paper[0] += macs
            true[0] += macs

    def linear(m, inp, out):
        macs = m.in_features * out.numel()
        paper[0] += macs
        true[0] += macs

    def norm(m, inp, out):
        paper[0] += inp[0].numel() * (4 if m.affine else 2)

    def attention(m, inp, out):
        B, n, P, K = inp[0].shape  # (B, n, P, K): scores and weighted sum, P x P x K each
        true[0] += 2 * B * n * P * P * K

    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            hooks.append(m.register_forward_hook(norm))
        elif isinstance(m, GlobalAttention):
            hooks.append(m.register_forward_hook(attention))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.randn(1, 1, samples))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return paper[0], true[0]


def complexity(preset: str, samples: int = 128_000) -> Complexity:
    model = build(preset)
    paper, true = count_macs(model, samples)
    return Complexity(preset, count_parameters(model), paper, 2 * true, samples)
