"""sekd.study.verdicts: every verdict sentence names its budget beside the paper's."""

import pytest

from sekd.study import dominated_rows_sentence, mvat_conclusion, mvat_effect_sentence
from sekd.study.verdicts import Budget, study_budget, teacher_verdict

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
        "3 seed(s); per seed -0.086, -0.086, -0.086); the paper (350 epochs at batch 4, a "
        "MANNER-B teacher of 24.07M parameters) reports +0.06: this contradicts it."
    )
    agrees = mvat_effect_sentence(_effect("mvat_dual_kd", 0.05, 0.01, 0.09, paper=0.07), BUDGET)
    assert "above the baseline" in agrees and agrees.endswith("this agrees with it.")
    unsure = mvat_effect_sentence(_effect("mvat_dual_kd", 0.0, -0.1, 0.1, paper=0.07), BUDGET)
    assert "not apart from the baseline" in unsure and "does not confirm it." in unsure


def test_a_row_the_paper_does_not_report_has_no_paper_clause():
    s = mvat_effect_sentence(_effect("kd_only", 0.056, 0.025, 0.087, seeds=1), BUDGET)
    assert s.endswith("KD alone is +0.056 [+0.025, +0.087] PESQ above the baseline over 31 "
                      "files (t-interval over files; 1 seed(s)).")  # fmt: skip
    assert "paper" not in s


def test_the_conclusion_leads_with_a_failed_precondition_and_keeps_the_methods_asked_for():
    effects = {"voicebank": [_effect("mvat_dual_q1", -0.1, -0.2, -0.05, paper=0.06),
                             _effect("kd_only", 0.1, 0.05, 0.2, seeds=1)]}  # fmt: skip
    sets = {"voicebank": "VoiceBank-DEMAND test pairs"}
    ok = mvat_conclusion(effects, True, BUDGET, ["mvat_dual_q1"], sets)
    assert (
        ok.startswith("**VoiceBank-DEMAND test pairs.** At 10,000 steps") and "KD alone" not in ok
    )
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
