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

from .data.audio import SAMPLE_RATE
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


def efficiency_table(paper_gflops: dict[str, float], samples: int = 128_000) -> list[dict]:
    """MV-AT Table 1's efficiency columns: per preset, exact parameters, paper-convention MACs
    beside the paper's figure (and their ratio) and true FLOPs, on an 8 s input."""
    rows = []
    for preset, paper in paper_gflops.items():
        c = complexity(preset, samples)
        rows.append(
            {
                "preset": preset,
                "params": c.params,
                "GMACs (paper convention)": c.macs_paper / 1e9,
                "paper's GFLOPs (Table 1)": paper,
                "ratio": c.macs_paper / 1e9 / paper,
                "true GFLOPs": c.flops / 1e9,
            }
        )
    return rows


def speed_table(presets, seconds: float = 4.0, seed: int = 0) -> list[dict]:
    """Forward real-time factor (seconds per second of audio, batch 1, one warm-up call) of
    each preset on this machine, with the thread count."""
    import time

    torch.manual_seed(seed)
    x = torch.randn(1, 1, int(seconds * SAMPLE_RATE))
    rows = []
    for preset in presets:
        m = build(preset).eval()
        with torch.no_grad():
            m(x)
            t0 = time.perf_counter()
            m(x)
            rtf = (time.perf_counter() - t0) / seconds
        rows.append({"preset": preset, "threads": torch.get_num_threads(), "rtf": rtf})
    return rows
