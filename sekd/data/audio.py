"""Audio I/O: every file becomes float32 mono at 16 kHz, or raises `AudioError` naming it."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
# What `list_audio` takes from a folder: every format soundfile (libsndfile) reads.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au")
# What `write_audio` writes; any other input format is written as WAV.
WRITE_EXTENSIONS = (".wav", ".flac")


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (scipy) along the last axis; identity when the rates match."""
    if sr_in == sr_out:
        return x
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(x, sr_out // g, sr_in // g, axis=-1).astype(np.float32)


def read_audio(path, sr: int = SAMPLE_RATE, allow_silent: bool = False) -> np.ndarray:
    """Read WAV/FLAC as float32 mono at `sr`, shape (T,).

    Integer formats are scaled to [-1, 1) by soundfile, stereo is averaged to mono and other
    sample rates are resampled. Unreadable, empty, non-finite and all-zero files raise
    `AudioError` (all-zero is allowed with `allow_silent=True`).
    """
    path = Path(path)
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError)
        reason = str(exc).replace(f"Error opening {str(path)!r}: ", "")  # the path is named once
        raise AudioError(path, f"unreadable audio ({reason})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "empty file (0 samples)")
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(x)):
        raise AudioError(path, "contains NaN or Inf samples")
    if not allow_silent and not np.any(x):
        raise AudioError(path, "all samples are zero (silent file)")
    return np.ascontiguousarray(resample(x, file_sr, sr), dtype=np.float32)


def output_name(path) -> str:
    """The file name an enhanced copy of `path` gets: the same name for WAV / FLAC, the stem
    with .wav for formats that are read but not written (OGG, MP3, AIFF, ...)."""
    path = Path(path)
    return path.name if path.suffix.lower() in WRITE_EXTENSIONS else path.stem + ".wav"


def write_audio(path, x, sr: int = SAMPLE_RATE) -> Path:
    """Write a mono signal (numpy or torch, any leading singleton dims) as float WAV or 16-bit
    FLAC (the format follows the extension; other extensions are an AudioError)."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_EXTENSIONS:
        raise AudioError(path, f"cannot write {path.suffix or 'files without an extension'}; "
                         f"use one of {', '.join(WRITE_EXTENSIONS)}")  # fmt: skip
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "PCM_16"
    if path.suffix.lower() == ".wav":
        subtype = "FLOAT"  # lossless for enhanced outputs; FLAC has no float subtype
    sf.write(str(path), x, sr, subtype=subtype)
    return path


def list_audio(folder) -> list[Path]:
    """Sorted audio files (AUDIO_EXTENSIONS) directly inside `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)


def list_other(folder) -> list[Path]:
    """Files directly inside `folder` that `list_audio` leaves out (by extension)."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and p.suffix.lower() not in AUDIO_EXTENSIONS
    )
