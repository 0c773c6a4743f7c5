"""The bundled corpus (`data/corpus`): select files from its manifest, verify checksums."""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_corpus_root() -> Path:
    """`$SEKD_CORPUS` if set, else the copy shipped in the repository under `data/corpus`."""
    return Path(os.environ.get("SEKD_CORPUS", REPO_ROOT / "data" / "corpus"))


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    kind: str
    role: str
    dataset: str
    speaker: str
    noise_type: str
    split: str
    duration_s: float
    license: str
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


_FILTERS = ("kind", "role", "dataset", "speaker", "noise_type", "split")


class Corpus:
    """The manifest of a corpus folder.

    >>> Corpus().select(kind="speech", dataset="grid", split="test")[:1]  # doctest: +SKIP
    """

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_corpus_root()
        manifest = self.root / "manifest.csv"
        if not manifest.is_file():
            raise FileNotFoundError(f"no manifest.csv in corpus folder {self.root}")
        with open(manifest, newline="") as fh:
            rows = list(csv.DictReader(fh))
        self.files = [
            CorpusFile(
                path=self.root / r["path"],
                kind=r["kind"],
                role=r["role"],
                dataset=r["dataset"],
                speaker=r["speaker"],
                noise_type=r["noise_type"],
                split=r["split"],
                duration_s=float(r["duration_s"]),
                license=r["license"],
                sha256=r["sha256"],
            )
            for r in rows
        ]

    def select(self, **filters) -> list[CorpusFile]:
        """Files whose fields match every filter; a filter value may be a string or a collection.

        Filters: kind, role, dataset, speaker, noise_type, split. An unknown filter is an error.
        """
        unknown = set(filters) - set(_FILTERS)
        if unknown:
            raise ValueError(f"unknown corpus filter(s) {sorted(unknown)}; known: {_FILTERS}")
        out = []
        for f in self.files:
            ok = True
            for key, want in filters.items():
                if want is None:
                    continue
                have = getattr(f, key)
                if isinstance(want, str):
                    ok = have == want
                else:
                    ok = have in set(want)
                if not ok:
                    break
            if ok:
                out.append(f)
        return out

    def values(self, field: str, **filters) -> list[str]:
        """Sorted distinct values of `field` among the selected files."""
        return sorted({getattr(f, field) for f in self.select(**filters)})

    def pair_dirs(self, dataset: str = "voicebank_demand", split: str = "test"):
        """(noisy_dir, clean_dir) of a bundled paired set: voicebank_demand/{train,test} or dns."""
        base = self.root / "pairs" / dataset
        if dataset != "dns":
            base = base / split
        return base / "noisy", base / "clean"

    def verify(self) -> list[str]:
        """Paths whose sha256 does not match the manifest (empty list: all good)."""
        bad = []
        for f in self.files:
            digest = hashlib.sha256(f.path.read_bytes()).hexdigest() if f.path.is_file() else None
            if digest != f.sha256:
                bad.append(str(f.path))
        return bad
