"""Data: audio I/O, the bundled corpus, mixing, datasets."""

from .audio import SAMPLE_RATE, AudioError, list_audio, read_audio, resample, write_audio
from .corpus import Corpus, CorpusFile, default_corpus_root
from .datasets import (
    OnTheFlyMixDataset,
    PairedFolderDataset,
    PremixedTestSet,
    PremixSpec,
    build_premixed,
    collate,
    match_pairs,
    prepare_voicebank,
    voicebank_dirs,
    voicebank_train_valid,
)
from .mixing import MixingError, Mixture, mix, snr_db
from .training import (
    ValidItem,
    build_train_set,
    build_valid_set,
    epoch_batches,
    step_loader,
)

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "Corpus",
    "CorpusFile",
    "Mixture",
    "ValidItem",
    "build_train_set",
    "build_valid_set",
    "epoch_batches",
    "step_loader",
    "MixingError",
    "OnTheFlyMixDataset",
    "PairedFolderDataset",
    "PremixSpec",
    "PremixedTestSet",
    "build_premixed",
    "collate",
    "default_corpus_root",
    "list_audio",
    "match_pairs",
    "mix",
    "prepare_voicebank",
    "read_audio",
    "resample",
    "snr_db",
    "voicebank_dirs",
    "voicebank_train_valid",
    "write_audio",
]
