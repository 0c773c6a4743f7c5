"""sekd.study.snr."""

import json
from pathlib import Path

import pytest
import torch


def test_snr_effect_pairs_s2_with_s1_by_file_per_snr_and_over_seeds():
    from sekd.study import cluster_bootstrap_ci, snr_effect

    def res(vals):
        return {
            "files": [
                {"name": n, "snr": snr, "seen": n != "d", "utterance": n[0], "pesq": v,
                 "stoi": v / 4, "si_sdri": v, "error": ""}
                for n, snr, v in vals
            ]
        }  # fmt: skip

    grid = [("a1", -5.0, 1.0), ("b1", -5.0, 1.2), ("c1", 10.0, 2.0), ("d", 10.0, 2.4)]
    s2 = [(n, s, v + d) for (n, s, v), d in zip(grid, (0.1, 0.3, 0.0, -0.1))]
    s2b = [(n, s, v + d) for (n, s, v), d in zip(grid, (0.3, 0.1, 0.2, 0.1))]
    out = snr_effect(
        {
            "noisy": res(grid),
            "snr_s1": res(grid),
            "snr_s1_seed1": res(grid),
            "snr_s2": res(s2),
            "snr_s2_seed1": res(s2b),
        }
    )
    by = {(r["metric"], r["group"]): r for r in out}
    allp = by[("pesq", "all")]
    assert allp["pairs"] == 4 and allp["seeds"] == 2
    # each file's difference is averaged over the seeds: 0.2, 0.2, 0.1, 0.0
    assert allp["diff"] == pytest.approx(0.125)
    assert allp["diff_per_seed"] == pytest.approx([0.075, 0.175])
    want = cluster_bootstrap_ci([0.2, 0.2, 0.1, 0.0], ["a", "b", "c", "d"])
    assert (allp["ci_low"], allp["ci_high"]) == pytest.approx(want[1:])
    assert by[("pesq", "-5 dB")]["diff"] == pytest.approx(0.2)
    assert by[("pesq", "+10 dB")]["diff"] == pytest.approx(0.05)
    assert by[("pesq", "unseen noises")]["pairs"] == 1
    assert by[("stoi", "all")]["diff"] == pytest.approx(0.125 / 4)


def test_band_preconditions_pair_each_teacher_with_the_input_on_its_band():
    from sekd.study import band_preconditions, cluster_bootstrap_ci

    def res(vals):
        return {
            "files": [
                {"name": n, "snr": -20.0, "seen": n < "c", "utterance": n, "pesq": v,
                 "stoi": v / 4, "si_sdri": v - 1.0, "error": ""}
                for n, v in vals
            ]
        }  # fmt: skip

    noisy = [("a", 1.0), ("b", 1.0), ("c", 1.0), ("d", 1.0)]
    up = res([("a", 1.2), ("b", 1.4), ("c", 1.1), ("d", 1.3)])  # better on every file
    mixed = res([("a", 1.5), ("b", 1.6), ("c", 0.7), ("d", 0.8)])  # worse on unseen noises
    out = band_preconditions({"noisy": res(noisy), "snr_teacher1": up, "snr_teacher2": mixed,
                              "snr_teacher3": up, "snr_teacher4": up})  # fmt: skip
    t1, t2 = out[0], out[1]
    assert t1["holds"] and t1["files"] == 4 and t1["snrs"] == [-20.0]
    assert t1["pesq_diff"] == pytest.approx(0.25)
    want = cluster_bootstrap_ci([0.2, 0.4, 0.1, 0.3], ["a", "b", "c", "d"])
    assert (t1["pesq_ci_low"], t1["pesq_ci_high"]) == pytest.approx(want[1:])
    # si_sdri of the input is 0 on every file (it is the input's own improvement)
    assert t1["si_sdri_diff"] == pytest.approx(0.25)
    assert t1["pesq_diff_seen"] == pytest.approx(0.3)
    assert t1["pesq_diff_unseen"] == pytest.approx(0.2)
    assert t2["pesq_diff_seen"] == pytest.approx(0.55)
    assert t2["pesq_diff_unseen"] == pytest.approx(-0.25)
    assert not t2["holds"] and t2["pesq_ci_low"] < 0
    assert t2["stoi_diff"] == pytest.approx((0.5 + 0.6 - 0.3 - 0.2) / 4 / 4)
    assert [r["teacher"] for r in out] == ["snr_teacher1", "snr_teacher2", "snr_teacher3",
                                           "snr_teacher4"]  # fmt: skip
    # the row names the run that fills the role (snr_study records it as the result's "run")
    named = {"noisy": res(noisy), "snr_teacher1": {**up, "run": "t1_other"},
             "snr_teacher2": mixed, "snr_teacher3": up, "snr_teacher4": up}  # fmt: skip
    again = band_preconditions(named)
    assert again[0]["teacher"] == "t1_other" and again[0]["holds"]


def test_each_band_teacher_s2_distils_from_trains_on_its_band():
    """Per profile, the runs band_teacher_runs names (those of S2's config) are four, and each
    trains only at SNRs of its own band of S2's routing."""
    from sekd.study import PROFILES, band_teacher_runs, run_config

    for profile in PROFILES:
        names = band_teacher_runs(profile)
        bands = run_config(profile, "snr_s2").teacher.bands
        assert len(names) == len(bands) == 4, profile
        for name, band in zip(names, bands, strict=True):
            assert set(run_config(profile, name).data.snrs) <= set(band), (profile, name)


def test_students_vs_noisy_says_which_student_lowers_stoi_or_does_not_enhance():
    from sekd.study import students_vs_noisy

    def res(pesq, stoi, si_sdr, gain=0.9):
        return {"mean": {"pesq": pesq, "stoi": stoi, "si_sdr": si_sdr, "gain": gain}}

    rows = students_vs_noisy(
        {
            "noisy": res(1.5, 0.80, 5.0, 1.0),
            "snr_s1": res(1.7, 0.79, 8.0),  # better PESQ, lower STOI
            "snr_s1_seed1": res(1.7, 0.82, 8.0),
            "snr_s2": res(1.8, 0.85, 9.0, gain=-0.9),  # inverted: PESQ and STOI do not see it
            "snr_teacher1": res(2.0, 0.9, 10.0),
        }
    )
    by = {r["model"]: r for r in rows}
    assert list(by) == ["snr_s1", "snr_s1_seed1", "snr_s2"]
    assert [by[k]["lowers_stoi"] for k in by] == [True, False, False]
    assert [by[k]["enhances"] for k in by] == [False, True, False]
    assert by["snr_s1"]["noisy_stoi"] == 0.80 and by["snr_s2"]["gain"] == -0.9


def test_against_noisy_by_snr_locates_a_students_loss_per_snr_over_seeds():
    from sekd.study import against_noisy_by_snr, cluster_bootstrap_ci

    def res(vals, run=None):
        out = {
            "files": [
                {"name": n, "snr": snr, "seen": True, "utterance": n[0], "stoi": v,
                 "gain": g, "error": ""}
                for n, snr, v, g in vals
            ]
        }  # fmt: skip
        return {**out, "run": run} if run else out

    grid = [("a1", -20.0, 0.40), ("b1", -20.0, 0.30), ("a2", 20.0, 0.90), ("b2", 20.0, 0.95)]
    noisy = res([(n, s, v, 1.0) for n, s, v in grid])
    # S1 loses STOI at -20 dB (and suppresses: gain 0.2) and at +20 dB; S2 only at -20 dB
    s1 = res([(n, s, v - 0.05, 0.2 if s < 0 else 0.9) for n, s, v in grid])
    s1b = res([(n, s, v - 0.03, 0.4 if s < 0 else 0.9) for n, s, v in grid])
    s2 = res([(n, s, v + (-0.04 if s < 0 else 0.01), 0.3) for n, s, v in grid])
    t1 = res([(n, s, v + 0.02, 0.5) for n, s, v in grid if s < 0], run="t1_run")
    rows = against_noisy_by_snr(
        {"noisy": noisy, "snr_s1": s1, "snr_s1_seed1": s1b, "snr_s2": s2, "snr_teacher1": t1}
    )
    by = {(r["model"], r["snr"]): r for r in rows}
    assert set(by) == {("snr_s1", -20.0), ("snr_s1", 20.0), ("snr_s2", -20.0),
                       ("snr_s2", 20.0), ("t1_run", -20.0)}  # fmt: skip
    low = by[("snr_s1", -20.0)]
    assert low["seeds"] == 2 and low["pairs"] == 2 and low["metric"] == "stoi"
    # each file's difference averaged over the seeds: -0.04 on both files
    assert low["diff"] == pytest.approx(-0.04)
    want = cluster_bootstrap_ci([-0.04, -0.04], ["a", "b"])
    assert (low["ci_low"], low["ci_high"]) == pytest.approx(want[1:], nan_ok=True)
    assert low["gain"] == pytest.approx(0.3)  # mean over both seeds' files
    assert by[("snr_s2", 20.0)]["diff"] == pytest.approx(0.01)
    assert by[("snr_s2", -20.0)]["diff"] == pytest.approx(-0.04)
    assert by[("t1_run", -20.0)]["diff"] == pytest.approx(0.02)
    assert by[("t1_run", -20.0)]["gain"] == pytest.approx(0.5)
    # a study without S2 (or without a teacher) has no rows for it, not rows of NaN
    alone = against_noisy_by_snr({"noisy": noisy, "snr_s1": s1})
    assert {r["model"] for r in alone} == {"snr_s1"} and len(alone) == 2


def test_band_pesq_nb_raw_scores_the_input_and_each_model_per_file_and_per_snr(
    monkeypatch, tmp_path
):
    import json
    import types

    from sekd.data.audio import read_audio
    from sekd.metrics import pesq_nb_raw
    from sekd.study import snr

    class Scale(torch.nn.Module):  # the input times a constant: NB PESQ is level-aligned
        def __init__(self, k):
            super().__init__()
            self.register_buffer("k", torch.tensor(float(k)))

        def forward(self, x):
            return self.k * x

    root = Path("data/corpus/pairs/voicebank_demand/test")
    pairs, extra = [], {}
    for stem in ["p232_012", "p232_022", "p232_043"]:
        for snr_db in (-20.0, -15.0):
            name = f"{stem}__noise__{snr_db:g}dB"
            pairs.append((name, root / "noisy" / f"{stem}.flac", root / "clean" / f"{stem}.flac"))
            extra[name] = {"snr": snr_db, "noise_type": "n", "seen": True, "utterance": stem}
    # one broken file: reported with its reason, the others scored
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio")
    pairs.append(("broken", broken, root / "clean" / "p232_012.flac"))
    extra["broken"] = {"snr": -20.0, "noise_type": "n", "seen": True, "utterance": "p232_012"}
    monkeypatch.setattr(snr, "snr_test_set", lambda profile: (pairs, extra))
    monkeypatch.setattr(snr, "band_pairs", lambda profile, p, e, band: p)
    monkeypatch.setattr(snr, "paths", lambda profile: types.SimpleNamespace(results=tmp_path))
    (tmp_path / "diagnostics").mkdir()

    rows = snr.band_pesq_nb_raw("x", 0, {"same": Scale(1.0), "half": Scale(0.5)}, "nb")
    saved = json.loads((tmp_path / "diagnostics" / "nb.json").read_text())
    assert [r["model"] for r in rows] == ["same", "half"] == [r["model"] for r in saved["rows"]]
    assert [e["name"] for e in saved["errors"]] == ["broken"]
    assert "broken.flac" in saved["errors"][0]["error"]
    name, x, c = pairs[0]
    want = pesq_nb_raw(read_audio(c), read_audio(x))
    assert saved["files"]["noisy"][name]["pesq_nb_raw"] == pytest.approx(want, abs=1e-9)
    same = rows[0]
    assert same["all"]["pairs"] == 6 and same["all"]["diff"] == pytest.approx(0.0, abs=1e-9)
    assert set(same) >= {"all", "-20 dB", "-15 dB"} and same["-20 dB"]["pairs"] == 3
    assert abs(rows[1]["all"]["diff"]) < 0.05  # half the level: nearly the input's score


def test_band_search_counts_each_weights_scored_on_a_band_once(monkeypatch, tmp_path):
    import json
    import types

    from sekd.study import snr

    def row(model, fp, band=0, holds=False):
        return {"model": model, "fingerprint": fp, "band": band, "holds": holds,
                "pesq_diff": 0.1, "pesq_ci_low": 0.01 if holds else -0.01,
                "si_sdri_diff": 1.0, "si_sdri_ci_low": 0.5}  # fmt: skip

    diag = tmp_path / "diagnostics"
    diag.mkdir()
    (diag / "a_first.json").write_text(json.dumps([row("t1", "f1"), row("t1_last", "f2")]))
    # the same weights under another label, a pass, another band's candidate, an oracle row
    (diag / "b_again.json").write_text(
        json.dumps([row("t1_again", "f1"), row("wide", "f3", holds=True), row("t2", "f4", 1)])
    )
    (diag / "c_oracle.json").write_text(json.dumps([{"model": "oracle_irm", "band": 0,
                                                     "holds": True}]))  # fmt: skip
    (diag / "d_other.json").write_text(json.dumps({"rows": [], "files": {}}))
    monkeypatch.setattr(snr, "paths", lambda profile: types.SimpleNamespace(results=tmp_path))

    out = snr.scored_candidates("x", 0)
    assert out["scored"] == 3 and out["passed"] == ["wide"]
    assert [(c["model"], c["file"]) for c in out["candidates"]] == [
        ("t1", "a_first.json"), ("t1_last", "a_first.json"), ("wide", "b_again.json")]  # fmt: skip
    assert snr.scored_candidates("x", 1)["scored"] == 1
    assert snr.scored_candidates("x", 2) == {"band": 2, "scored": 0, "passed": [], "candidates": []}
    (diag / "e_broken.json").write_text('[{"model": ')  # cut off mid-write
    with pytest.raises(ValueError, match="e_broken.json"):
        snr.scored_candidates("x", 0)


def test_confirmation_grid_is_the_test_grid_on_other_speech():
    import csv

    from sekd.study.snr import snr_test_set

    grid, grid_extra = snr_test_set("smoke")
    conf, conf_extra = snr_test_set("smoke", confirmation=True)
    assert len(conf) == len(grid)
    utterances = {e["utterance"] for e in grid_extra.values()}
    assert not utterances & {e["utterance"] for e in conf_extra.values()}
    for key in ("snr", "noise_type", "seen"):
        assert sorted(str(e[key]) for e in conf_extra.values()) == sorted(
            str(e[key]) for e in grid_extra.values()
        )
    folder = conf[0][1].parent.parent
    assert folder != grid[0][1].parent.parent  # another folder under cache/
    # the grid's speech is left out by name, not only unlikely to be drawn again
    grid_speech = {
        r["speech"] for r in csv.DictReader(open(grid[0][1].parent.parent / "manifest.csv"))
    }
    assert set(json.loads((folder / "spec.json").read_text())["exclude_speech"]) == grid_speech
