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

Level. MANNER divides its input by `1e-3 + std` (the official code's, and DEMUCS's, floor), so
a quiet recording would be enhanced at another operating point than a loud one: at -61 dBFS it
came out at half its level. Files are therefore enhanced at one nominal level: the input's DC
offset is removed, the signal is scaled to an RMS of -26 dBFS (ITU-T P.56's nominal speech
level), enhanced, and scaled back. Enhancement is then scale-equivariant (tested from -20 to
-80 dBFS) and a DC offset does not change it. The study scores models on the files as they are
(`level=None`, the function the papers evaluate).
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
    audio_subtype,
    clipped_samples,
    list_audio,
    list_other,
    list_subfolders,
    output_name,
    read_audio,
    write_audio,
)
from .models.fuse import fold_batchnorm
from .outputs import check_outputs, check_writable

ALIGN = 4096
DEFAULT_MARGIN = SAMPLE_RATE  # 1 s of context on each side of a chunk boundary
DEFAULT_FADE = 4096
NOMINAL_RMS = 10 ** (-26 / 20)  # -26 dBFS: the level every file is enhanced at


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


def to_nominal_level(x: np.ndarray, level: float = NOMINAL_RMS) -> tuple[np.ndarray, float]:
    """(x without its DC offset, scaled to RMS `level`; the scale applied). A signal that is
    only an offset has no level and is a ValueError."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    rms = float(np.sqrt(np.mean(x**2)))
    if rms == 0.0:
        raise ValueError("the signal is constant (only a DC offset): nothing to enhance")
    scale = level / rms
    return (x * scale).astype(np.float32), scale


@torch.no_grad()
def enhance_signal(
    model,
    x: np.ndarray,
    chunk: int | None = None,
    margin: int = DEFAULT_MARGIN,
    fade: int = DEFAULT_FADE,
    device: str | torch.device = "cpu",
    progress: bool = False,
    level: float | None = NOMINAL_RMS,
) -> np.ndarray:
    """Enhance a mono signal (T,) -> (T,); `chunk` samples per chunk, or the whole file.
    `level`: the RMS the signal is enhanced at (its DC offset removed; the output scaled back
    to the input's level), or None for the model on the signal as it is."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) < 2:
        raise ValueError(f"need at least 2 samples, got {len(x)}")
    scale = 1.0
    if level is not None:
        x, scale = to_nominal_level(x, level)
    return _enhance_at_scale(model, x, chunk, margin, fade, device, progress) / np.float32(scale)


def _enhance_at_scale(model, x, chunk, margin, fade, device, progress) -> np.ndarray:
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


def _as_list(inputs) -> list:
    """A path or a list of paths as a list (a str is one path, not its characters)."""
    if isinstance(inputs, (str, os.PathLike)):
        return [inputs]
    return list(inputs)


def _input_files(inputs) -> tuple[list[Path], list[str]]:
    """(audio files, notes) of files and folders given as --input."""
    files, notes = [], []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            files += list_audio(item)
            other, folders = list_other(item), list_subfolders(item)
            if other:
                notes.append(f"skipped {len(other)} non-audio file(s) in {item}: {_listed(other)}")
            if folders:
                notes.append(
                    f"skipped {len(folders)} subfolder(s) of {item} (folders are not searched; "
                    f"pass them as --input): {_listed(folders)}"
                )
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"--input {item}: no such file or folder")
    if not files:
        raise ValueError(f"no audio files in --input {_listed(inputs)}")
    return files, notes


def _no_clashes(jobs) -> None:
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


def plan_outputs(inputs, out_dir, overwrite: bool = False, skip_existing: bool = False):
    """(jobs, notes): the (input, output) pairs of an enhancement, checked before anything runs.

    Folders contribute their audio files (every format soundfile reads; other files and
    subfolders are noted as skipped). Errors, before any file is written: a missing input, an
    --output that is a file or cannot be written, two inputs that would write the same output
    name, an output that is a symbolic link, and, without `overwrite`, an output that would
    replace an input file or any existing file. `skip_existing` leaves out the inputs whose
    output exists (complete by construction: every output is written atomically), to finish
    an interrupted run.
    """
    if overwrite and skip_existing:
        raise ValueError("--overwrite and --skip-existing exclude each other")
    out_dir = Path(out_dir)
    files, notes = _input_files(_as_list(inputs))
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--output {out_dir} is a file, not a folder")
    jobs = [(f, out_dir / output_name(f)) for f in files]
    _no_clashes(jobs)
    if skip_existing:
        done = [dst for _, dst in jobs if dst.exists() and not dst.is_symlink()]
        jobs = [(src, dst) for src, dst in jobs if dst not in done]
        if done:
            notes.append(f"skipped {len(done)} input(s) whose output exists: {_listed(done)}")
    if not overwrite:
        sources = {src.resolve() for src in files}
        replaced = [dst for _, dst in jobs if dst.resolve() in sources]
        if replaced:
            raise FileExistsError(
                f"--output {out_dir} holds input files that the enhanced files would replace "
                f"({_listed(replaced)}); choose another --output, or pass --overwrite"
            )
    others = " (to replace them), or --skip-existing to enhance only the other inputs"
    check_outputs([dst for _, dst in jobs], overwrite, files, may_replace_inputs=overwrite,
                  hint=others)  # fmt: skip
    try:
        check_writable(out_dir)
    except PermissionError as exc:
        raise PermissionError(f"--output {exc}") from None
    return jobs, notes


def _enhance_one(model, src: Path, dst: Path, chunk, device, overwrite, progress) -> Path:
    """Read, enhance and write one file (its sample format kept where the output format can
    hold it); every failure is an AudioError naming the input."""
    x = read_audio(src)
    try:
        y = enhance_signal(model, x, chunk=chunk, device=device, progress=progress)
    except (ValueError, RuntimeError) as exc:
        raise AudioError(src, f"cannot be enhanced ({exc})") from None
    subtype = audio_subtype(src)
    try:
        path = write_audio(dst, y, subtype=subtype, overwrite=overwrite)
    except (OSError, RuntimeError, AudioError) as exc:
        raise AudioError(src, f"enhanced, but writing {dst} failed ({exc})") from None
    clipped = clipped_samples(y, subtype)
    if clipped:
        peak = 20 * math.log10(float(np.max(np.abs(y))))
        print(
            f"note: {dst}: the enhanced signal peaks at {peak:+.1f} dBFS; {clipped} sample(s) "
            f"were clipped to full scale in its {subtype} format (a float WAV input keeps them)",
            file=sys.stderr,
        )
    return path


def load_enhancer(path):
    """The model of a checkpoint: a sekd .pt (PyTorch) or an exported .onnx (ONNX Runtime,
    `sekd.export.OnnxModel`); either enhances through `enhance_signal` / `enhance_files`."""
    if Path(path).suffix == ".onnx":
        from .export import OnnxModel

        return OnnxModel(path)
    from .models import load_model

    return load_model(path)


def enhance_files(
    model,
    inputs,
    out_dir,
    chunk_seconds: float | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
    skip_existing: bool = False,
) -> tuple[list[Path], list[AudioError]]:
    """Enhance files or folders of files (a path or a list of them) into `out_dir`, one file
    at a time (at batch 1, as the papers evaluate: batching files of different lengths would
    pad them and change the per-file input normalisation), each at the nominal level
    (`enhance_signal`).

    Everything that can be checked before the model runs is (the device, `plan_outputs`, the
    chunk length). Then a file that cannot be read, enhanced or written is reported by name
    (on stderr, once) and skipped; the others are still written. WAV and FLAC keep their names
    and their sample format (a 24-bit input gives a 24-bit output); other formats are written
    as float WAV. Every output is written atomically. Returns (written paths, per-file errors).
    """
    from .device import pick_device

    device = pick_device(str(device))
    chunk = chunk_samples(chunk_seconds)
    jobs, notes = plan_outputs(inputs, out_dir, overwrite, skip_existing)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if isinstance(model, torch.nn.Module):
        model = fold_batchnorm(model).to(device)
    elif device.type != "cpu":
        raise ValueError(f"an ONNX model runs on the CPU here (ONNX Runtime), not {device}")
    written, errors = [], []
    for src, dst in tqdm(jobs, desc="files", unit="file", disable=not progress):
        try:
            written.append(_enhance_one(model, src, dst, chunk, device, overwrite, progress))
        except AudioError as err:
            print(f"failed: {err}", file=sys.stderr)
            errors.append(err)
    return written, errors
