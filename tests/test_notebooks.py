import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from sekd.reproduce import notebooks, parse_params, record_times, reproduce

ROOT = Path(__file__).resolve().parents[1]
BOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_nine_numbered_notebooks_in_order():
    assert [b.stem.split("_")[0] for b in notebooks()] == [f"{i:02d}" for i in range(9)]
    assert notebooks(["03", "05_attention_maps"]) == [
        ROOT / "notebooks" / "03_train_teacher.ipynb",
        ROOT / "notebooks" / "05_attention_maps.ipynb",
    ]
    with pytest.raises(ValueError, match="unknown notebook"):
        notebooks(["99"])


@pytest.mark.parametrize("book", BOOKS, ids=lambda b: b.stem)
def test_committed_without_outputs_and_with_one_parameters_cell(book):
    nb = json.loads(book.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    assert 'profile = "smoke"' in "".join(params[0]["source"])
    src = "".join("".join(c["source"]) for c in code)
    assert "check_profile(profile)" in src and "from sekd" in src
    assert "nn.Module" not in src and "import torch.nn" not in src  # no model defined here
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert "".join(nb["cells"][-2]["source"]).startswith("## Conclusion")


def test_cli_takes_params():
    from sekd.cli import build_parser

    args = build_parser().parse_args(
        ["reproduce", "--profile", "smoke", "--param", "retrain=true", "--param", "seeds=[0]"]
    )
    assert parse_params(args.param) == {"retrain": "true", "seeds": "[0]"}


def test_unknown_profile_is_a_clear_error():
    r = subprocess.run(
        [sys.executable, "-m", "sekd", "reproduce", "--profile", "huge"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "unknown profile 'huge'" in r.stderr and "smoke" in r.stderr


def _book(path, code):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('profile = "smoke"')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# t"),
        p,
        *[nbformat.v4.new_code_cell(c) for c in code],
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def test_reproduce_stops_at_first_failure_naming_notebook_and_cell(tmp_path, capsys):
    books = tmp_path / "books"
    books.mkdir()
    _book(books / "00_ok.ipynb", ["x = 1", "print(profile)"])
    _book(books / "01_broken.ipynb", ["y = 2", "raise ValueError('boom')"])
    _book(books / "02_never.ipynb", ["z = 3"])
    rc = reproduce("quick", out=tmp_path / "out", notebook_dir=books)
    err = capsys.readouterr().err
    assert rc == 1
    assert "01_broken.ipynb" in err and "ValueError: boom" in err and "cell" in err
    done = nbformat.read(tmp_path / "out" / "00_ok.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in done.cells for o in c.get("outputs", []))
    assert "quick" in printed  # the profile was injected
    assert (tmp_path / "out" / "00_ok.html").is_file()
    assert not (tmp_path / "out" / "02_never.ipynb").exists()


def test_record_times_keeps_other_notebooks_and_replaces_a_rerun(tmp_path, monkeypatch):
    path = tmp_path / "reproduce_times.json"
    path.write_text(
        json.dumps({"profile": "cpu", "parameters": {}, "seconds": {"03_t.ipynb": 700.0}})
    )
    record_times(path, "cpu", [("06_m.ipynb", 40.0)], {"seeds": [None, 1]})
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rec = record_times(path, "cpu", [("06_m.ipynb", 30.0), ("07_s.ipynb", 5.0)], None)
    assert rec == json.loads(path.read_text())
    assert list(rec["notebooks"]) == ["03_t.ipynb", "06_m.ipynb", "07_s.ipynb"]
    assert rec["notebooks"]["03_t.ipynb"]["seconds"] == 700.0  # kept from the old format
    assert rec["notebooks"]["06_m.ipynb"]["seconds"] == 30.0  # the rerun replaced it
    assert rec["notebooks"]["06_m.ipynb"]["parameters"] == {}
    assert rec["notebooks"]["06_m.ipynb"]["omp_num_threads"] == "1"
    assert rec["total_seconds"] == 735.0


def test_param_parsing():
    assert parse_params(["retrain=true", "seeds=[0, 1]", "name=a=b"]) == {
        "retrain": "true",
        "seeds": "[0, 1]",
        "name": "a=b",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_params(["retrain"])


@pytest.mark.parametrize(
    "text, default, value",
    [
        ("False", "False", False),  # the string "False" would be truthy
        ("false", "False", False),
        ("TRUE", "False", True),
        ("3", "0", 3),
        ("2", "5.0", 2),
        ("-2.5", "5.0", -2.5),
        ("[null, 1, 2]", "None", [None, 1, 2]),
        ("[None, 1]", "None", [None, 1]),
        ("cpu", "None", "cpu"),
        ("cpu", '"smoke"', "cpu"),
        ("123", '"p232_005"', "123"),  # a string parameter keeps the text
        ('"x y"', '"a"', "x y"),
        ('["a"]', '["baseline"]', ["a"]),
    ],
)
def test_parameters_are_read_by_their_declared_type(text, default, value):
    from sekd.reproduce import parse_parameter

    got = parse_parameter("p", text, default)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "text, default", [("no", "False"), ("1", "False"), ("1.5", "0"), ("x", "5.0"), ("3", "[1]")]
)
def test_a_parameter_of_the_wrong_type_is_an_error_naming_it(text, default):
    from sekd.reproduce import parse_parameter

    with pytest.raises(ValueError, match=rf"--param p={re.escape(text)}: p takes"):
        parse_parameter("p", text, default)


def test_reproduce_refuses_to_write_over_the_notebooks(tmp_path):
    books = tmp_path / "nb"
    books.mkdir()
    (books / "00_a.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="reads from"):
        reproduce("smoke", out=books, notebook_dir=books)
    with pytest.raises(ValueError, match="reads from"):
        reproduce("smoke", out=books / "sub", notebook_dir=books)
    assert (books / "00_a.ipynb").read_text() == "{}"


def _tmp_paths(tmp_path):
    """sekd.study.paths with runs, results and cache under tmp_path (configs: the repo's)."""
    from sekd.study.runs import Paths

    def paths(p, root=None):
        r = tmp_path / "results" / p
        return Paths(p, ROOT / "configs" / p, tmp_path / "runs" / p, r, r / "figures",
                     tmp_path / "cache")  # fmt: skip

    return paths


def test_objective_shares_read_each_terms_share_of_the_total_from_the_training_log(
    tmp_path, monkeypatch
):
    import json

    import sekd.study.runs as study
    from sekd.study import objective_shares

    monkeypatch.setattr(study, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(study, "paths", _tmp_paths(tmp_path))
    logs = {
        "student_baseline": [{"supervised": 0.8, "total": 0.8}, {"supervised": 0.6, "total": 0.6}],
        "student_mvat_dual_kd_seed1": [
            {"supervised": 1.0, "at": 97.0, "kd": 2.0, "total": 100.0},
            {"supervised": 0.6, "at": 58.6, "kd": 0.8, "total": 60.0},
        ],
    }
    for name, rows in logs.items():
        folder = tmp_path / "runs" / "smoke" / name
        folder.mkdir(parents=True)
        lines = [{"kind": "valid", "step": 0, "pesq": 1.0}]
        lines += [{"kind": "train", "step": 25 * (i + 1), "epoch": 0, "lr": 1e-3,
                   "steps_per_s": 2.0, **r} for i, r in enumerate(rows)]  # fmt: skip
        (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (base,) = objective_shares("smoke", ["baseline"])
    assert base["supervised_share"] == pytest.approx(1.0) and "at" not in base
    assert base["steps"] == 50 and base["total"] == pytest.approx(0.7)
    (kd,) = objective_shares("smoke", ["mvat_dual_kd"], seeds=(1,))
    assert kd["seed"] == 1 and kd["total"] == pytest.approx(80.0)
    assert kd["at"] == pytest.approx(77.8) and kd["at_share"] == pytest.approx(77.8 / 80.0)
    assert kd["supervised_share"] == pytest.approx(0.8 / 80.0)
    assert kd["kd_share"] == pytest.approx(1.4 / 80.0)
    assert "steps_per_s" not in kd and "lr_share" not in kd


def test_committed_run_is_restored_instead_of_trained(tmp_path, monkeypatch):
    import sekd.study.runs as study
    from sekd.models import build, save_model

    monkeypatch.setattr(study, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(study, "paths", _tmp_paths(tmp_path))
    src = tmp_path / "runs" / "smoke" / "student_baseline"
    src.mkdir(parents=True)
    model = build("tiny_student")
    save_model(model, src / "best.pt")
    (src / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "total": 1.0}\n')
    (src / "summary.json").write_text('{"steps": 1}')
    committed = study.commit_run("smoke", "student_baseline")
    assert (committed / "model.pt").is_file()
    import shutil

    shutil.rmtree(src)
    # a run in progress under runs/ (no summary yet) is never written over by the committed one
    src.mkdir(parents=True)
    (src / "last.pt").write_bytes(b"in progress")
    (src / "metrics.jsonl").write_text('{"kind": "train", "step": 7, "total": 0.5}\n')
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = study.ensure_run("smoke", "student_baseline")  # read where it is, not trained
    assert out == committed and json.loads((out / "summary.json").read_text()) == {"steps": 1}
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    restored = study.load_run_model("smoke", "student_baseline")
    for k, v in model.state_dict().items():
        assert (restored.state_dict()[k] == v).all()
    # weights="cpu" in a notebook: committed runs only, a missing one is an error, not training
    assert study.committed_runs("smoke") == ["student_baseline"]
    monkeypatch.setitem(study._TRAINING, "allowed", True)
    assert study.use_committed("smoke") == "smoke"
    assert study.ensure_run("smoke", "student_baseline") == committed
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    with pytest.raises(RuntimeError, match="student_kd_only .*not committed.*student_baseline"):
        study.ensure_run("smoke", "student_kd_only")
    assert not (tmp_path / "runs" / "smoke" / "student_kd_only" / "last.pt").exists()
    with pytest.raises(ValueError, match="nope"):
        study.use_committed("nope")


def test_paired_differences_pair_by_name_and_skip_failures():
    from sekd.study import paired_difference_by_name

    a = {
        "files": [
            {"name": "x", "pesq": 1.0, "error": ""},
            {"name": "y", "pesq": 2.0, "error": ""},
            {"name": "z", "pesq": 3.0, "error": ""},
        ]
    }
    b = {
        "files": [
            {"name": "y", "pesq": 2.5, "error": ""},
            {"name": "x", "pesq": 0.5, "error": ""},
            {"name": "z", "pesq": float("nan"), "error": "PESQ failed"},
        ]
    }
    assert paired_difference_by_name(a, b, "pesq") == {"x": -0.5, "y": 0.5}


def _result(scores: dict) -> dict:
    return {
        "files": [
            {"name": n, "error": "" if v == v else "failed"} | {m: v for m in METRIC_KEYS}
            for n, v in scores.items()
        ]
    }


METRIC_KEYS = ("pesq", "stoi", "csig", "cbak", "covl", "si_sdr", "si_sdri", "gain")


def test_distillation_effect_averages_each_file_over_seeds():
    """The interval is over files (each file's difference averaged over seeds), a file missing
    in one seed is left out, and the per-seed means and their spread are reported."""
    from sekd.study import distillation_effect, mean_ci

    nan = float("nan")
    res = {
        "voicebank": {
            "student_baseline": _result({"a": 1.0, "b": 2.0, "c": 3.0}),
            "student_mvat_dual_q1": _result({"a": 1.5, "b": 2.1, "c": 3.3}),
            "student_baseline_seed1": _result({"a": 1.0, "b": 2.0, "c": 3.0}),
            "student_mvat_dual_q1_seed1": _result({"a": 1.1, "b": 2.3, "c": nan}),
        }
    }
    (e,) = [r for r in distillation_effect(res, "voicebank", "mvat_dual_q1", (None, 1))
            if r["metric"] == "pesq"]  # fmt: skip
    assert e["pairs"] == 2 and e["seeds"] == 2  # file c failed in seed 1
    assert e["diff"] == pytest.approx(((0.5 + 0.1) / 2 + (0.1 + 0.3) / 2) / 2)
    assert (e["ci_low"], e["ci_high"]) == pytest.approx(mean_ci([0.3, 0.2])[1:])
    assert e["diff_per_seed"] == pytest.approx([0.3, 0.2])
    assert e["diff_std_over_seeds"] == pytest.approx(np.std([0.3, 0.2], ddof=1))


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


def test_cluster_bootstrap_counts_clusters_not_files():
    from sekd.study import cluster_bootstrap_ci, mean_ci

    rng = np.random.default_rng(3)
    values = rng.normal(0.1, 0.2, 12)
    clusters = np.arange(12)
    m, lo, hi = cluster_bootstrap_ci(values, clusters)
    # every cluster repeated five times: the same evidence, the same interval...
    m5, lo5, hi5 = cluster_bootstrap_ci(np.repeat(values, 5), np.repeat(clusters, 5))
    assert (m5, lo5, hi5) == pytest.approx((m, lo, hi), abs=1e-3)
    # ...where a t-interval over the files would shrink by about sqrt(5)
    t1, t5 = mean_ci(values), mean_ci(np.repeat(values, 5))
    assert (t5[2] - t5[1]) < 0.5 * (t1[2] - t1[1])
    # with one file per cluster it is close to the t-interval
    assert lo == pytest.approx(t1[1], abs=0.05) and hi == pytest.approx(t1[2], abs=0.05)
    assert np.isnan(cluster_bootstrap_ci([1.0, 2.0], ["a", "a"])[1])


def test_verdict_rule():
    from sekd.study import direction, verdict

    assert verdict(0.01, 0.1, 0.06) == "agrees with"
    assert verdict(-0.2, -0.1, 0.06) == "contradicts"
    assert verdict(-0.01, 0.1, 0.06) == "does not confirm"
    assert verdict(float("nan"), float("nan"), 0.06) == "does not confirm"
    assert verdict(-0.2, -0.1, -0.05) == "agrees with"
    assert direction(0.1, 0.2) == "above" and direction(-1, 1) == "not apart from"


def _scored(scores: dict, **fixed) -> dict:
    """A result with per-file rows (every measure = the file's value unless fixed) and means."""
    from sekd.metrics import METRICS

    files = [
        {"name": n, "error": "", **{k: v for k in METRICS}, **fixed} for n, v in scores.items()
    ]
    mean = {k: float(np.mean([f[k] for f in files])) for k in METRICS}
    return {"files": files, "mean": mean, "count": len(files), "failed": 0}


def test_enhances_needs_pesq_stoi_si_sdr_and_positive_gain():
    from sekd.study import enhances

    noisy = _scored({"a": 1.0, "b": 1.2})
    assert enhances(_scored({"a": 1.5, "b": 1.6}), noisy)
    assert not enhances(_scored({"a": 1.5, "b": 1.6}, gain=-0.7), noisy)  # inverted
    assert not enhances(_scored({"a": 1.5, "b": 1.6}, stoi=0.5), noisy)


def test_mvat_table_judges_every_row_but_the_noisy_reference():
    from sekd.study import mvat_table

    noisy = _scored({"a": 1.0, "b": 1.2})
    res = {"voicebank": {"noisy": noisy, "spectral_gating": _scored({"a": 0.9, "b": 1.0}),
                         "wiener": _scored({"a": 1.5, "b": 1.6})}}  # fmt: skip
    by = {r["model"]: r for r in mvat_table("smoke", res, "voicebank")}
    assert by["noisy"]["enhances"] is None  # the rule's own reference: no verdict
    assert by["spectral_gating"]["enhances"] is False and by["wiener"]["enhances"] is True
    assert by["wiener"]["pesq"] == 1.55 and by["wiener"]["files"] == 2


def test_teacher_study_with_baseline_seeds_settles_the_baseline_check(monkeypatch, tmp_path):
    import sekd.study.runs as runs
    from sekd.study import teacher_preconditions, teacher_study

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    for module in ("sekd.study.runs", "sekd.study.mvat", "sekd.study.scoring"):
        monkeypatch.setattr(f"{module}.paths", _tmp_paths(tmp_path))
    alone = teacher_preconditions(teacher_study("smoke", sets=("voicebank",)))
    pending = [c for c in alone if c["check"] == "teacher - student_baseline, PESQ"]
    assert [c["holds"] for c in pending] == [None]  # no student yet: pending, not passed
    res = teacher_study("smoke", sets=("voicebank",), baseline_seeds=(None, 1))
    assert {"teacher", "student_baseline", "student_baseline_seed1"} <= set(res["voicebank"])
    (row,) = [c for c in teacher_preconditions(res) if c.get("a") == "student_baseline"]
    assert row["pairs"] == 6 and row["holds"] in (True, False)


def test_teacher_preconditions_margins_and_intervals():
    from sekd.study import TEACHER_OVER_BASELINE, TEACHER_OVER_NOISY, teacher_preconditions

    files = [f"f{i}" for i in range(8)]
    noisy = _scored({f: 2.0 + 0.01 * i for i, f in enumerate(files)})

    def shifted(d, **fixed):
        return _scored({f: 2.0 + 0.01 * i + d + 0.001 * (i % 3) for i, f in enumerate(files)},
                       **fixed)  # fmt: skip

    results = {"voicebank": {"noisy": noisy, "teacher": shifted(0.5)}}
    # before the students exist: the baseline check is pending (None), not passed
    checks = {c["check"]: c for c in teacher_preconditions(results)}
    assert checks["teacher - student_baseline, PESQ"]["holds"] is None
    assert checks["teacher - spectral_gating, PESQ"]["holds"] is None
    assert checks["teacher - noisy, PESQ"]["holds"]
    results["voicebank"].update(
        student_baseline=shifted(0.2), student_baseline_seed1=shifted(0.3),
        spectral_gating=shifted(0.55),
    )  # fmt: skip
    checks = {c["check"]: c for c in teacher_preconditions(results)}
    assert not checks["teacher - spectral_gating, PESQ"]["holds"]  # below classical gating
    c = checks["teacher - noisy, PESQ"]
    assert c["margin"] == TEACHER_OVER_NOISY and c["holds"] and c["pairs"] == 8
    b = checks["teacher - student_baseline, PESQ"]
    # against the mean of the baseline's two seeds: 0.5 - 0.25
    assert b["diff"] == pytest.approx(0.25) and b["margin"] == TEACHER_OVER_BASELINE
    assert b["holds"]
    results["voicebank"]["teacher"] = shifted(0.2, gain=-0.6)  # an inverted, weaker teacher
    checks = {c["check"]: c for c in teacher_preconditions(results)}
    assert not checks["teacher - noisy, PESQ"]["holds"]
    assert not checks["teacher output gain on clean"]["holds"]


def test_queue_trains_resumes_and_skips(monkeypatch, tmp_path):
    import sekd.study.runs as runs
    from sekd.study.queue import run_queue

    monkeypatch.setattr(runs, "paths", _tmp_paths(tmp_path))
    done = run_queue("smoke", ["student_baseline:3", "student_baseline:4"])
    assert [d["name"] for d in done] == ["student_baseline", "student_baseline"]
    out = tmp_path / "runs" / "smoke" / "student_baseline_seed3"
    assert (out / "summary.json").is_file()
    assert json.loads((out / "config.json").read_text())["seed"] == 3
    # a run stopped before its first checkpoint (logs, no last.pt) starts again
    early = tmp_path / "runs" / "smoke" / "student_baseline_seed5"
    early.mkdir()
    (early / "config.json").write_text("{}")
    (early / "metrics.jsonl").write_text('{"kind": "init", "step": 0}\n')
    (done5,) = run_queue("smoke", ["student_baseline:5"])
    assert done5["steps"] == done5["total_steps"] and (early / "summary.json").is_file()
    # a finished run is skipped; an interrupted one (no summary) is resumed, not restarted
    (tmp_path / "runs" / "smoke" / "student_baseline_seed4" / "summary.json").unlink()
    done = run_queue("smoke", ["student_baseline:3", "student_baseline:4"])
    assert len(done) == 1 and done[0]["steps"] == done[0]["total_steps"]


def test_queue_save_commits_finished_runs_and_resumes_saved_ones_elsewhere(
    monkeypatch, tmp_path, capsys
):
    import shutil

    import sekd.study.runs as runs
    from sekd.study.queue import main, run_queue

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(runs, "paths", _tmp_paths(tmp_path))
    items = ["student_baseline:3", "student_baseline:4", "student_kd_only:5"]
    run_queue("smoke", items[:2])
    cut = tmp_path / "runs" / "smoke" / "student_baseline_seed4"
    (cut / "summary.json").unlink()  # seed 4 as if the machine went away before it finished
    capsys.readouterr()
    assert main(["--profile", "smoke", "--save", *items]) == 0
    said = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1].strip().split(",")[0] for line in said[:3]] == [
        "finished",
        "in progress",
        "not started",
    ]
    saved = tmp_path / "checkpoints" / "smoke" / "student_baseline_seed4" / "in_progress"
    # the budget counts the one committed model, not the saved in-progress state beside it
    model = tmp_path / "checkpoints" / "smoke" / "student_baseline_seed3" / "model.pt"
    assert runs.committed_model_bytes() == {"smoke/student_baseline_seed3": model.stat().st_size}
    assert said[3].startswith(f"committed models: {model.stat().st_size:,} bytes, within")
    assert sorted(p.name for p in saved.iterdir()) == [
        "best.pt",
        "config.json",
        "last.pt",
        "metrics.jsonl",
    ]
    assert (tmp_path / "checkpoints" / "smoke" / "student_baseline_seed3" / "model.pt").is_file()
    assert not (tmp_path / "runs" / "smoke" / "student_kd_only_seed5").exists()
    with pytest.raises(ValueError, match="finished"):
        runs.save_progress("smoke", "student_baseline", 3)
    # a run folder with state of its own is never written over by the committed state
    last = torch.load(cut / "last.pt", weights_only=True)["model"]["state_dict"]
    (cut / "last.pt").write_bytes(b"newer")
    assert not runs.restore_progress("smoke", "student_baseline", 4)
    assert (cut / "last.pt").read_bytes() == b"newer"
    # on a fresh machine (runs/ gone) the queue resumes from the committed state, not anew
    shutil.rmtree(tmp_path / "runs")
    done = run_queue("smoke", items[1:2])
    assert capsys.readouterr().out.count("restored the committed state") == 1
    assert len(done) == 1 and done[0]["steps"] == done[0]["total_steps"]
    resumed = torch.load(cut / "last.pt", weights_only=True)["model"]["state_dict"]
    assert all(torch.equal(v, resumed[k]) for k, v in last.items())
    assert (cut / "metrics.jsonl").read_text() == (saved / "metrics.jsonl").read_text()
    # committing the finished run removes its state in progress
    runs.commit_run("smoke", "student_baseline", 4)
    assert not saved.exists()
    # on a fresh machine a run committed with today's config is skipped, not trained again...
    shutil.rmtree(tmp_path / "runs")
    assert runs.committed_current("smoke", "student_baseline", 4)
    # how a model is stored ([export]) is not its recipe: differing only there, it is current
    stored = runs.committed_dir("smoke", "student_baseline", 4) / "config.json"
    as_half = {**json.loads(stored.read_text()), "export": {"dtype": "float16"}}
    stored.write_text(json.dumps(as_half))
    assert runs.committed_current("smoke", "student_baseline", 4)
    # nor is the checkout it was read in: committed elsewhere, it is current here
    elsewhere = {**as_half, "source": "/elsewhere/configs/smoke/student_baseline.toml"}
    stored.write_text(json.dumps(elsewhere))
    assert runs.committed_current("smoke", "student_baseline", 4)
    assert run_queue("smoke", items[:2]) == []
    assert "committed with this config already" in capsys.readouterr().out
    # ...but one committed with another recipe (or without its config) is trained anew
    cfg_file = runs.committed_dir("smoke", "student_baseline", 3) / "config.json"
    cfg_file.write_text(cfg_file.read_text().replace('"lr": ', '"lr": 0.5, "was": '))
    (runs.committed_dir("smoke", "student_baseline", 4) / "config.json").unlink()
    assert not runs.committed_current("smoke", "student_baseline", 3)
    assert len(run_queue("smoke", items[:2])) == 2


def test_evaluation_is_reused_only_for_the_same_model_and_files(monkeypatch, tmp_path):
    import sekd.study.scoring as scoring
    from sekd.baselines import Identity
    from sekd.models import build

    monkeypatch.setattr(scoring, "paths", _tmp_paths(tmp_path))
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
    assert scoring.fingerprint(Identity()) == scoring.fingerprint(Identity())


def test_a_student_committed_from_a_replaced_teacher_is_not_current(monkeypatch, tmp_path, capsys):
    import shutil
    from dataclasses import replace

    import sekd.study.queue as queue
    import sekd.study.runs as runs
    from sekd.models import build, fingerprint, load_model, save_model

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(runs, "paths", _tmp_paths(tmp_path))
    teacher = tmp_path / "runs" / "smoke" / "teacher" / "best.pt"
    real_config = runs.run_config

    def run_config(profile, name, seed=None):  # the profile's config, teacher under tmp_path
        cfg = real_config(profile, name, seed)
        return replace(cfg, teacher=replace(cfg.teacher, checkpoints=(str(teacher),)))

    monkeypatch.setattr(runs, "run_config", run_config)
    torch.manual_seed(0)
    save_model(build("tiny_teacher"), teacher)
    student = runs.run_dir("smoke", "student_kd_only", 3)
    student.mkdir(parents=True)
    save_model(build("tiny_student"), student / "best.pt")
    (student / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "total": 1.0}\n')
    (student / "config.json").write_text(
        json.dumps(run_config("smoke", "student_kd_only", 3).to_dict())
    )
    (student / "summary.json").write_text('{"steps": 1}')  # written before teachers were recorded
    summary = json.loads(
        (runs.commit_run("smoke", "student_kd_only", 3) / "summary.json").read_text()
    )
    assert summary["teachers"] == [fingerprint(load_model(teacher))]  # added when committed
    assert runs.committed_current("smoke", "student_kd_only", 3)
    save_model(build("tiny_teacher"), teacher)  # the teacher retrained: other weights
    assert not runs.committed_current("smoke", "student_kd_only", 3)
    teacher.unlink()  # no teacher at all
    assert not runs.committed_current("smoke", "student_kd_only", 3)
    # a queue skips a student whose teacher run is still going, and goes on with the rest
    save_model(build("tiny_teacher"), teacher)  # best.pt so far, no summary.json
    shutil.rmtree(student)
    capsys.readouterr()
    assert queue.run_queue("smoke", ["student_kd_only:3"]) == []
    assert f"skipped, its teacher run {teacher.parent} has not finished" in capsys.readouterr().out
    assert not student.exists()


def test_a_stale_committed_run_is_read_with_a_warning(monkeypatch, tmp_path):
    import warnings

    import sekd.study.runs as runs
    from sekd.models import build, save_model

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(runs, "paths", _tmp_paths(tmp_path))
    folder = runs.committed_dir("smoke", "student_baseline", 3)
    folder.mkdir(parents=True)
    save_model(build("tiny_student"), folder / "model.pt")
    (folder / "summary.json").write_text('{"steps": 1}')
    config = runs.run_config("smoke", "student_baseline", 3).to_dict()
    (folder / "config.json").write_text(json.dumps(config))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the current one: read in silence
        assert runs.find_run("smoke", "student_baseline", 3) == folder
    config["optim"]["lr"] *= 2  # committed with an older recipe: read, and said so
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.warns(
        runs.StaleRunWarning, match="student_baseline_seed3 was trained with another"
    ):
        assert runs.find_run("smoke", "student_baseline", 3) == folder


def test_students_of_a_fresh_checkout_read_the_committed_teachers(monkeypatch, tmp_path):
    import sekd.study.runs as runs
    from sekd.config import load_config
    from sekd.models import build, save_model

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    missing = [str(tmp_path / "runs" / "smoke" / f"snr_teacher{i}" / "best.pt") for i in (1, 2)]
    elsewhere = str(tmp_path / "mine.pt")  # a user's own path: never replaced
    cfg = load_config(
        ROOT / "configs" / "smoke" / "snr_s2.toml",
        teacher={"checkpoints": [*missing, elsewhere], "bands": [[-20.0], [0.0], [10.0]]},
    )
    assert runs.committed_teachers("smoke", cfg) == cfg  # nothing committed: as it was
    committed = runs.committed_dir("smoke", "snr_teacher1") / "model.pt"
    committed.parent.mkdir(parents=True)
    save_model(build("waveunet_tiny"), committed)
    got = runs.committed_teachers("smoke", cfg).teacher.checkpoints
    assert got == (str(committed), missing[1], elsewhere)
    # a teacher trained on this machine is used before the committed one
    Path(missing[0]).parent.mkdir(parents=True)
    Path(missing[0]).write_bytes(b"")
    assert runs.committed_teachers("smoke", cfg) == cfg
    # ... once it has finished: a student never distils from the best.pt of a run in progress
    assert runs.unfinished_teachers("smoke", cfg) == [Path(missing[0]).parent]
    monkeypatch.setattr(runs, "paths", _tmp_paths(tmp_path))
    monkeypatch.setattr(runs, "run_config", lambda *a: cfg)
    with pytest.raises(RuntimeError, match="snr_teacher1 has not finished"):
        runs.train_run("smoke", "snr_s2")
    assert not (tmp_path / "runs" / "smoke" / "snr_s2").exists()  # nothing started
    (Path(missing[0]).parent / "summary.json").write_text("{}")
    assert runs.unfinished_teachers("smoke", cfg) == []
    assert runs.committed_teachers("quick", cfg) == cfg  # another profile's runs: untouched


def test_committed_models_stay_within_the_checkpoint_budget(monkeypatch, tmp_path):
    """The repository's committed finished models total under CHECKPOINT_BUDGET_BYTES, and the
    budget line says OVER once they would not."""
    import sekd.study.runs as runs

    sizes = runs.committed_model_bytes()
    assert sizes, "no committed model found under checkpoints/"
    total = sum(sizes.values())
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    assert total < runs.CHECKPOINT_BUDGET_BYTES, f"{total:,} bytes; largest: {largest}"
    assert "within" in runs.budget_line()
    folder = tmp_path / "checkpoints" / "cpu" / "big"
    folder.mkdir(parents=True)
    with open(folder / "model.pt", "wb") as f:  # a sparse file of the budget's size
        f.truncate(runs.CHECKPOINT_BUDGET_BYTES)
    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    assert runs.committed_model_bytes() == {"cpu/big": runs.CHECKPOINT_BUDGET_BYTES}
    assert " OVER the budget" in runs.budget_line()


def test_committed_models_are_stored_at_their_configs_export_dtype():
    """Every committed finished model holds its floating-point weights at the precision its
    run's config names ([export] dtype): the SNR study of the cpu profile at float16."""
    import re

    import sekd.study.runs as runs
    from sekd.models import load_checkpoint

    seen = set()
    for f in sorted(runs.COMMITTED.glob("*/*/model.pt")):
        if not (f.parent / "config.json").is_file():
            continue  # committed before configs were: stale, and said so where it is read
        name, seed = re.fullmatch(r"(.*?)(?:_seed(\d+))?", f.parent.name).groups()
        want = runs.run_config(f.parent.parent.name, name, seed and int(seed)).export.dtype
        dtypes = {str(v.dtype) for v in load_checkpoint(f)["state_dict"].values()
                  if v.is_floating_point()}  # fmt: skip
        assert dtypes == {f"torch.{want}"}, (f, dtypes)
        seen.add(want)
    assert seen == {"float32", "float16"}


def test_a_committed_config_names_the_checkouts_files_relative_to_it():
    """commit_run writes the paths of a config that lie in the checkout relative to its root
    (others as they are), so a committed run trained from a file of the repository (a teacher
    trained on from another one's weights) is current in every checkout, this one included."""
    import re

    import sekd.study.runs as runs
    from sekd.data.corpus import REPO_ROOT

    raw = {"model": {"checkpoint": str(REPO_ROOT / "checkpoints/cpu/x/model.pt")},
           "teacher": {"checkpoints": [str(REPO_ROOT / "runs/cpu/t/best.pt"), "/else/t.pt"]},
           "data": {"noisy_dir": "", "clean_dir": "rel/dir"}, "seed": 3}  # fmt: skip
    out = runs._portable(raw)
    assert out["model"]["checkpoint"] == "checkpoints/cpu/x/model.pt"
    assert out["teacher"]["checkpoints"] == ["runs/cpu/t/best.pt", "/else/t.pt"]
    assert out["data"] == raw["data"] and out["seed"] == 3
    assert raw["model"]["checkpoint"].startswith(str(REPO_ROOT))  # the input is left as it is
    initialised = 0
    for f in sorted(runs.COMMITTED.glob("*/*/config.json")):
        if json.loads(f.read_text())["model"]["init"] != "checkpoint":
            continue
        name, seed = re.fullmatch(r"(.*?)(?:_seed(\d+))?", f.parent.name).groups()
        assert runs.committed_current(f.parent.parent.name, name, seed and int(seed)), f
        initialised += 1
    assert initialised >= 1


def test_band_pesq_nb_raw_scores_the_input_and_each_model_per_file_and_per_snr(
    monkeypatch, tmp_path
):
    import json
    import types

    import torch

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

    out = snr.band_search("x", 0)
    assert out["weights"] == 3 and out["held"] == ["wide"]
    assert [(c["model"], c["file"]) for c in out["candidates"]] == [
        ("t1", "a_first.json"), ("t1_last", "a_first.json"), ("wide", "b_again.json")]  # fmt: skip
    assert snr.band_search("x", 1)["weights"] == 1
    assert snr.band_search("x", 2) == {"band": 2, "weights": 0, "held": [], "candidates": []}
    (diag / "e_broken.json").write_text('[{"model": ')  # cut off mid-write
    with pytest.raises(ValueError, match="e_broken.json"):
        snr.band_search("x", 0)


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
