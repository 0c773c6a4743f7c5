"""The study's test sets and the scoring of a model on one, cached under results/<profile>/."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..data import Corpus, PremixedTestSet, PremixSpec, build_premixed
from ..data.audio import SAMPLE_RATE, read_audio
from ..data.corpus import REPO_ROOT
from ..enhance import enhance_signal
from ..metrics import METRICS, evaluate_model, ls_gain, si_sdr
from ..models import fingerprint
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


def premix_set(cfg: RunConfig, spec: PremixSpec | None = None) -> PremixedTestSet:
    """The fixed pre-mixed test set of a config's [eval] section, or of `spec` (built once,
    under cache/)."""
    with locked(REPO_ROOT / "cache" / "premix"):
        return PremixedTestSet(build_premixed(REPO_ROOT / "cache", spec or premix_spec(cfg)))


def premix_pairs(ts: PremixedTestSet) -> list[tuple[str, Path, Path]]:
    return [(r["name"], n, c) for r, (n, c) in zip(ts.rows, ts.pairs())]


def utterance_of(name: str) -> str:
    """The source utterance of a pre-mixed test file (`<utterance>__<noise>__<snr>dB`); a
    recorded pair is its own utterance. The cluster of `stats.cluster_bootstrap_ci`."""
    return name.split("__")[0]


def _source(model, pairs, composite_measures: bool) -> dict:
    # names and file names, not folders: a result made in another checkout is still reused
    names = hashlib.sha256(
        "\n".join(f"{n}|{Path(x).name}|{Path(y).name}" for n, x, y in pairs).encode()
    )
    return {
        "model": fingerprint(model),
        "pairs": names.hexdigest()[:16],
        "composite_measures": bool(composite_measures),
        "measures": list(METRICS),
    }


def _reusable(cached: dict, source: dict) -> bool:
    """A cached result is reused only for the same source, its measures included: after a
    measure is added to the registry, every result is scored again. A file written before
    sources named their measures holds the measures its rows have."""
    have = dict(cached.get("source") or {})
    if "measures" not in have:
        rows = cached.get("files") or [{}]
        have["measures"] = [k for k in METRICS if k in rows[0]]
    return have == source


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
    """Score `model` on `pairs`, write results/<profile>/<set>/<label>.json and .csv.

    The file records what was scored (`source`: the model's `fingerprint`, the pairs, whether
    composite measures were computed) and is reused only for the same source: a retrained or
    replaced model under the same label is scored again, never shown with another's scores.
    `extra` maps a file name to columns added to its row (SNR, noise type).
    """
    out = paths(profile).results / set_name
    jf = out / f"{label}.json"
    source = _source(model, pairs, composite_measures)
    with locked(jf):
        if reuse and jf.is_file():
            cached = load_results(jf)
            if _reusable(cached, source):
                return cached
        rows, summary = evaluate_model(
            model, pairs, workers=workers, progress=False, composite_measures=composite_measures
        )
        summary = {**summary, "source": source}
        if extra:
            for r in rows:
                r.update(extra.get(r["name"], {}))
        write_results(rows, summary, jf, out / f"{label}.csv")
        return load_results(jf)


def result_means(result: dict, keys) -> dict:
    return {k: result["mean"][k] for k in keys}


def clean_passthrough(
    model,
    datasets,
    split: str = "test",
    utterances: int = 6,
    seconds: float = 4.0,
    corpus: Corpus | None = None,
) -> dict:
    """How a model treats clean speech of each corpus, with no noise added: per dataset, the
    least-squares gain of the output on its input and the output's SI-SDR against it (the first
    `utterances` files of the split, `seconds` each). An enhancer returns clean speech nearly
    unchanged (gain near 1); a gain near 0 says it takes that corpus's speech for noise, as a
    model trained on one recording domain whose noises hold other voices (babble, cafes) can."""
    corpus = corpus or Corpus()
    n = int(seconds * SAMPLE_RATE)
    out = {}
    for ds in datasets:
        files = corpus.select(kind="speech", dataset=ds, split=split)[:utterances]
        if not files:
            raise ValueError(f"no {split}-split speech of dataset {ds!r} in the corpus")
        rows = []
        for f in files:
            x = read_audio(f.path)[:n]
            y = enhance_signal(model, x, level=None)  # the model on the file as it is
            rows.append({"file": f.path.name, "gain": ls_gain(x, y), "si_sdr": si_sdr(x, y)})
        out[ds] = {
            "files": rows,
            "gain": float(np.mean([r["gain"] for r in rows])),
            "si_sdr": float(np.mean([r["si_sdr"] for r in rows])),
        }
    return out
