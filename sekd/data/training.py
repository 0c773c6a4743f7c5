"""What a training run reads: the training set of a `[data]` section (the one dispatch on
`data.source`), the validation utterances, the seeded order of global batches, and a
`DataLoader` that yields exactly those batches (worker processes or in-process)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader

from .audio import SAMPLE_RATE, read_audio
from .corpus import Corpus
from .datasets import OnTheFlyMixDataset, PairedFolderDataset, collate, voicebank_train_valid
from .mixing import mix

if TYPE_CHECKING:
    from ..config import DataConfig


@dataclass
class ValidItem:
    name: str
    noisy: np.ndarray
    clean: np.ndarray
    snr: float
    group: str = "mix"  # mix: on-the-fly validation mixtures; real: bundled recorded pairs


def build_train_set(d: DataConfig, seed: int, corpus: Corpus | None = None):
    """The training set of a `[data]` section: on-the-fly corpus mixtures, a paired folder, or
    a prepared VoiceBank-DEMAND tree (its MANNER training split)."""
    if d.source == "corpus":
        corpus = corpus or Corpus()
        speech = corpus.select(kind="speech", dataset=d.speech_datasets, split="train")
        noise = corpus.select(
            kind="noise", dataset=d.noise_datasets, split="train", noise_type=d.noise_types or None
        )
        if not speech or not noise:
            raise ValueError(
                f"no training speech or noise: data.speech_datasets = {list(d.speech_datasets)} "
                f"gives {len(speech)} files, data.noise_datasets = {list(d.noise_datasets)} "
                f"(noise_types {list(d.noise_types)}) gives {len(noise)}"
            )
        snr_kw = {"snr_range": tuple(d.snr_range)} if d.snr_range else {"snrs": d.snrs}
        return OnTheFlyMixDataset(
            speech, noise, segment=d.segment, length=d.examples_per_epoch, seed=seed, **snr_kw
        )
    if d.source == "paired":
        return PairedFolderDataset(d.noisy_dir, d.clean_dir, segment=d.segment, hop=d.hop)
    return voicebank_train_valid(d.voicebank_root, d.segment, d.hop)[0]


def build_valid_set(d: DataConfig, seed: int, corpus: Corpus | None = None) -> list[ValidItem]:
    """Whole validation utterances, deterministic given the seed (never the training files)."""
    n = int(d.valid_seconds * SAMPLE_RATE)
    if d.source == "corpus":
        corpus = corpus or Corpus()
        rng = np.random.default_rng([seed, 999])
        speech = corpus.select(kind="speech", dataset=d.speech_datasets, split="valid")
        types = d.valid_noise_types or d.noise_types or None
        noise = corpus.select(
            kind="noise", dataset=d.noise_datasets, split="valid", noise_type=types
        )
        pick = rng.choice(len(speech), size=min(d.valid_utterances, len(speech)), replace=False)
        snrs = list(d.snrs) if not d.snr_range else list(np.linspace(*d.snr_range, 5))
        items = []
        for k, i in enumerate(sorted(pick)):
            clean = read_audio(speech[i].path)[:n]
            nf = noise[k % len(noise)]
            snr = float(snrs[k % len(snrs)])
            m = mix(clean, read_audio(nf.path), snr, rng, nf.noise_type)
            name = f"{speech[i].path.stem}_{nf.noise_type}_{snr:+g}"
            items.append(ValidItem(name, m.mixture, m.clean, snr))
        return items + real_valid_items(corpus, d.valid_pairs, d.valid_seconds)
    if d.source == "paired":
        if not d.valid_noisy_dir:
            return []
        ds = PairedFolderDataset(d.valid_noisy_dir, d.valid_clean_dir)
    else:
        ds = voicebank_train_valid(d.voicebank_root, d.segment, d.hop)[1]
    out = []
    for name in ds.names[: d.valid_utterances]:
        xn, xc = ds.audio[name]
        out.append(ValidItem(name, xn[:n], xc[:n], float("nan")))
    return out


def real_valid_items(corpus: Corpus, datasets, seconds: float) -> list[ValidItem]:
    """The bundled recorded pairs of `datasets` (train split) as validation items, group "real"."""
    items = []
    for name in datasets:
        noisy = corpus.select(kind="pair", role="noisy", dataset=name, split="train")
        if not noisy:
            raise ValueError(f"data.valid_pairs: no bundled train-split pairs of dataset {name!r}")
        clean = {
            f.path.name: f
            for f in corpus.select(kind="pair", role="clean", dataset=name, split="train")
        }
        n = int(seconds * SAMPLE_RATE)
        for f in noisy:
            c = clean.get(f.path.name)
            if c is None:
                raise ValueError(f"data.valid_pairs: {f.path} has no clean partner")
            items.append(
                ValidItem(
                    f"{name}:{f.path.stem}",
                    read_audio(f.path)[:n],
                    read_audio(c.path)[:n],
                    float("nan"),
                    "real",
                )
            )
    return items


def epoch_batches(n: int, batch: int, epoch: int, seed: int) -> list[list[int]]:
    """The global batches of an epoch: a seeded permutation cut into full batches."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    return [perm[k * batch : (k + 1) * batch] for k in range(n // batch)]


def process_parts(global_batch: list[int], rank: int, world: int, accumulate: int):
    """This process's part of a global batch: its share (several processes) or the
    micro-batches of gradient accumulation (one process), the same split either way."""
    if world > 1:
        return [global_batch[rank::world]]
    return [global_batch[k::accumulate] for k in range(accumulate)]


class _Parts:
    """Collate the flat index list of one step into its micro-batches."""

    def __init__(self, sizes):
        self.sizes = sizes

    def __call__(self, items):
        out, k = [], 0
        for s in self.sizes:
            out.append(collate(items[k : k + s]))
            k += s
        return out


def step_loader(
    dataset,
    epoch: int,
    seed: int,
    batch_size: int,
    start: int = 0,
    rank: int = 0,
    world: int = 1,
    accumulate: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
):
    """The rest of an epoch (from its batch `start`), one item per optimisation step: the list
    of this process's micro-batches (collated dicts). The batches are exactly the seeded
    `epoch_batches`, whatever `num_workers` (0: read and mix in this process)."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    steps = [
        process_parts(gb, rank, world, accumulate)
        for gb in epoch_batches(len(dataset), batch_size, epoch, seed)[start:]
    ]
    sizes = [len(p) for p in steps[0]] if steps else [batch_size]
    return DataLoader(
        dataset,
        batch_sampler=[[i for part in parts for i in part] for parts in steps],
        collate_fn=_Parts(sizes),
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
