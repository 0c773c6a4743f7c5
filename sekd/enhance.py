"""Enhancement of files of any length: whole-file, or in overlapping chunks with overlap-add.

Chunking. A chunk of `chunk` samples keeps `margin` samples of context on each interior side
that are computed and thrown away (weight 0), then cross-fades linearly with its neighbour over
`fade` samples. Chunk starts are multiples of 4096 samples, a multiple of every model's total
stride (MANNER 4^depth, the U-Net 2^decimations), so every chunk sees the same sample grid as
the whole file; the last chunk then gets exactly the whole file's valid-length padding; and the
whole file's input scale (std) is passed to every chunk. For a model whose receptive field is
shorter than `margin`, chunked output therefore equals whole-file output up to float rounding
(tested to 1e-4). MANNER's global attention and channel pooling see the whole input, so for MA
models chunking is an approximation; its size is measured by `benchmarks/manner_speed.py`. The
same holds for a U-Net with `align_corners=True` upsampling (the `waveunet_public` preset).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.audio import SAMPLE_RATE, AudioError, list_audio, read_audio, write_audio
from .models.fuse import fold_batchnorm

ALIGN = 4096
DEFAULT_MARGIN = 16_000  # 1 s of context on each side of a chunk boundary
DEFAULT_FADE = 4096


def _call(model, x: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    if getattr(model, "normalizes_input", False):  # MANNER scales by the input's std
        return model(x, std=std)
    return model(x)


def chunk_plan(length: int, chunk: int, margin: int = DEFAULT_MARGIN, fade: int = DEFAULT_FADE):
    """[(start, end)] of chunks covering `length`; starts are multiples of ALIGN."""
    hop = ((chunk - 2 * margin - fade) // ALIGN) * ALIGN
    if hop <= 0:
        raise ValueError(
            f"chunk of {chunk} samples is too short for margin {margin} and fade {fade}; "
            f"use at least {2 * margin + fade + ALIGN} samples"
        )
    starts = [0]
    while starts[-1] + chunk < length:
        starts.append(starts[-1] + hop)
    return [(s, min(s + chunk, length)) for s in starts]


def _weights(n: int, first: bool, last: bool, margin: int, fade: int) -> np.ndarray:
    w = np.ones(n, dtype=np.float64)
    ramp = (np.arange(fade) + 0.5) / fade
    if not first:
        w[:margin] = 0.0
        w[margin : margin + fade] = ramp
    if not last:
        w[n - margin :] = 0.0
        w[n - margin - fade : n - margin] = ramp[::-1]
    return w


@torch.no_grad()
def enhance_signal(
    model,
    x: np.ndarray,
    chunk: int | None = None,
    margin: int = DEFAULT_MARGIN,
    fade: int = DEFAULT_FADE,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Enhance a mono signal (T,) -> (T,); `chunk` samples per chunk, or the whole file."""
    x = np.asarray(x, dtype=np.float32)
    t = torch.from_numpy(x)[None, None].to(device)
    std = t.std(dim=-1, keepdim=True)  # the whole file's scale, for every chunk
    if chunk is None or len(x) <= chunk:
        return _call(model, t, std)[0, 0].cpu().numpy()
    plan = chunk_plan(len(x), chunk, margin, fade)
    out = np.zeros(len(x), dtype=np.float64)
    wsum = np.zeros(len(x), dtype=np.float64)
    for k, (a, b) in enumerate(tqdm(plan, desc="chunks", leave=False, disable=not progress)):
        y = _call(model, t[..., a:b], std)[0, 0].cpu().numpy()
        w = _weights(b - a, k == 0, k == len(plan) - 1, margin, fade)
        out[a:b] += w * y
        wsum[a:b] += w
    return (out / wsum).astype(np.float32)


def enhance_files(
    model,
    inputs: list,
    out_dir,
    chunk_seconds: float | None = None,
    device: str = "cpu",
) -> tuple[list[Path], list[AudioError]]:
    """Enhance files or folders of files into `out_dir` (same names, 16 kHz).

    A file that cannot be read is reported by name and skipped; the others are still written.
    Returns (written paths, errors).
    """
    files: list[Path] = []
    for item in inputs:
        item = Path(item)
        files += list_audio(item) if item.is_dir() else [item]
    out_dir = Path(out_dir)
    chunk = None if chunk_seconds is None else int(chunk_seconds * SAMPLE_RATE)
    model = fold_batchnorm(model).to(device)
    written, errors = [], []
    for f in tqdm(files, desc="files", unit="file"):
        try:
            x = read_audio(f)
        except AudioError as err:
            print(f"error: {err}", file=sys.stderr)
            errors.append(err)
            continue
        y = enhance_signal(model, x, chunk=chunk, device=device, progress=True)
        written.append(write_audio(out_dir / f.name, y))
    return written, errors
