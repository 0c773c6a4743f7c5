"""Audio I/O: every file becomes float32 mono at 16 kHz, or raises `AudioError` naming it."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ..outputs import atomic_path

SAMPLE_RATE = 16_000
# The lowest sample rate read as audio (narrowband telephone speech); a lower rate is a broken
# header, not a recording (resampling 20 samples at 1 Hz would make 20 s of output).
MIN_SAMPLE_RATE = 8_000
# What `list_audio` takes from a folder: every format soundfile (libsndfile) reads.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au")
# What `write_audio` writes; any other input format is written as WAV.
WRITE_EXTENSIONS = (".wav", ".flac")
# The sample formats an output keeps from its input (`write_audio`'s subtype); compressed ones
# (MP3, Vorbis, ...) are written as the default instead.
PLAIN_SUBTYPES = ("PCM_U8", "PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


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
    """Read an audio file as float32 mono at `sr`, shape (T,).

    Integer formats are scaled to [-1, 1) by soundfile, stereo is averaged to mono and other
    sample rates are resampled. Unreadable, empty, non-finite and all-zero files, sample
    rates below MIN_SAMPLE_RATE and channels that cancel when averaged raise `AudioError`
    (all-zero is allowed with `allow_silent=True`).
    """
    path = Path(path)
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError)
        reason = str(exc).replace(f"Error opening {str(path)!r}: ", "")  # the path is named once
        raise AudioError(path, f"unreadable audio ({reason})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "empty file (0 samples)")
    if file_sr < MIN_SAMPLE_RATE:
        raise AudioError(
            path, f"sample rate {file_sr} Hz is below {MIN_SAMPLE_RATE} Hz (a broken header?)"
        )
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(x)):
        raise AudioError(path, "contains NaN or Inf samples")
    if not allow_silent and not np.any(x):
        if np.any(data):
            raise AudioError(
                path,
                f"its {data.shape[1]} channels cancel when averaged to mono (one is another "
                "inverted); keep one channel, e.g. `sox in.wav out.wav remix 1`",
            )
        raise AudioError(path, "all samples are zero (silent file)")
    return np.ascontiguousarray(resample(x, file_sr, sr), dtype=np.float32)


def audio_subtype(path) -> str:
    """The sample format of an audio file as soundfile names it (PCM_16, PCM_24, FLOAT, ...)."""
    return sf.info(str(path)).subtype


def output_name(path) -> str:
    """The file name an enhanced copy of `path` gets: the same name for WAV / FLAC, the stem
    with .wav for formats that are read but not written (OGG, MP3, AIFF, ...)."""
    path = Path(path)
    return path.name if path.suffix.lower() in WRITE_EXTENSIONS else path.stem + ".wav"


def write_audio(
    path, x, sr: int = SAMPLE_RATE, subtype: str | None = None, overwrite: bool = True
) -> Path:
    """Write a mono signal (numpy or torch, any leading singleton dims) as WAV or FLAC (the
    format follows the extension; other extensions are an AudioError), atomically
    (`sekd.outputs.atomic_path`: never a partial file under `path`). `subtype`: the sample
    format (PCM_16, PCM_24, FLOAT, ...); default float WAV (lossless for enhanced outputs) or
    16-bit FLAC (FLAC has no float format); one the format cannot hold falls back to the
    default. Integer formats clip samples beyond full scale (`clipped_samples` counts them)."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_EXTENSIONS:
        raise AudioError(path, f"cannot write {path.suffix or 'files without an extension'}; "
                         f"use one of {', '.join(WRITE_EXTENSIONS)}")  # fmt: skip
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    fmt = path.suffix.lower().lstrip(".").upper()
    if subtype not in PLAIN_SUBTYPES or not sf.check_format(fmt, subtype):
        subtype = "FLOAT" if fmt == "WAV" else "PCM_16"
    with atomic_path(path, overwrite) as tmp:
        sf.write(str(tmp), x, sr, subtype=subtype, format=fmt)
    return path


def clipped_samples(x: np.ndarray, subtype: str) -> int:
    """How many samples of `x` an integer `subtype` would clip (|x| beyond full scale)."""
    if not subtype.startswith("PCM") and subtype not in ("ALAW", "ULAW"):
        return 0
    return int(np.count_nonzero(np.abs(np.asarray(x)) > 1.0))


def _regular(p: Path) -> bool:
    try:
        return p.is_file()  # False for folders, FIFOs, devices and broken or looping links
    except OSError:
        return False


def list_audio(folder) -> list[Path]:
    """Sorted audio files (AUDIO_EXTENSIONS, regular files) directly inside `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and _regular(p)
    )


def list_other(folder) -> list[Path]:
    """Files directly inside `folder` that `list_audio` leaves out: regular files of other
    extensions, and entries of an audio name that are not regular files (a FIFO, a broken or
    looping link). Subfolders are `list_subfolders`'."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if (_regular(p) and p.suffix.lower() not in AUDIO_EXTENSIONS)
        or (not _regular(p) and not p.is_dir())
    )


def list_subfolders(folder) -> list[Path]:
    """Folders directly inside `folder` (not searched: a folder named x.wav among them too)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_dir())
