"""sekd.study.mvat: the AT weights of the robustness rows."""

import math

import pytest

from sekd.study import run_config
from sekd.study.mvat import at_weight_for_share

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
