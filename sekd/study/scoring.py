"""The study's test sets and the scoring of a model on one, cached under results/<profile>/."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..data import Corpus, PremixedTestSet, PremixSpec, build_premixed
from ..data.corpus import REPO_ROOT
from ..metrics import evaluate_model
from ..results import load_results, write_results
from .runs import locked, paths


def voicebank_pairs(corpus: Corpus | None = None, limit: int = 0) -> list[tuple[str, Path, Path]]:
    """(name, noisy, clean) of the bundled VoiceBank-DEMAND test pairs (the first `limit`)."""
    nd, cd = (corpus or Corpus()).pair_dirs("voicebank_demand", "test")
    pairs = [(p.stem, nd / p.name, p) for p in sorted(cd.iterdir())]
    return pairs[:limit] if limit else pairs


def dns_pairs(corpus: Corpus | None = None) -> list[tuple[str, Path, Path]]:
    """(name, noisy, clean) of the bundled DNS Challenge 2020 no-reverb test clips."""
    nd, cd = (corpus or Corpus()).pair_dirs("dns")
    return [(p.stem, nd / p.name, p) for p in sorted(cd.iterdir())]


def premix_spec(cfg: RunConfig) -> PremixSpec:
    e = cfg.eval
    return PremixSpec(
        speech_datasets=e.speech_datasets,
        utterances=e.utterances,
        noise_types=tuple(e.seen_noises) + tuple(e.unseen_noises),
        noise_datasets=e.noise_datasets,
        snrs=e.snrs,
        seed=e.seed,
        max_seconds=e.max_seconds,
    )


def premix_set(cfg: RunConfig) -> PremixedTestSet:
    """The fixed pre-mixed test set of a config's [eval] section (built once, under cache/)."""
    with locked(REPO_ROOT / "cache" / "premix"):
        return PremixedTestSet(build_premixed(REPO_ROOT / "cache", premix_spec(cfg)))


def premix_pairs(ts: PremixedTestSet) -> list[tuple[str, Path, Path]]:
    return [(r["name"], n, c) for r, (n, c) in zip(ts.rows, ts.pairs())]


def utterance_of(name: str) -> str:
    """The source utterance of a pre-mixed test file (`<utterance>__<noise>__<snr>dB`); a
    recorded pair is its own utterance. The cluster of `stats.cluster_bootstrap_ci`."""
    return name.split("__")[0]


def evaluate(
    profile: str,
    label: str,
    model,
    pairs,
    set_name: str,
    composite_measures=True,
    workers: int = 2,
    reuse: bool = True,
    extra: dict | None = None,
) -> dict:
    """Score `model` on `pairs`, write results/<profile>/<set>/<label>.json and .csv; reuse them.

    `extra` maps a file name to columns added to its row (SNR, noise type).
    """
    out = paths(profile).results / set_name
    jf = out / f"{label}.json"
    with locked(jf):
        if reuse and jf.is_file():
            return load_results(jf)
        rows, summary = evaluate_model(
            model, pairs, workers=workers, progress=False, composite_measures=composite_measures
        )
        if extra:
            for r in rows:
                r.update(extra.get(r["name"], {}))
        write_results(rows, summary, jf, out / f"{label}.csv")
        return load_results(jf)


def result_means(result: dict, keys) -> dict:
    return {k: result["mean"][k] for k in keys}
