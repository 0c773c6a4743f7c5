"""Torch datasets: on-the-fly mixing, paired folders (VoiceBank-DEMAND layout), a fixed test set."""

from __future__ import annotations

import csv
import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from .audio import SAMPLE_RATE, AudioError, list_audio, read_audio, resample, write_audio
from .corpus import Corpus, CorpusFile
from .mixing import ENERGY_FLOOR, MixingError, mix

VOICEBANK_FOLDERS = {
    "train": ("noisy_trainset_28spk_wav", "clean_trainset_28spk_wav"),
    "test": ("noisy_testset_wav", "clean_testset_wav"),
}
VOICEBANK_VALID_SPEAKERS = ("p282", "p287")


def _example(mixture, clean, noise, snr, noise_type, name) -> dict:
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]  # noqa: E731
    return {
        "mixture": as_t(mixture),  # (1, T)
        "clean": as_t(clean),
        "noise": as_t(noise),
        "snr": float(snr),
        "noise_type": noise_type,
        "name": name,
    }


def load_many(paths, sr: int = SAMPLE_RATE) -> tuple[dict[Path, np.ndarray], list[AudioError]]:
    """Read every path; broken files are warned about by name, collected, and skipped."""
    good, errors = {}, []
    for p in paths:
        try:
            good[Path(p)] = read_audio(p, sr)
        except AudioError as err:
            warnings.warn(f"skipping {err}", stacklevel=2)
            errors.append(err)
    return good, errors


class OnTheFlyMixDataset(Dataset):
    """Clean speech + noise mixed at random SNRs, with random fixed-length crops.

    Example `i` of epoch `e` is a pure function of (seed, e, i): call `set_epoch(e)` each epoch.
    `snrs` is either a list of SNRs to draw from or a `(low, high)` range given as `snr_range`.
    Each item is a dict with mixture/clean/noise tensors (1, T), `snr` and `noise_type`.
    """

    def __init__(
        self,
        speech: list,
        noise: list,
        snrs=None,
        snr_range: tuple[float, float] | None = None,
        segment: int = 16_384,
        length: int = 1000,
        seed: int = 0,
    ):
        if (snrs is None) == (snr_range is None):
            raise ValueError("give exactly one of snrs (a list) or snr_range (low, high)")
        self.snrs = None if snrs is None else [float(s) for s in snrs]
        if self.snrs is not None and not self.snrs:
            raise ValueError("snrs is empty")
        self.snr_range = snr_range
        self.segment, self.length, self.seed, self.epoch = int(segment), int(length), seed, 0
        speech_paths = [f.path if isinstance(f, CorpusFile) else Path(f) for f in speech]
        self.noise_types = {
            (f.path if isinstance(f, CorpusFile) else Path(f)): (
                f.noise_type if isinstance(f, CorpusFile) else Path(f).stem
            )
            for f in noise
        }
        self.speech, err_s = load_many(speech_paths)
        self.noise, err_n = load_many(self.noise_types)
        self.errors = err_s + err_n
        if not self.speech or not self.noise:
            raise ValueError("OnTheFlyMixDataset needs at least one readable speech and noise file")
        self._speech_keys = list(self.speech)
        self._noise_keys = list(self.noise)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def draw_snr(self, rng: np.random.Generator) -> float:
        if self.snrs is not None:
            return self.snrs[int(rng.integers(len(self.snrs)))]
        lo, hi = self.snr_range
        return float(rng.uniform(lo, hi))

    def _crop(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if len(x) <= self.segment:
            return np.pad(x, (0, self.segment - len(x)))
        start = int(rng.integers(0, len(x) - self.segment + 1))
        return x[start : start + self.segment]

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        for _ in range(20):  # a crop can land in a pause; redraw rather than fail
            sp = self._speech_keys[int(rng.integers(len(self._speech_keys)))]
            clean = self._crop(self.speech[sp], rng)
            if np.mean(clean.astype(np.float64) ** 2) >= ENERGY_FLOOR * 100:
                break
        nk = self._noise_keys[int(rng.integers(len(self._noise_keys)))]
        snr = self.draw_snr(rng)
        m = mix(clean, self.noise[nk], snr, rng, self.noise_types[nk], source=f"({sp}, {nk})")
        return _example(m.mixture, m.clean, m.noise, m.snr, m.noise_type, sp.stem)


def voicebank_dirs(root, split: str = "train") -> tuple[Path, Path]:
    """(noisy_dir, clean_dir) inside an official VoiceBank-DEMAND tree."""
    if split not in VOICEBANK_FOLDERS:
        raise ValueError(f"unknown VoiceBank-DEMAND split {split!r}; known: train, test")
    noisy, clean = VOICEBANK_FOLDERS[split]
    return Path(root) / noisy, Path(root) / clean


def speaker_of(name: str) -> str:
    """VoiceBank-style speaker id: the part of the file stem before the first underscore."""
    return Path(name).stem.split("_")[0]


def _by_stem(folder, label: str) -> dict[str, Path]:
    """{stem: file} of a folder's audio files; two files of one stem (x.wav and x.flac) are an
    error naming them, since either could be the one meant."""
    out: dict[str, Path] = {}
    for p in list_audio(folder):
        if p.stem in out:
            raise ValueError(
                f"{label} {folder} holds {out[p.stem].name} and {p.name}: two files of one name; "
                "keep one"
            )
        out[p.stem] = p
    return out


def match_pairs(noisy_dir, clean_dir, labels=("noisy", "clean")) -> list[tuple[Path, Path]]:
    """(first, second) pairs of files matched by stem (WAV or FLAC on either side).

    An empty first folder, two files of one stem in a folder, or names present on one side
    only, are errors that name the folders
    (by `labels`) and list the unmatched names (the first ten, with the count).
    """
    first, second = _by_stem(noisy_dir, labels[0]), _by_stem(clean_dir, labels[1])
    if not first:
        raise ValueError(f"no WAV/FLAC files in {noisy_dir}")

    def listed(names):
        more = f" ... ({len(names)} in all)" if len(names) > 10 else ""
        return f"{names[:10]}{more}" if names else "none"

    only_a, only_b = sorted(set(first) - set(second)), sorted(set(second) - set(first))
    if only_a or only_b:
        raise ValueError(
            f"file names do not match between {noisy_dir} and {clean_dir}: "
            f"only in {labels[0]}: {listed(only_a)}; only in {labels[1]}: {listed(only_b)}"
        )
    return [(first[k], second[k]) for k in sorted(first)]


class PairedFolderDataset(Dataset):
    """Noisy/clean folders with matching names (VoiceBank-DEMAND layout, `pairs/*/{noisy,clean}`).

    With `segment`, each file is cut into windows of `segment` samples with `hop` (the last
    window zero-padded, as in the MANNER recipe); without it, items are whole utterances.
    `speakers` keeps only those speakers, `exclude_speakers` drops them (VoiceBank naming).
    Broken files are reported by name (warning, `self.errors`) and skipped.
    """

    def __init__(
        self,
        noisy_dir,
        clean_dir,
        segment: int | None = None,
        hop: int | None = None,
        speakers=None,
        exclude_speakers=None,
    ):
        pairs = match_pairs(noisy_dir, clean_dir)
        if speakers is not None:
            pairs = [p for p in pairs if speaker_of(p[0].name) in set(speakers)]
        if exclude_speakers is not None:
            pairs = [p for p in pairs if speaker_of(p[0].name) not in set(exclude_speakers)]
        self.segment = segment
        self.hop = hop or segment
        self.errors: list[AudioError] = []
        self.audio: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for n, c in pairs:
            try:
                xn, xc = read_audio(n), read_audio(c)
            except AudioError as err:
                warnings.warn(f"skipping pair {n.stem}: {err}", stacklevel=2)
                self.errors.append(err)
                continue
            if len(xn) != len(xc):
                k = min(len(xn), len(xc))
                if abs(len(xn) - len(xc)) > 160:
                    err = AudioError(n, f"length {len(xn)} differs from clean {len(xc)}")
                    warnings.warn(f"skipping pair {n.stem}: {err}", stacklevel=2)
                    self.errors.append(err)
                    continue
                xn, xc = xn[:k], xc[:k]
            self.audio[n.stem] = (xn, xc)
        self.index: list[tuple[str, int]] = []
        for name, (xn, _) in self.audio.items():
            if segment is None:
                self.index.append((name, 0))
            else:
                n_win = max(1, int(np.ceil((len(xn) - segment) / self.hop)) + 1)
                self.index += [(name, k * self.hop) for k in range(n_win)]

    @property
    def names(self) -> list[str]:
        return list(self.audio)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        name, start = self.index[i]
        xn, xc = self.audio[name]
        if self.segment is not None:
            xn, xc = xn[start : start + self.segment], xc[start : start + self.segment]
            pad = self.segment - len(xn)
            xn, xc = np.pad(xn, (0, pad)), np.pad(xc, (0, pad))
        return _example(xn, xc, xn - xc, float("nan"), "", name)


def voicebank_train_valid(root, segment: int = 4 * SAMPLE_RATE, hop: int = SAMPLE_RATE):
    """The MANNER split: VoiceBank-DEMAND training folders minus p282/p287, which validate."""
    noisy, clean = voicebank_dirs(root, "train")
    train = PairedFolderDataset(
        noisy, clean, segment=segment, hop=hop, exclude_speakers=VOICEBANK_VALID_SPEAKERS
    )
    valid = PairedFolderDataset(noisy, clean, speakers=VOICEBANK_VALID_SPEAKERS)
    return train, valid


def prepare_voicebank(root, cache, sr: int = SAMPLE_RATE) -> Path:
    """Resample an official 48 kHz VoiceBank-DEMAND tree into `cache` at 16 kHz (idempotent).

    Only the four standard folders are converted; files already in the cache are kept when
    they are at `sr` (a kept file at another rate is an error naming it). `cache` must not be
    `root` or inside it. Broken files are warned about by name and skipped. Returns the cache
    root, a tree with the same folder names that `voicebank_dirs` understands.
    """
    root, cache = Path(root), Path(cache)
    if cache.resolve() == root.resolve() or root.resolve() in cache.resolve().parents:
        raise ValueError(
            f"--out {cache} is the source tree {root} or inside it: the 16 kHz files need a "
            "folder of their own"
        )
    folders = [f for pair in VOICEBANK_FOLDERS.values() for f in pair]
    present = [f for f in folders if (root / f).is_dir()]
    if not present:
        raise FileNotFoundError(f"no VoiceBank-DEMAND folders {folders} under {root}")
    for folder in present:
        for src in list_audio(root / folder):
            dst = cache / folder / (src.stem + ".wav")
            if dst.exists():
                _check_kept(dst, sr)
                continue
            try:
                x = read_audio(src, sr)
            except AudioError as err:
                warnings.warn(f"skipping {err}", stacklevel=2)
                continue
            write_audio(dst, x, sr)
    return cache


def _check_kept(path: Path, sr: int) -> None:
    kept = sf.info(str(path)).samplerate
    if kept != sr:
        raise ValueError(
            f"{path} is kept from an earlier run but is at {kept} Hz, not {sr} Hz: remove it "
            "(or the whole --out tree) and run again"
        )


# ----------------------------------------------------------------------------- fixed test set
@dataclass(frozen=True)
class PremixSpec:
    """What a pre-mixed test set contains; its hash names the folder."""

    speech_datasets: tuple[str, ...] = ("grid", "ljspeech", "emodb")
    speech_split: str = "test"
    utterances: int = 12
    noise_types: tuple[str, ...] = ("babble", "factory1", "speech_shaped_noise", "white")
    noise_datasets: tuple[str, ...] = ("noisex-92",)
    noise_split: str = "test"
    snrs: tuple[float, ...] = (-5.0, 0.0, 5.0, 10.0)
    seed: int = 1234
    max_seconds: float = 6.0
    # speech files (corpus-relative paths) never drawn: a set disjoint from another set's speech
    exclude_speech: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    def key(self) -> str:
        d = asdict(self)
        d.pop("extra")
        if not d["exclude_speech"]:  # the sets built before the field keep their folders
            d.pop("exclude_speech")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def build_premixed(out_root, spec: PremixSpec = PremixSpec(), corpus: Corpus | None = None) -> Path:
    """Write the speech x noise x SNR grid once to `out_root/premix-<hash>/` with a manifest.

    Deterministic given the spec; a folder that already holds a complete manifest is reused.
    """
    corpus = corpus or Corpus()
    out = Path(out_root) / f"premix-{spec.key()}"
    manifest = out / "manifest.csv"
    if manifest.is_file():
        return out
    rng = np.random.default_rng(spec.seed)
    speech = corpus.select(kind="speech", dataset=spec.speech_datasets, split=spec.speech_split)
    excluded = set(spec.exclude_speech)
    speech = [s for s in speech if str(s.path.relative_to(corpus.root)) not in excluded]
    pick = sorted(rng.choice(len(speech), size=min(spec.utterances, len(speech)), replace=False))
    speech = [speech[i] for i in pick]
    noises = corpus.select(
        kind="noise",
        dataset=spec.noise_datasets,
        split=spec.noise_split,
        noise_type=spec.noise_types,
    )
    missing = sorted(set(spec.noise_types) - {n.noise_type for n in noises})
    if missing:
        raise ValueError(
            f"no {spec.noise_split} recordings of noise types {missing} in {spec.noise_datasets}"
        )
    tmp = out.with_name(out.name + ".partial")
    rows = []
    max_len = int(spec.max_seconds * SAMPLE_RATE)
    for s in speech:
        clean = read_audio(s.path)[:max_len]
        for nf in noises:
            noise = read_audio(nf.path)
            for snr in spec.snrs:
                m = mix(clean, noise, snr, rng, nf.noise_type, source=f"({s.path}, {nf.path})")
                name = f"{s.path.stem}__{nf.noise_type}__{snr:+g}dB"
                write_audio(tmp / "noisy" / f"{name}.wav", m.mixture)
                write_audio(tmp / "clean" / f"{name}.wav", m.clean)
                rows.append(
                    {
                        "name": name,
                        "speech": str(s.path.relative_to(corpus.root)),
                        "dataset": s.dataset,
                        "noise_type": nf.noise_type,
                        "snr": snr,
                    }
                )
    with open(tmp / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (tmp / "spec.json").write_text(json.dumps(asdict(spec), indent=1))
    tmp.replace(out)
    return out


class PremixedTestSet(Dataset):
    """A folder written by `build_premixed`: whole utterances with their SNR and noise type."""

    def __init__(self, folder):
        self.folder = Path(folder)
        with open(self.folder / "manifest.csv", newline="") as fh:
            self.rows = list(csv.DictReader(fh))

    def __len__(self) -> int:
        return len(self.rows)

    def pairs(self) -> list[tuple[Path, Path]]:
        return [
            (self.folder / "noisy" / f"{r['name']}.wav", self.folder / "clean" / f"{r['name']}.wav")
            for r in self.rows
        ]

    def __getitem__(self, i: int) -> dict:
        r = self.rows[i]
        n, c = self.pairs()[i]
        xn, xc = read_audio(n), read_audio(c)
        return _example(xn, xc, xn - xc, float(r["snr"]), r["noise_type"], r["name"])


def collate(batch: list[dict]) -> dict:
    """Pad (zeros, right) or keep signals to the longest item; returns `lengths` (B,)."""
    lengths = torch.tensor([b["mixture"].shape[-1] for b in batch])
    T = int(lengths.max())
    out = {"lengths": lengths}
    for key in ("mixture", "clean", "noise"):
        out[key] = torch.stack(
            [torch.nn.functional.pad(b[key], (0, T - b[key].shape[-1])) for b in batch]
        )  # (B, 1, T)
    out["snr"] = torch.tensor([b["snr"] for b in batch], dtype=torch.float32)
    out["noise_type"] = [b["noise_type"] for b in batch]
    out["name"] = [b["name"] for b in batch]
    return out


__all__ = [
    "OnTheFlyMixDataset",
    "PairedFolderDataset",
    "PremixSpec",
    "PremixedTestSet",
    "build_premixed",
    "collate",
    "match_pairs",
    "prepare_voicebank",
    "voicebank_dirs",
    "voicebank_train_valid",
    "resample",
    "MixingError",
]
