"""sekd.study.verdicts: every verdict sentence names its budget beside the paper's."""

import pytest

from sekd.study import dominated_rows_sentence, mvat_conclusion, mvat_effect_sentence
from sekd.study.verdicts import (
    Budget,
    at_distance_sentence,
    band_search_sentence,
    budget_sentence,
    in_short,
    listening_sentence,
    model_title,
    robustness_answers,
    size_change_sentence,
    snr_budget,
    snr_conclusion,
    stoi_loss_sentence,
    students_vs_noisy_sentence,
    study_budget,
    teacher_verdict,
    trend_sentence,
)

BUDGET = Budget(steps=10_000, batch=4, segment=16_000, teacher_params=2_827_171)


def _effect(method, diff, lo, hi, paper=None, seeds=3):
    e = {"method": method, "metric": "pesq", "diff": diff, "ci_low": lo, "ci_high": hi,
         "pairs": 31, "interval": "t-interval over files", "seeds": seeds,
         "diff_per_seed": [diff] * seeds}  # fmt: skip
    return {**e, "paper": paper} if paper is not None else e


def test_the_budget_phrase_counts_hours_of_audio_and_the_teacher():
    assert BUDGET.hours == pytest.approx(10_000 * 4 / 3600)
    assert BUDGET.phrase() == (
        "10,000 steps of 4 x 1 s (about 11 h of audio), a 2.8M-parameter teacher"
    )
    cpu = study_budget("cpu")
    assert (cpu.steps, cpu.batch, cpu.segment, cpu.teacher_params) == (10_000, 4, 16_000, 2_827_171)


def test_an_effect_the_paper_reports_is_set_against_it_at_both_budgets():
    s = mvat_effect_sentence(_effect("mvat_dual_q1", -0.086, -0.170, -0.001, paper=0.06), BUDGET)
    assert s == (
        "At 10,000 steps of 4 x 1 s (about 11 h of audio), a 2.8M-parameter teacher, MV-AT is "
        "-0.086 [-0.170, -0.001] PESQ below the baseline over 31 files (t-interval over files; "
        "3 seeds; per seed -0.086, -0.086, -0.086); the paper (350 epochs at batch 4, a "
        "MANNER-B teacher of 24.07M parameters) reports +0.06: this contradicts it."
    )
    agrees = mvat_effect_sentence(_effect("mvat_dual_kd", 0.05, 0.01, 0.09, paper=0.07), BUDGET)
    assert "above the baseline" in agrees and agrees.endswith("this agrees with it.")
    unsure = mvat_effect_sentence(_effect("mvat_dual_kd", 0.0, -0.1, 0.1, paper=0.07), BUDGET)
    assert "not apart from the baseline" in unsure and "does not confirm it." in unsure


def test_a_row_the_paper_does_not_report_has_no_paper_clause():
    s = mvat_effect_sentence(_effect("kd_only", 0.056, 0.025, 0.087, seeds=1), BUDGET)
    assert s.endswith("KD alone is +0.056 [+0.025, +0.087] PESQ above the baseline over 31 "
                      "files (t-interval over files; 1 seed).")  # fmt: skip
    assert "paper" not in s


def test_the_conclusion_leads_with_a_failed_precondition_and_keeps_the_methods_asked_for():
    effects = {"voicebank": [_effect("mvat_dual_q1", -0.1, -0.2, -0.05, paper=0.06),
                             _effect("kd_only", 0.1, 0.05, 0.2, seeds=1)]}  # fmt: skip
    sets = {"voicebank": "VoiceBank-DEMAND test pairs"}
    ok = mvat_conclusion(effects, True, BUDGET, ["mvat_dual_q1"], sets)
    budget, said = ok.split("\n\n")
    assert budget == budget_sentence(BUDGET)  # the budget once, before the verdicts it scopes
    assert budget.startswith("Every student here was trained for 10,000 steps of 4 x 1 s")
    assert budget.endswith("the paper's, for 350 epochs at batch 4, a MANNER-B teacher of 24.07M "
                           "parameters.")  # fmt: skip
    assert said.startswith("**VoiceBank-DEMAND test pairs.** MV-AT is -0.100 [-0.200, -0.050]")
    assert "KD alone" not in ok and "the paper reports +0.06: this contradicts it" in said
    failed = mvat_conclusion(effects, False, BUDGET, ["mvat_dual_q1"], sets)
    assert failed.startswith(teacher_verdict(False)) and failed.endswith(ok)


def test_dominated_rows_are_those_with_a_distillation_term_over_the_share():
    shares = [{"row": "baseline", "supervised_share": 1.0},
              {"row": "mvat_dual_q1", "at_share": 0.99, "supervised_share": 0.01},
              {"row": "kd_only", "kd_share": 0.42, "supervised_share": 0.58}]  # fmt: skip
    assert dominated_rows_sentence(shares) == (
        "Rows whose objective is over 90% one distillation term: mvat_dual_q1."
    )
    assert dominated_rows_sentence(shares[:1]).startswith("No row's objective")


def test_several_teachers_are_named_as_such_and_the_snr_budget_reads_s2s_config():
    four = Budget(3_000, 16, 16_384, 3_200_000, teachers=4)
    assert four.phrase() == (
        "3,000 steps of 16 x 1.024 s (about 14 h of audio), 4 teachers of up to 3.2M parameters"
    )
    assert Budget(10, 1, 16_000).phrase() == "10 steps of 1 x 1 s (about 0 h of audio)"
    cpu = snr_budget("cpu")
    assert (cpu.batch, cpu.segment, cpu.teachers) == (16, 16_384, 4)


def _trend(method, steps_diffs, std):
    return [{"method": method, "baseline": "baseline", "metric": "pesq", "step": s, "diff": d,
             "diff_std_over_seeds": std, "seeds": 3} for s, d in steps_diffs]  # fmt: skip


def test_the_trend_says_whether_the_gap_closes_holds_or_grows_beyond_the_seeds_spread():
    grows = _trend("mvat_dual_q1", [(1000, -0.01), (5000, -0.05), (10000, -0.10)], 0.01)
    holds = _trend("mvat_dual_kd", [(1000, -0.02), (10000, -0.03)], 0.02)
    closes = _trend("kd_only", [(1000, -0.10), (10000, -0.02)], 0.01)
    said = trend_sentence(grows + holds + closes)
    assert said.startswith(
        "Validation PESQ, paired by seed: MV-AT - baseline: -0.010 ± 0.010 at step 1,000, "
        "-0.100 ± 0.010 at step 10,000 (3 seeds): the gap grows;"
    )
    assert "MV-AT + KD - baseline: -0.020 ± 0.020 at step 1,000" in said
    assert "the gap holds within the seeds' spread" in said and "the gap closes." in said
    assert trend_sentence([]).startswith("No paired validation trend")
    # one seed has no spread: the sentence says which way the gap moved and that it cannot judge
    longer = [{**r, "method": "mvat_dual_kd_30k", "baseline": "baseline_30k",
               "diff_std_over_seeds": float("nan"), "seeds": 1}
              for r in _trend("", [(1000, -0.02), (30000, -0.01)], 0)]  # fmt: skip
    assert trend_sentence(longer) == (
        "Validation PESQ, paired by seed: MV-AT + KD, 30,000 steps - baseline student, 30,000 "
        "steps: -0.020 at step 1,000, -0.010 at step 30,000 (1 seed): the gap closes (one "
        "seed: no spread to judge it by)."
    )


def test_the_robustness_answers_name_each_question_and_what_is_not_trained_yet():
    weight = _effect("mvat_dual_kd_at50", 0.071, 0.029, 0.113, seeds=1)
    said = robustness_answers([weight], _trend("mvat_dual_q1", [(1, 0.0), (2, 0.0)], 0.1), BUDGET)
    one, two, three = said.split("\n")
    assert one.startswith(
        "1. **The AT weight.** *PESQ:* Above the baseline: MV-AT + KD, AT weighted to ~50 % "
        "+0.071 [+0.029, +0.113] (1 seed). MV-AT + KD, AT weighted to ~50 % is +0.071"
    )
    assert two.startswith("2. **The student's size.**") and "not finished yet" in two
    assert three.startswith(
        "3. **The budget.** Over the 10,000 steps trained (the paper: 350 epochs"
    ) and three.endswith("the gap holds within the seeds' spread.")
    # with the rows against KD alone, the first answer says what the AT term adds to KD
    over_kd = [{**_effect("mvat_dual_kd_at50", 0.015, -0.02, 0.05, seeds=1), "baseline": "kd_only"}]
    one = robustness_answers([weight], [], BUDGET, over_kd).split("\n")[0]
    assert (
        "*PESQ against KD alone:* Not apart from KD alone: MV-AT + KD, AT weighted to ~50 % "
        "+0.015 [-0.020, +0.050] (1 seed)." in one
    )
    assert one.endswith(
        "Against KD alone, the same objective without the AT term, in PESQ over the same files: "
        "MV-AT + KD, AT weighted to ~50 % is +0.015 [-0.020, +0.050], not apart from it (1 seed)."
    )
    assert robustness_answers([], [], BUDGET, over_kd).split("\n")[0].endswith("not finished yet.")
    # a seeded row is tested again on the seeds that did not choose it
    held_out = [_effect("mvat_dual_kd_at50", 0.012, -0.02, 0.044, seeds=2)]
    one = robustness_answers([weight], [], BUDGET, over_kd, held_out).split("\n")[0]
    lead = "*PESQ on the seeds that did not choose a row:* Not apart from the baseline: MV-AT + KD"
    assert lead in one
    assert (
        "which favours it; over the other seeds alone: MV-AT + KD, AT weighted to ~50 % is +0.012 "
        "[-0.020, +0.044] PESQ not apart from the baseline over 31 files" in one
    )
    size = {**_effect("5p3gf_mvat_dual_q1", -0.01, -0.05, 0.03), "baseline": "5p3gf_baseline"}
    two = robustness_answers([size], [], BUDGET).split("\n")[1]
    assert "is -0.010 [-0.050, +0.030] PESQ not apart from the 5.3GF baseline student" in two
    # brief: the grouped figures alone
    brief = robustness_answers([weight, size], [], BUDGET, over_kd, held_out, brief=True)
    one, two = brief.split("\n")[:2]
    assert one == (
        "1. **The AT weight.** *PESQ:* Above the baseline: MV-AT + KD, AT weighted to ~50 % +0.071 "
        "[+0.029, +0.113] (1 seed). *PESQ on the seeds that did not choose a row:* Not apart from "
        "the baseline: MV-AT + KD, AT weighted to ~50 % +0.012 [-0.020, +0.044] (2 seeds). *PESQ "
        "against KD alone:* Not apart from KD alone: MV-AT + KD, AT weighted to ~50 % +0.015 "
        "[-0.020, +0.050] (1 seed)."
    )
    assert two == (
        "2. **The student's size.** *PESQ:* Not apart from the 5.3GF baseline student: "
        f"{model_title('5p3gf_mvat_dual_q1')} -0.010 [-0.050, +0.030] (3 seeds)."
    )
    # with the size change: the 5.3GF effect against the same arm's 1.5GF effect
    change = {**_effect("5p3gf_mvat_dual_q1", 0.09, 0.02, 0.16), "smaller": "mvat_dual_q1"}
    two = robustness_answers([size], [], BUDGET, size_changes=[change], brief=True).split("\n")[1]
    assert two.endswith(
        "*PESQ, each arm's 5.3GF effect against its 1.5GF one:* Above its 1.5GF one: "
        "5.3GF MV-AT +0.090 [+0.020, +0.160] (3 seeds)."
    )
    two = robustness_answers([size], [], BUDGET, size_changes=[change]).split("\n")[1]
    assert two.endswith(
        "in PESQ over the same files and seeds: 5.3GF MV-AT is +0.090 [+0.020, +0.160], above it "
        "(3 seeds). The paper's account (a small student cannot take in the teacher's knowledge) "
        "predicts this above 0."
    )
    assert size_change_sentence([]).startswith("The 5.3GF runs are not all finished yet")
    # no 5.3GF rows yet: the question is not answered by a change alone
    two = robustness_answers([], [], BUDGET, size_changes=[change]).split("\n")[1]
    assert two.endswith("the study has the 1.5GF student only.")


def test_in_short_groups_rows_above_level_with_and_below_their_baseline_in_that_order():
    rows = [
        _effect("mvat_dual_q1", -0.08, -0.17, -0.01),
        _effect("kd_only", 0.05, 0.02, 0.08),
        _effect("mvat_dual_kd", -0.01, -0.05, 0.03),
        _effect("mvat_dual_mean", 0.0, -0.1, 0.1),
    ]
    assert in_short(rows, "the baseline") == (
        "Above the baseline: KD alone +0.050 [+0.020, +0.080] (3 seeds). Not apart from the "
        "baseline: MV-AT + KD -0.010 [-0.050, +0.030] (3 seeds); "
        f"{model_title('mvat_dual_mean')} +0.000 [-0.100, +0.100] (3 seeds). Below the baseline: "
        "MV-AT -0.080 [-0.170, -0.010] (3 seeds)."
    )
    assert in_short([], "the baseline") == ""


def test_the_snr_sentences_name_the_teachers_and_students_that_fail():
    bands = [{"teacher": "t1", "holds": True}, {"teacher": "t2", "holds": False}]
    search = [{"band": 0, "model": "a", "holds": False}, {"band": 0, "model": "b", "holds": True}]
    confirmed = [{"teacher": "t1", "holds": False}]
    said = band_search_sentence(bands, search, confirmed)
    assert said.startswith("Weights band-checked on the test files before a teacher was kept: "
                           "band 1 (kept: t1): 2 scored, 1 passed. **t1 does not beat")  # fmt: skip
    assert band_search_sentence(bands, [], []).startswith("No band check was run. **Every band")
    vs = [{"model": "s1", "lowers_stoi": True, "enhances": False},
          {"model": "s2", "lowers_stoi": False, "enhances": True}]  # fmt: skip
    assert students_vs_noisy_sentence(vs) == (
        "**s1 lower(s) STOI below the noisy input.** **s1 do(es) not enhance by the project's "
        "rule.**"
    )
    by_snr = [
        {"model": "s1", "snr": -20.0, "ci_low": -0.06, "ci_high": -0.04, "gain": 0.152},
        {"model": "s2", "snr": -20.0, "ci_low": -0.02, "ci_high": 0.01, "gain": 0.9},
    ]
    assert stoi_loss_sentence(by_snr) == (
        "**s1** is below the input in STOI at -20 dB (gain 0.15). **s2** is not below the input "
        "in STOI at any test SNR."
    )
    effect = [{"metric": "pesq", "group": g, "diff": d, "ci_low": d - 0.01, "ci_high": d + 0.01,
               "pairs": 90, "seeds": 1, "direction": "above" if d > 0.01 else "not apart from"}
              for g, d in (("all", 0.002), ("-20 dB", 0.05), ("+20 dB", 0.0))]  # fmt: skip
    four = Budget(3_000, 16, 16_384, 3_200_000, teachers=4)
    said = snr_conclusion(effect, bands, confirmed, vs, four).split("\n")
    assert said[0] == (
        "Teachers that miss their precondition: t2. Teachers not confirmed on the confirmation "
        "grid: t1. Students that lower STOI below the input: s1."
    )
    assert said[1] == budget_sentence(four, "batches of 16 x 1.024 s for 600+ epochs, S2 above "
                                      "S1 from about epoch 200")  # fmt: skip
    assert said[2] == (
        "- S2 - S1 = +0.002 [-0.008, +0.012] PESQ over 90 files, 1 seed (S2 not apart from S1)."
    )
    assert said[3].startswith("- S2 is above S1 in PESQ at 1 of 2 test SNRs (-20 dB); the paper")


def test_the_listening_and_attention_sentences_compute_from_their_inputs():
    import numpy as np

    rng = np.random.default_rng(0)
    clean = rng.standard_normal(16_000)
    noisy = clean + rng.standard_normal(16_000)
    said = listening_sentence("s", {"noisy": noisy, "s": -0.5 * clean, "clean": clean})
    assert "least-squares gain of **-0.50**" in said and "on this selection s" in said.lower()
    keys = [("encoder", 3, 3, v) for v in ("channel", "global", "local")]
    distances = {"baseline": dict(zip(keys, (1.0, 2.0, 3.0))), "MV-AT": dict(zip(keys, (1, 1, 1)))}
    assert "**6.000** for the baseline student and **3.000** after MV-AT (closer" in (
        at_distance_sentence("u", distances)
    )
