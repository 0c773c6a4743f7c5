"""sekd.study.mvat: the MV-AT study's tables, effects, preconditions and AT weights."""

import json
import math

import numpy as np
import pytest

from sekd.study import run_config
from sekd.study.mvat import at_weight_for_share


def test_objective_shares_read_each_terms_share_of_the_total_from_the_training_log(
    tmp_path, monkeypatch, tmp_study_paths
):

    import sekd.study.runs as study
    from sekd.study import objective_shares

    monkeypatch.setattr(study, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(study, "paths", tmp_study_paths)
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


def test_teacher_study_with_baseline_seeds_settles_the_baseline_check(
    monkeypatch, tmp_path, tmp_study_paths
):
    import sekd.study.runs as runs
    from sekd.study import teacher_preconditions, teacher_study

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    for module in ("sekd.study.runs", "sekd.study.mvat", "sekd.study.scoring"):
        monkeypatch.setattr(f"{module}.paths", tmp_study_paths)
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


# each weight row of the cpu profile: (the beta_at = 1 row its weight is read from, the share)
AT_WEIGHT_ROWS = {
    "mvat_dual_q1_at50": ("mvat_dual_q1", 0.5),
    "mvat_dual_q1_at10": ("mvat_dual_q1", 0.1),
    "mvat_dual_kd_at50": ("mvat_dual_kd", 0.5),
    "mvat_dual_kd_at10": ("mvat_dual_kd", 0.1),
}


def _two_significant(x: float) -> float:
    return round(x, 1 - math.floor(math.log10(abs(x))))


@pytest.mark.parametrize("row", sorted(AT_WEIGHT_ROWS))
def test_weight_rows_configs_hold_the_weight_computed_from_the_committed_logs(row):
    source, share = AT_WEIGHT_ROWS[row]
    computed = at_weight_for_share("cpu", source, share)
    cfg = run_config("cpu", f"student_{row}")
    assert cfg.objective.beta_at == _two_significant(computed["beta_at"])
    # the weight gives the share it was chosen for, on the terms it was computed from
    at = computed["beta_at"] * computed["at"]
    assert at / (at + computed["supervised"] + computed["kd"]) == pytest.approx(share)
    # everything but the weight is the beta_at = 1 row's
    base = run_config("cpu", f"student_{source}")
    assert cfg.objective == type(base.objective)(
        **{**vars(base.objective), "beta_at": cfg.objective.beta_at}
    )


@pytest.mark.parametrize("share", [0.0, 1.0, -0.2, 1.5])
def test_at_weight_for_share_refuses_a_share_outside_0_1(share):
    with pytest.raises(ValueError, match="share"):
        at_weight_for_share("cpu", "mvat_dual_q1", share)


@pytest.mark.parametrize("row", ["baseline", "mvat_dual_q1", "mvat_dual_kd"])
def test_5p3gf_rows_differ_from_the_1p5gf_rows_in_the_student_alone(row):
    small, big = (
        run_config("cpu", f"student_{row}", 1),
        run_config("cpu", f"student_5p3gf_{row}", 1),
    )
    assert (small.model.preset, big.model.preset) == ("student_1p5gf", "student_5p3gf")
    assert big.name == f"student_5p3gf_{row}"
    for section in ("data", "optim", "train", "objective", "teacher"):
        assert getattr(big, section) == getattr(small, section), section
    assert big.seed == small.seed == 1


def test_paired_trend_pairs_each_seeds_arms_by_step(tmp_path, monkeypatch, tmp_study_paths):
    import sekd.study.runs as study
    from sekd.study.mvat import paired_trend

    monkeypatch.setattr(study, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(study, "paths", tmp_study_paths)
    valid = {  # {run: {step: pesq}}; seed 1's baseline also validated at step 3, alone
        "student_baseline": {1: 1.0, 2: 1.5},
        "student_mvat_dual_kd": {1: 1.2, 2: 1.4},
        "student_baseline_seed1": {1: 2.0, 2: 2.0, 3: 2.5},
        "student_mvat_dual_kd_seed1": {1: 2.0, 2: 2.1},
    }
    for run, points in valid.items():
        folder = tmp_path / "runs" / "smoke" / run
        folder.mkdir(parents=True)
        lines = [
            {"kind": "valid", "step": s, "pesq": v, "si_sdri": 10 * v} for s, v in points.items()
        ]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    rows = paired_trend("smoke", "mvat_dual_kd", seeds=(None, 1))
    pesq = [r for r in rows if r["metric"] == "pesq"]
    assert [r["step"] for r in pesq] == [1, 2]
    assert pesq[0]["diff_per_seed"] == pytest.approx([0.2, 0.0])
    assert pesq[0]["diff"] == pytest.approx(0.1)
    assert pesq[1]["diff"] == pytest.approx(0.0) and pesq[1]["seeds"] == 2
    assert pesq[1]["diff_std_over_seeds"] == pytest.approx(np.std([-0.1, 0.1], ddof=1))
    sdri = [r for r in rows if r["metric"] == "si_sdri"]
    assert sdri[0]["diff"] == pytest.approx(1.0)


def test_the_study_trend_adds_the_5p3gf_arms_and_the_longer_pair_once_they_exist(
    tmp_path, monkeypatch, tmp_study_paths
):
    import sekd.study.runs as study
    from sekd.study.mvat import study_trend

    monkeypatch.setattr(study, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(study, "paths", tmp_study_paths)

    def run(name, pesq, finished=True):
        folder = tmp_path / "runs" / "smoke" / name
        folder.mkdir(parents=True)
        lines = [{"kind": "valid", "step": s, "pesq": pesq, "si_sdri": pesq} for s in (1, 2)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        if finished:
            (folder / "summary.json").write_text("{}")
            (folder / "best.pt").write_bytes(b"")

    for row, pesq in [("baseline", 1.0), ("mvat_dual_kd", 1.5), ("5p3gf_baseline", 2.0),
                      ("5p3gf_mvat_dual_q1", 2.25), ("baseline_30k", 3.0)]:  # fmt: skip
        run(f"student_{row}", pesq)
    run("student_5p3gf_mvat_dual_kd", 2.5, finished=False)  # one arm still training
    pairs = lambda rows: sorted({(r["method"], r["baseline"], r["diff"]) for r in rows})  # noqa: E731
    assert pairs(study_trend("smoke", ["baseline", "mvat_dual_kd"], (None,))) == [
        ("mvat_dual_kd", "baseline", 0.5)
    ]
    (tmp_path / "runs" / "smoke" / "student_5p3gf_mvat_dual_kd" / "summary.json").write_text("{}")
    (tmp_path / "runs" / "smoke" / "student_5p3gf_mvat_dual_kd" / "best.pt").write_bytes(b"")
    run("student_mvat_dual_kd_30k", 3.125)
    assert pairs(study_trend("smoke", ["baseline", "mvat_dual_kd"], (None,))) == [
        ("5p3gf_mvat_dual_kd", "5p3gf_baseline", 0.5),
        ("5p3gf_mvat_dual_q1", "5p3gf_baseline", 0.25),
        ("mvat_dual_kd", "baseline", 0.5),
        ("mvat_dual_kd_30k", "baseline_30k", 0.125),
    ]


def test_a_seeded_weight_row_is_shown_once_every_study_seed_is_trained(
    tmp_path, monkeypatch, tmp_study_paths
):
    import sekd.study.runs as study
    from sekd.study.mvat import robustness_rows, seeds_of
    from sekd.study.spec import SEEDED_WEIGHT_ROWS

    monkeypatch.setattr(study, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(study, "paths", tmp_study_paths)

    def finish(run):
        folder = tmp_path / "runs" / "smoke" / run
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text("{}")
        (folder / "best.pt").write_bytes(b"")

    seeded, other = SEEDED_WEIGHT_ROWS[0], "mvat_dual_q1_at50"
    assert seeds_of(seeded, (None, 1, 2), (None,)) == (None, 1, 2)
    assert seeds_of(other, (None, 1, 2), (None,)) == (None,)
    for run in (f"student_{other}", f"student_{seeded}", f"student_{seeded}_seed1"):
        finish(run)
    assert robustness_rows("smoke", (None, 1, 2), (None,)) == [other]  # seed 2 still training
    finish(f"student_{seeded}_seed2")
    assert robustness_rows("smoke", (None, 1, 2), (None,)) == [other, seeded]


def test_the_at_term_is_weighed_against_kd_alone_over_the_seeds_both_rows_have():
    from sekd.study.mvat import at_over_kd

    res = {
        "voicebank": {
            "student_kd_only": _result({"a": 1.0, "b": 2.0}),
            "student_mvat_dual_kd": _result({"a": 1.5, "b": 2.5}),
            "student_mvat_dual_kd_seed1": _result({"a": 9.0, "b": 9.0}),  # no KD-alone pair
            "student_mvat_dual_kd_at10": _result({"a": 0.75, "b": 1.75}),
        }
    }
    rows = ["kd_only", "mvat_dual_kd", "mvat_dual_kd_at10", "mvat_dual_q1"]
    pesq = {
        e["method"]: e
        for e in at_over_kd(res, "voicebank", rows, (None, 1), ablation_seeds=(None,))
        if e["metric"] == "pesq"
    }
    assert sorted(pesq) == ["mvat_dual_kd", "mvat_dual_kd_at10"]  # MV-AT alone has no KD
    assert pesq["mvat_dual_kd"]["diff"] == pytest.approx(0.5) and pesq["mvat_dual_kd"]["seeds"] == 1
    assert pesq["mvat_dual_kd_at10"]["diff"] == pytest.approx(-0.25)
    assert {e["baseline"] for e in pesq.values()} == {"kd_only"}
    assert "paper" not in pesq["mvat_dual_kd"]  # the paper's effect is against the baseline
    assert at_over_kd(res, "voicebank", rows[1:], (None, 1), (None,)) == []  # KD alone not run


def test_a_seeded_weight_row_is_tested_again_on_the_seeds_that_did_not_choose_it():
    from sekd.study.mvat import held_out_seeds

    res = {"voicebank": {
        "student_baseline": _result({"a": 1.0, "b": 2.0}),
        "student_baseline_seed1": _result({"a": 1.0, "b": 2.0}),
        "student_mvat_dual_kd_at10": _result({"a": 9.0, "b": 9.0}),  # the seed that chose it
        "student_mvat_dual_kd_at10_seed1": _result({"a": 1.5, "b": 2.5}),
        "student_mvat_dual_q1_at10": _result({"a": 1.0, "b": 2.0}),  # not seeded
    }}  # fmt: skip
    rows = ["baseline", "mvat_dual_kd_at10", "mvat_dual_q1_at10"]
    pesq = [e for e in held_out_seeds(res, "voicebank", rows, (None, 1)) if e["metric"] == "pesq"]
    assert [e["method"] for e in pesq] == ["mvat_dual_kd_at10"]
    assert pesq[0]["diff"] == pytest.approx(0.5) and pesq[0]["seeds"] == 1
    assert held_out_seeds(res, "voicebank", rows, (None,)) == []  # one seed: nothing held out


def test_the_size_change_is_the_larger_students_effect_minus_the_smaller_ones_paired_by_file():
    from sekd.study.mvat import distillation_effect, size_change
    from sekd.study.spec import SIZE_ARMS, label

    def student(row, seed, a, b):
        return {label(f"student_{row}", seed): _result({"a": a, "b": b, "c": a + b})}

    res = {}
    for seed, shift in ((None, 0.0), (1, 0.3)):
        res |= student("baseline", seed, 1.0 + shift, 2.0)
        res |= student("mvat_dual_q1", seed, 1.25 + shift, 1.5)  # a +0.25, b -0.5, c -0.25
        res |= student("mvat_dual_kd", seed, 1.0 + shift, 2.0)  # level with its baseline
        res |= student("5p3gf_baseline", seed, 2.0, 3.0 + shift)
        res |= student("5p3gf_mvat_dual_q1", seed, 2.5, 3.0 + shift)  # a +0.5, b 0, c +0.5
        res |= student("5p3gf_mvat_dual_kd", seed, 2.0, 2.0 + shift)  # a 0, b -1, c -1
    results = {"voicebank": res}
    rows = [*SIZE_ARMS.values(), *SIZE_ARMS]
    change = {
        e["method"]: e
        for e in size_change(results, "voicebank", rows, (None, 1))
        if e["metric"] == "pesq"
    }
    assert sorted(change) == ["5p3gf_mvat_dual_kd", "5p3gf_mvat_dual_q1"]  # not the baseline
    q1 = change["5p3gf_mvat_dual_q1"]
    # per file: a 0.5 - 0.25, b 0 - -0.5, c 0.5 - -0.25
    assert q1["diff"] == pytest.approx((0.25 + 0.5 + 0.75) / 3)
    assert q1["smaller"] == "mvat_dual_q1" and q1["pairs"] == 3 and q1["seeds"] == 2
    # equal to the difference of the two sizes' own effects
    big, small = (
        next(
            e["diff"]
            for e in distillation_effect(results, "voicebank", arm, (None, 1), baseline=base)
            if e["metric"] == "pesq"
        )
        for arm, base in (("5p3gf_mvat_dual_kd", "5p3gf_baseline"), ("mvat_dual_kd", "baseline"))
    )
    assert (
        change["5p3gf_mvat_dual_kd"]["diff"] == pytest.approx(big - small) == pytest.approx(-2 / 3)
    )
    assert size_change(results, "voicebank", list(SIZE_ARMS), (None, 1)) == []  # no 1.5GF rows
