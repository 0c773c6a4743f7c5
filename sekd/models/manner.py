"""MANNER (Park et al., ICASSP 2022) as the MV-AT paper uses it; spec: docs/manner.md.

The model hands back its attention views explicitly (`Taps`), never through hooks: the
distillation code only sees tensors. Shapes: B batch, C channels, n = C // 3 branch width,
T time, P chunks of K = 64 samples with hop K / 2.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .shapes import as_waveform_batch

VIEWS = ("channel", "global", "local")


@dataclass(frozen=True)
class MannerConfig:
    """Hyper-parameters of one MANNER variant; `ma_layers` are 0-based encoder depths with MA.

    The decoder layer that mirrors encoder depth i carries an MA block iff the encoder does.
    """

    depth: int = 4
    hidden: int = 60
    kernel: int = 8
    stride: int = 4
    growth: int = 2
    chunk: int = 64
    dw_kernel: int = 31
    ma_layers: tuple[int, ...] = (0, 1, 2, 3)
    rescale: float = 0.1

    def __post_init__(self):
        if self.depth < 1 or self.hidden < 3:
            raise ValueError(f"depth must be >= 1 and hidden >= 3, got {self.depth}, {self.hidden}")
        if self.growth != 2:
            raise ValueError("growth is hard-wired to 2 in MANNER")
        if self.chunk % 2:
            raise ValueError(f"chunk must be even (50 % overlap), got {self.chunk}")
        bad = [i for i in self.ma_layers if not 0 <= i < self.depth]
        if bad:
            raise ValueError(f"ma_layers {bad} outside 0..{self.depth - 1}")
        object.__setattr__(self, "ma_layers", tuple(sorted(set(self.ma_layers))))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ma_layers"] = list(self.ma_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MannerConfig:
        d = dict(d)
        d["ma_layers"] = tuple(d.get("ma_layers", ()))
        return cls(**d)


# ----------------------------------------------------------------------------- length helpers
def valid_length(length: int, depth: int, kernel: int = 8, stride: int = 4) -> int:
    """Smallest length >= `length` that the down/up convolutions map back onto itself."""
    # integer arithmetic only (ceil(a / b) = -(-a // b)), so that a symbolic length of
    # torch.export stays symbolic: an ONNX export then takes any length
    n = length
    for _ in range(depth):
        n = torch.sym_max(-((kernel - n) // stride) + 1, 1)
    for _ in range(depth):
        n = (n - 1) * stride + kernel
    return n


def n_chunks(length: int, chunk: int = 64) -> int:
    """P = floor((T + K) / (K/2)) + 1 chunks after padding K zeros on both sides."""
    return (length + chunk) // (chunk // 2) + 1


def segment(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """(B, n, T) -> (B, n, P, K): pad K zeros both sides, chunks of K with hop K/2 (a view)."""
    x = F.pad(x, (chunk, chunk))
    return x.unfold(-1, chunk, chunk // 2)


def overlap_add(chunks: torch.Tensor, length: int) -> torch.Tensor:
    """(B, n, P, K) -> (B, n, T): inverse of `segment` (overlap-add, halve, crop the padding).

    With hop K/2 each output sample is the sum of the first half of chunk j and the second half
    of chunk j-1, so no loop or scatter is needed.
    """
    B, n, P, K = chunks.shape
    h = K // 2
    first = F.pad(chunks[..., :h], (0, 0, 0, 1))  # (B, n, P+1, h)
    second = F.pad(chunks[..., h:], (0, 0, 1, 0))  # (B, n, P+1, h)
    out = (first + second).reshape(B, n, (P + 1) * h) * 0.5  # (B, n, (P-1) h + K)
    return out[..., K : K + length]


def segment_literal(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """Reference transcription of `segment` with a Python loop (benchmarks and tests only)."""
    x = F.pad(x, (chunk, chunk))
    P = n_chunks(x.shape[-1] - 2 * chunk, chunk)
    return torch.stack([x[..., p * chunk // 2 : p * chunk // 2 + chunk] for p in range(P)], -2)


def overlap_add_literal(chunks: torch.Tensor, length: int) -> torch.Tensor:
    """Reference transcription of `overlap_add` with a Python loop (benchmarks and tests only)."""
    B, n, P, K = chunks.shape
    out = chunks.new_zeros(B, n, (P - 1) * (K // 2) + K)
    for p in range(P):
        out[..., p * K // 2 : p * K // 2 + K] += chunks[..., p, :]
    return out[..., K : K + length] / 2


# ----------------------------------------------------------------------------- building blocks
class DepthwiseConv1d(nn.Conv1d):
    """Depthwise Conv1d (groups = channels) computed as a channels-last Conv2d of height 1.

    Same parameters and function as nn.Conv1d; PyTorch's CPU kernel for depthwise Conv1d is a
    slow path, while the channels-last Conv2d reaches oneDNN's depthwise kernel (several times
    faster here). Only for float32 on the CPU: on GPUs the plain Conv1d is the fast path, and
    under bf16 autocast on a CPU without bf16 units the channels-last Conv2d is slower by
    orders of magnitude. `channels_last = False` gives the plain Conv1d (the literal path).
    """

    channels_last = True

    def __init__(self, channels: int, kernel: int, bias: bool = False):
        super().__init__(
            channels, channels, kernel, padding=kernel // 2, groups=channels, bias=bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            not self.channels_last
            or x.device.type != "cpu"
            or x.dtype != torch.float32
            or torch.is_autocast_enabled("cpu")
        ):
            return super().forward(x)
        x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, C, 1, T)
        y = F.conv2d(
            x4,
            self.weight.unsqueeze(2),
            self.bias,
            padding=(0, self.padding[0]),
            groups=self.groups,
        )
        return y.squeeze(2).contiguous()  # (B, C, T)


def set_literal(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch every MA block of `model` between the fast path and the literal transcription of
    the spec (loop chunking, explicit softmax): the same function, for tests and FLOP counts."""
    for m in model.modules():
        if isinstance(m, (MultiviewAttention, GlobalAttention)):
            m.literal = enabled
    return model


def set_channels_last_depthwise(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch every DepthwiseConv1d between the fast (True) and the plain Conv1d path."""
    for m in model.modules():
        if isinstance(m, DepthwiseConv1d):
            m.channels_last = enabled
    return model


def basic_conv(cin: int, cout: int, k: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv without bias + BatchNorm(momentum 0.01) + optional ReLU (the reference's BasicConv)."""
    layers = [
        nn.Conv1d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm1d(cout, momentum=0.01),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResConBlock(nn.Module):
    """Residual conformer block, C -> C * growth (growth 2 in the encoder, 1/2 in the decoder)."""

    def __init__(self, channels: int, growth: float, dw_kernel: int = 31):
        super().__init__()
        out = int(channels * growth)
        self.pointwise_glu = nn.Sequential(
            nn.Conv1d(channels, 2 * channels, 1), nn.BatchNorm1d(2 * channels), nn.GLU(dim=1)
        )
        self.depthwise = nn.Sequential(
            DepthwiseConv1d(channels, dw_kernel),
            nn.BatchNorm1d(channels),
            nn.SiLU(),
        )
        self.pointwise = nn.Sequential(nn.Conv1d(channels, out, 1), nn.BatchNorm1d(out), nn.SiLU())
        self.project = nn.Sequential(nn.Conv1d(out, out, 1, bias=False), nn.BatchNorm1d(out))
        self.shortcut = nn.Sequential(nn.Conv1d(channels, out, 1, bias=False), nn.BatchNorm1d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.pointwise(self.depthwise(self.pointwise_glu(x))))
        return F.relu(y + self.shortcut(x))


class GlobalAttention(nn.Module):
    """Self-attention across chunks, one head; channels independent; tokens are chunks of K.

    `literal = True` (see `set_literal`) computes the softmax explicitly instead of the fused
    scaled-dot-product kernel: the spec as written, for tests and FLOP counting."""

    literal = False

    def __init__(self, chunk: int):
        super().__init__()
        self.chunk = chunk
        self.query = nn.Linear(chunk, chunk, bias=False)
        self.key = nn.Linear(chunk, chunk, bias=False)
        self.value = nn.Linear(chunk, chunk, bias=False)
        self.out = nn.Linear(chunk, chunk, bias=False)

    def forward(self, chunks: torch.Tensor, return_probs: bool = False):
        """(B, n, P, K) -> (B, n, P, K) and, if asked, the probabilities (B * n, P, P)."""
        B, n, P, K = chunks.shape
        # chunks overlap (a strided view); one copy lets the three projections run as single
        # matrix products instead of per-example bmm on an expanded weight (~10 % of a step)
        t = chunks.reshape(B * n, P, K).contiguous()  # (B n, P, K)
        q, k, v = self.query(t), self.key(t), self.value(t)
        probs = None
        if return_probs or self.literal:
            probs = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(K), dim=-1)  # (B n, P, P)
            y = probs @ v
        else:
            # 4-D (batch, heads, tokens, features) reaches the fused CPU/GPU kernels; a 3-D call
            # falls back to the same math as the literal path
            y = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        y = self.out(y).reshape(B, n, P, K)
        return y, probs


class MultiviewAttention(nn.Module):
    """MA block on C channels: channel, global and local views of n = C // 3 branch features.

    `literal = True` (see `set_literal`) chunks with the loop-based transcription of the spec
    instead of strided views (the same values)."""

    literal = False

    def __init__(self, channels: int, chunk: int = 64, dw_kernel: int = 31):
        super().__init__()
        n = channels // 3
        self.n, self.chunk = n, chunk
        self.branches = nn.ModuleList([basic_conv(channels, n) for _ in VIEWS])
        self.channel_mlp = nn.Sequential(nn.Linear(n, n // 2), nn.ReLU(), nn.Linear(n // 2, n))
        self.global_attn = GlobalAttention(chunk)
        self.local_dw = nn.Sequential(
            DepthwiseConv1d(n, dw_kernel),
            nn.BatchNorm1d(n),
            nn.SiLU(),
        )
        self.local_map = nn.Sequential(nn.Conv1d(2, 1, 7, padding=3, bias=False), nn.BatchNorm1d(1))
        self.outputs = nn.ModuleList([basic_conv(n, n, 3) for _ in VIEWS])
        self.fuse = basic_conv(3 * n, channels, 1, relu=False)
        self.gate_tanh = nn.Conv1d(channels, channels, 1)
        self.gate_sigmoid = nn.Conv1d(channels, channels, 1)
        self.gate_out = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.ReLU())
        self.shortcut = basic_conv(channels, channels, 1, relu=False)

    def channel_view(self, x: torch.Tensor) -> torch.Tensor:
        w = self.channel_mlp(x.amax(-1)) + self.channel_mlp(x.mean(-1))  # (B, n)
        return x * torch.sigmoid(w)[..., None]

    def local_view(self, chunks: torch.Tensor) -> torch.Tensor:
        B, n, P, K = chunks.shape
        t = chunks.permute(0, 2, 1, 3).reshape(B * P, n, K)  # (B P, n, K)
        h = self.local_dw(t)
        m = torch.cat([h.amax(1, keepdim=True), h.mean(1, keepdim=True)], 1)  # (B P, 2, K)
        a = torch.sigmoid(self.local_map(m)).reshape(B, P, 1, K).transpose(1, 2)  # (B, 1, P, K)
        return chunks * a

    def forward(self, x: torch.Tensor, return_probs: bool = False):
        """(B, C, T) -> (B, C, T), views {channel, global, local: (B, n, T)}, probs or None."""
        T = x.shape[-1]
        lit = self.literal
        seg, ola = (segment_literal, overlap_add_literal) if lit else (segment, overlap_add)
        xc, xg, xl = (branch(x) for branch in self.branches)
        vc = self.channel_view(xc)
        g, probs = self.global_attn(seg(xg, self.chunk), return_probs)
        vg = ola(g, T)
        vl = ola(self.local_view(seg(xl, self.chunk)), T)
        views = {"channel": vc, "global": vg, "local": vl}
        y = self.fuse(torch.cat([o(v) for o, v in zip(self.outputs, (vc, vg, vl))], 1))
        y = self.gate_out(torch.tanh(self.gate_tanh(y)) * torch.sigmoid(self.gate_sigmoid(y)))
        return y + self.shortcut(x), views, probs


class EncoderLayer(nn.Module):
    def __init__(self, channels: int, cfg: MannerConfig, attention: bool):
        super().__init__()
        self.down = nn.Sequential(
            nn.Conv1d(channels, channels, cfg.kernel, cfg.stride),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
        )
        self.rescon = ResConBlock(channels, 2, cfg.dw_kernel)
        self.attention = (
            MultiviewAttention(2 * channels, cfg.chunk, cfg.dw_kernel) if attention else None
        )


class DecoderLayer(nn.Module):
    def __init__(self, channels: int, cfg: MannerConfig, attention: bool):
        super().__init__()
        self.rescon = ResConBlock(2 * channels, 0.5, cfg.dw_kernel)
        self.up = nn.Sequential(
            nn.ConvTranspose1d(channels, channels, cfg.kernel, cfg.stride),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
        )
        self.attention = (
            MultiviewAttention(channels, cfg.chunk, cfg.dw_kernel) if attention else None
        )


@dataclass
class Taps:
    """What a forward pass can hand back besides the waveform.

    views: {(side, depth, view): (B, n, T_layer)} with side in {"encoder", "decoder"}, depth
        1-based (1 = shallowest; decoder layers indexed by the depth they mirror), view in VIEWS.
    layers: {(side, depth): (B, C, T_layer)}, the output of every encoder/decoder layer.
    probs: {(side, depth): (B * n, P, P)}, the global view's attention probabilities.
    """

    views: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)
    probs: dict = field(default_factory=dict)


class Manner(nn.Module):
    """MANNER: (B, 1, T) or (B, T) noisy waveform -> (B, 1, T) enhanced waveform."""

    normalizes_input = True  # forward takes `std`, so chunked inference can pass the file's

    def __init__(self, cfg: MannerConfig = MannerConfig()):
        super().__init__()
        self.cfg = cfg
        N = cfg.hidden
        self.in_conv = nn.Sequential(nn.Conv1d(1, N, 3, padding=1), nn.BatchNorm1d(N), nn.ReLU())
        self.encoder = nn.ModuleList(
            EncoderLayer(N * 2**i, cfg, i in cfg.ma_layers) for i in range(cfg.depth)
        )
        self.decoder = nn.ModuleList(  # deepest first
            DecoderLayer(N * 2**i, cfg, i in cfg.ma_layers) for i in reversed(range(cfg.depth))
        )
        width = N * 2**cfg.depth
        self.bottleneck = nn.Linear(width, width, bias=False)
        self.mask_tanh = nn.Conv1d(N, N, 1)
        self.mask_sigmoid = nn.Conv1d(N, N, 1)
        self.mask_out = nn.Sequential(nn.Conv1d(N, N, 1), nn.ReLU())
        self.out_conv = nn.Conv1d(N, 1, 3, padding=1)
        self._rescale(cfg.rescale)

    def _rescale(self, reference: float) -> None:
        """DEMUCS init: divide conv weights and biases by sqrt(std(weight) / reference).

        A reference of 0 disables the rescaling.
        """
        if reference <= 0:
            return
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
                scale = (m.weight.std().detach() / reference) ** 0.5
                m.weight.data /= scale
                if m.bias is not None:
                    m.bias.data /= scale

    @torch.no_grad()
    def init_identity(self, noisy: torch.Tensor, ridge: float = 1e-4) -> float:
        """Fit `out_conv` by least squares so that the model passes `noisy` through.

        The masked features that `out_conv` reads are non-negative (ReLU) and, at the random
        initialisation, nearly uncorrelated with the input, so the untrained output is a small
        signal of arbitrary polarity. The magnitude-only STFT terms of the loss then amplify
        whatever polarity the first steps find, and the weak time-domain term rarely undoes an
        inverted one. Solving the output layer (weights and bias, a linear problem) for
        `model(noisy) ~ noisy` on a training batch starts training at the identity: output at
        the input level, positive polarity. Uses the current mode (train: batch statistics) and
        leaves BatchNorm running statistics as they were. Returns the fit's R^2 on `noisy`.
        """
        noisy = as_waveform_batch(noisy)
        length = noisy.shape[-1]
        saved = {k: b.clone() for k, b in self.named_buffers()}
        feats = []
        hook = self.out_conv.register_forward_hook(lambda m, i, o: feats.append(i[0]))
        try:
            self(noisy)
        finally:
            hook.remove()
            for k, b in self.named_buffers():
                b.copy_(saved[k])
        f = feats[0].double()  # (B, N, T_valid): the input of out_conv
        k = self.out_conv.kernel_size[0]
        pad = self.out_conv.padding[0]
        cols = F.pad(f, (pad, pad)).unfold(-1, k, 1)[:, :, :length]  # (B, N, T, k)
        A = cols.permute(0, 2, 1, 3).reshape(-1, f.shape[1] * k)
        A = torch.cat([A, A.new_ones(A.shape[0], 1)], 1)
        std = noisy.std(dim=-1, keepdim=True)
        y = (noisy / (1e-3 + std)).double().reshape(-1, 1)  # the network's own (normalised) scale
        gram = A.T @ A
        gram += ridge * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
        sol = torch.linalg.solve(gram, A.T @ y)[:, 0]
        self.out_conv.weight.copy_(sol[:-1].reshape(self.out_conv.weight.shape))
        self.out_conv.bias.copy_(sol[-1:])
        resid = A @ sol - y[:, 0]
        return float(1.0 - resid.pow(2).sum() / y.pow(2).sum())

    @property
    def total_stride(self) -> int:
        return self.cfg.stride**self.cfg.depth

    def valid_length(self, length: int) -> int:
        return valid_length(length, self.cfg.depth, self.cfg.kernel, self.cfg.stride)

    def view_blocks(self) -> list[tuple[str, int]]:
        """(side, depth) of the blocks with multi-view attention, encoder first: the keys of
        `Taps.views` without the view name."""
        return [(side, i + 1) for side in ("encoder", "decoder") for i in self.cfg.ma_layers]

    def layer_keys(self) -> list[tuple[str, int]]:
        """(side, depth) of every encoder and decoder layer: the keys of `Taps.layers`."""
        return [(side, d) for side in ("encoder", "decoder") for d in range(1, self.cfg.depth + 1)]

    @staticmethod
    def _selection(flag, known, name):
        """A `return_*` flag as the set of (side, depth) keys to keep."""
        if isinstance(flag, bool):
            return set(known) if flag else set()
        keys = {tuple(k) for k in flag}
        if keys - set(known):
            raise ValueError(f"{name}: no such blocks {sorted(keys - set(known))}; have {known}")
        return keys

    @staticmethod
    def _attend(block, x, taps, key, views_at, want_probs):
        if block is None:
            return x
        y, views, probs = block(x, return_probs=want_probs)
        if key in views_at:
            for name, v in views.items():
                taps.views[(*key, name)] = v
        if want_probs:
            taps.probs[key] = probs
        return y

    def forward(
        self,
        noisy: torch.Tensor,
        return_views: bool | Collection[tuple[str, int]] = False,
        return_layers: bool | Collection[tuple[str, int]] = False,
        return_probs: bool = False,
        std: torch.Tensor | None = None,
    ):
        """(B, 1, T) or (B, T) -> (B, 1, T); with any `return_*` flag, (waveform, Taps).

        `return_views` / `return_layers` are True (every block / layer) or a collection of
        (side, depth) keys (`view_blocks()` / `layer_keys()`): only those are kept, so the
        others' activations are freed as the forward goes on.
        `std` (B, 1, 1) overrides the per-example input scale (chunked inference passes the
        whole file's).

        Each example is normalised by its own std, so items of a zero-padded batch are scaled by
        the std of their padded signal: enhance utterances of different lengths one at a time
        (batch 1, as the papers evaluate) when the exact single-file output matters.
        """
        noisy = as_waveform_batch(noisy)
        length = noisy.shape[-1]
        if length < 2:
            raise ValueError(f"need at least 2 samples to normalise the input, got {length}")
        if std is None:
            std = noisy.std(dim=-1, keepdim=True)  # (B, 1, 1), unbiased
        x = noisy / (1e-3 + std)
        x = F.pad(x, (0, self.valid_length(length) - length))
        want = return_views is not False or return_layers is not False or return_probs
        taps = Taps() if want else None
        views_at = self._selection(return_views, self.view_blocks(), "return_views")
        layers_at = self._selection(return_layers, self.layer_keys(), "return_layers")

        enc_out = self.in_conv(x)
        x, skips = enc_out, []
        for i, layer in enumerate(self.encoder):
            x = layer.rescon(layer.down(x))
            x = self._attend(layer.attention, x, taps, ("encoder", i + 1), views_at, return_probs)
            if ("encoder", i + 1) in layers_at:
                taps.layers[("encoder", i + 1)] = x
            skips.append(x)
        x = F.relu(self.bottleneck(x.transpose(1, 2))).transpose(1, 2)
        for j, layer in enumerate(self.decoder):
            depth = self.cfg.depth - j
            skip = skips.pop()
            x = x + skip[..., : x.shape[-1]]
            x = layer.up(layer.rescon(x))
            x = self._attend(layer.attention, x, taps, ("decoder", depth), views_at, return_probs)
            if ("decoder", depth) in layers_at:
                taps.layers[("decoder", depth)] = x
        mask = self.mask_out(torch.tanh(self.mask_tanh(x)) * torch.sigmoid(self.mask_sigmoid(x)))
        out = self.out_conv(enc_out * mask)[..., :length] * std
        return (out, taps) if want else out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
