"""sekd.study.scoring: cached results are reused only for what they were scored with."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import sekd.study.scoring as scoring
from sekd.data import read_audio
from sekd.metrics import METRICS


def test_evaluation_is_reused_only_for_the_same_model_and_files(
    monkeypatch, tmp_path, tmp_study_paths
):
    import sekd.study.scoring as scoring
    from sekd.baselines import NoisyInput
    from sekd.models import build

    monkeypatch.setattr(scoring, "paths", tmp_study_paths)
    pairs = scoring.voicebank_pairs(limit=2)
    kw = dict(composite_measures=False, workers=1)
    torch.manual_seed(0)
    model = build("tiny_student").eval()
    first = scoring.evaluate("smoke", "m", model, pairs, "vb", **kw)
    jf = tmp_path / "results" / "smoke" / "vb" / "m.json"
    jf.write_text(jf.read_text().replace('"count"', '"count_marker": 1, "count"'))
    again = scoring.evaluate("smoke", "m", model, pairs, "vb", **kw)
    assert again.get("count_marker") == 1  # the same model and files: read back, not rescored
    with torch.no_grad():  # the same label, another model (a retrained run): scored again
        next(model.parameters()).mul_(-1.0)
    other = scoring.evaluate("smoke", "m", model, pairs, "vb", **kw)
    assert "count_marker" not in other and other["source"]["model"] != first["source"]["model"]
    fewer = scoring.evaluate("smoke", "m", model, pairs[:1], "vb", **kw)  # other files
    assert fewer["count"] == 1 and fewer["source"]["pairs"] != other["source"]["pairs"]
    # the fingerprint is of the function, not of the object: a copy has the same one
    assert scoring.fingerprint(build("tiny_student")) != scoring.fingerprint(model)
    assert scoring.fingerprint(NoisyInput()) == scoring.fingerprint(NoisyInput())


@pytest.fixture
def pairs(tmp_path, corpus):
    files = corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="clean")[:2]
    out = []
    for f in files:
        x = read_audio(f.path)
        noisy = tmp_path / f"{f.path.stem}_noisy.wav"
        clean = tmp_path / f"{f.path.stem}.wav"
        sf.write(clean, x, 16_000, subtype="FLOAT")
        sf.write(noisy, x + 0.01 * np.random.default_rng(0).standard_normal(len(x)), 16_000,
                 subtype="FLOAT")  # fmt: skip
        out.append((f.path.stem, noisy, clean))
    return out


def test_a_cache_without_a_measure_added_since_is_scored_again(pairs, monkeypatch, tmp_study_paths):
    monkeypatch.setattr(scoring, "paths", tmp_study_paths)
    model = torch.nn.Identity()
    first = scoring.evaluate("smoke", "identity", model, pairs, "vb", workers=1)
    assert first["source"]["measures"] == list(METRICS)
    jf = tmp_study_paths("smoke").results / "vb" / "identity.json"
    # as written before "segsnr" was a measure: its rows lack it, its source names no measures
    old = json.loads(jf.read_text())
    for r in old["files"]:
        r.pop("segsnr")
    old["mean"].pop("segsnr")
    old["source"].pop("measures")
    jf.write_text(json.dumps(old))
    again = scoring.evaluate("smoke", "identity", model, pairs, "vb", workers=1)
    assert "segsnr" in again["files"][0] and again["source"]["measures"] == list(METRICS)
    # a cache of every current measure, with or without them named, is reused as it is
    old = json.loads(jf.read_text())
    old["source"].pop("measures")
    old["files"][0]["pesq"] = 9.0  # a mark: a rescore would replace it
    jf.write_text(json.dumps(old))
    assert (
        scoring.evaluate("smoke", "identity", model, pairs, "vb", workers=1)["files"][0]["pesq"]
        == 9.0
    )


def test_a_new_measure_is_one_registry_entry_and_reaches_a_table_from_a_warm_cache(
    pairs, monkeypatch, tmp_study_paths
):
    from sekd.metrics import Measure, register_measure, unregister_measure
    from sekd.study.tables import quality_table

    monkeypatch.setattr(scoring, "paths", tmp_study_paths)
    model = torch.nn.Identity()
    warm = scoring.evaluate("smoke", "noisy", model, pairs, "vb", workers=1)
    assert "peak" not in warm["mean"]
    # a throwaway measure: the enhanced signal's peak, shown with one decimal
    register_measure(Measure("peak", "peak", fn=lambda c, e, sr: float(abs(e).max()), decimals=1))
    try:
        again = scoring.evaluate("smoke", "noisy", model, pairs, "vb", workers=1)
        assert again["source"]["measures"][-1] == "peak"  # the warm cache was scored again
        peaks = {name: float(abs(read_audio(noisy)).max()) for name, noisy, _ in pairs}
        assert {r["name"]: r["peak"] for r in again["files"]} == pytest.approx(peaks)
        table = quality_table([{"model": "noisy", "seeds": 1, **again["mean"]}])
        header, _, row = table.split("\n")
        assert header.endswith("| gain | peak |")
        assert row.endswith(f"| **{again['mean']['peak']:.1f}** |")  # the best of one row
    finally:
        unregister_measure("peak")
    assert "peak" not in quality_table([{"model": "noisy", **warm["mean"]}])
