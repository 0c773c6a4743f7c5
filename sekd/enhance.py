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

import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.audio import (
    SAMPLE_RATE,
    AudioError,
    list_audio,
    list_other,
    output_name,
    read_audio,
    write_audio,
)
from .models.fuse import fold_batchnorm

ALIGN = 4096
DEFAULT_MARGIN = SAMPLE_RATE  # 1 s of context on each side of a chunk boundary
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
    if len(x) < 2:
        raise ValueError(f"need at least 2 samples, got {len(x)}")
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


MIN_CHUNK = 2 * DEFAULT_MARGIN + DEFAULT_FADE + ALIGN  # samples: context, fade, one hop


def chunk_samples(chunk_seconds: float | None) -> int | None:
    """`--chunk-seconds` in samples, checked: finite, and long enough for the chunk plan."""
    if chunk_seconds is None:
        return None
    if not math.isfinite(chunk_seconds) or chunk_seconds <= 0:
        raise ValueError(
            f"--chunk-seconds must be a positive number of seconds, got {chunk_seconds}"
        )
    if chunk_seconds * SAMPLE_RATE < MIN_CHUNK:
        least = math.ceil(MIN_CHUNK / SAMPLE_RATE * 100) / 100
        raise ValueError(
            f"--chunk-seconds {chunk_seconds:g} is too short: a chunk needs at least "
            f"{least:.2f} s ({DEFAULT_MARGIN / SAMPLE_RATE:g} s "
            f"of context on each side, a {DEFAULT_FADE / SAMPLE_RATE:.3f} s cross-fade and a "
            f"{ALIGN / SAMPLE_RATE:.3f} s step)"
        )
    return int(chunk_seconds * SAMPLE_RATE)


def _listed(paths, most: int = 5) -> str:
    names = [str(p) for p in paths]
    more = f" ... ({len(names)} in all)" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def plan_outputs(inputs, out_dir, overwrite: bool = False):
    """(jobs, notes): the (input, output) pairs of an enhancement, checked before anything runs.

    Folders contribute their audio files (every format soundfile reads; other files are noted
    as skipped). Errors, before any file is written: a missing input, an --output that is a
    file or cannot be written, two inputs that would write the same output name, and, without
    `overwrite`, an output that would replace an input file or any existing file.
    """
    out_dir = Path(out_dir)
    files, notes = [], []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            files += list_audio(item)
            other = list_other(item)
            if other:
                notes.append(f"skipped {len(other)} non-audio file(s) in {item}: {_listed(other)}")
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"--input {item}: no such file or folder")
    if not files:
        raise ValueError(f"no audio files in --input {_listed(inputs)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--output {out_dir} is a file, not a folder")
    jobs = [(f, out_dir / output_name(f)) for f in files]
    by_out: dict[Path, list[Path]] = {}
    for src, dst in jobs:
        by_out.setdefault(dst, []).append(src)
    clashes = {d: s for d, s in by_out.items() if len(s) > 1}
    if clashes:
        d, s = next(iter(clashes.items()))
        raise ValueError(
            f"{len(clashes)} output name(s) would be written twice, e.g. {d} from "
            f"{_listed(s)}; enhance those inputs into separate --output folders"
        )
    if not overwrite:
        sources = {src.resolve() for src in files}
        replaced = [dst for _, dst in jobs if dst.resolve() in sources]
        if replaced:
            raise FileExistsError(
                f"--output {out_dir} holds input files that the enhanced files would replace "
                f"({_listed(replaced)}); choose another --output, or pass --overwrite"
            )
        existing = [dst for _, dst in jobs if dst.exists()]
        if existing:
            raise FileExistsError(
                f"{len(existing)} output file(s) exist already ({_listed(existing)}); "
                "choose another --output, or pass --overwrite to replace them"
            )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".sekd-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"--output {out_dir} cannot be written ({exc.strerror})") from None
    return jobs, notes


def enhance_files(
    model,
    inputs: list,
    out_dir,
    chunk_seconds: float | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[list[Path], list[AudioError]]:
    """Enhance files or folders of files into `out_dir`, one file at a time (at batch 1, as
    the papers evaluate: batching files of different lengths would pad them and change the
    per-file input normalisation).

    Everything that can be checked before the model runs is (`plan_outputs`, the chunk
    length). Then a file that cannot be read, enhanced or written is reported by name (on
    stderr, once) and skipped; the others are still written. WAV and FLAC keep their names;
    other formats are written as WAV. Returns (written paths, per-file errors).
    """
    chunk = chunk_samples(chunk_seconds)
    jobs, notes = plan_outputs(inputs, out_dir, overwrite)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    model = fold_batchnorm(model).to(device)
    written, errors = [], []
    for src, dst in tqdm(jobs, desc="files", unit="file", disable=not progress):
        try:
            x = read_audio(src)
            try:
                y = enhance_signal(model, x, chunk=chunk, device=device, progress=progress)
            except (ValueError, RuntimeError) as exc:
                raise AudioError(src, f"cannot be enhanced ({exc})") from None
            try:
                written.append(write_audio(dst, y))
            except (OSError, RuntimeError, AudioError) as exc:
                raise AudioError(src, f"enhanced, but writing {dst} failed ({exc})") from None
        except AudioError as err:
            print(f"failed: {err}", file=sys.stderr)
            errors.append(err)
    return written, errors
