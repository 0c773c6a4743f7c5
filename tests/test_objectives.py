"""sekd.objectives and the AT-kind registry: a new objective or AT kind is one entry."""

from pathlib import Path

import pytest
import torch

from sekd import objectives
from sekd.config import config_from_dict, load_config
from sekd.distill import AT_KINDS, DistillationObjective, ObjectiveConfig
from sekd.distill.attention import at_loss, mvat_map_loss, temporal_attention_map
from sekd.distill.objective import ATKind, register_at
from sekd.models import build
from sekd.objectives import ObjectiveKind, canonical_kind, register_objective
from sekd.train import read_metrics, train

ROOT = Path(__file__).resolve().parents[1]


def test_the_weighted_loss_has_a_name_that_says_what_it_is_and_reads_its_old_name():
    assert ObjectiveConfig().kind == "weighted_l1_mrstft"
    assert (
        config_from_dict({"objective": {"kind": "manner"}}).objective.kind == "weighted_l1_mrstft"
    )
    assert canonical_kind("manner") == "weighted_l1_mrstft" and canonical_kind("mse") == "mse"
    assert set(objectives.OBJECTIVE_KINDS) == {"weighted_l1_mrstft", "mse", "si_sdr", "snr_teacher"}


def test_a_committed_run_written_under_the_old_name_is_still_current():
    from sekd.study.runs import committed_current

    config = (ROOT / "checkpoints/cpu/student_baseline/config.json").read_text()
    assert '"kind": "manner"' in config
    assert committed_current("cpu", "student_baseline")


def test_a_new_objective_is_one_registry_entry(tmp_path):
    """A throwaway objective (L1 to the clean signal) registered, trained two steps, removed."""

    def l1(run, noisy, clean, snr):
        total = (run.student(noisy) - clean).abs().mean()
        return total, {"l1": total.detach(), "total": total.detach()}

    kind = ObjectiveKind("l1_throwaway", lambda run: None, l1, lambda run, out, n, c: 0.0)
    register_objective(kind)
    try:
        over = {"objective": {"kind": "l1_throwaway"}, "train": {"max_steps": 2, "log_every": 1}}
        cfg = load_config(ROOT / "configs/smoke/student_baseline.toml", **over)
        train(cfg, tmp_path / "run", progress=False)
        logged = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
        assert [r["step"] for r in logged] == [1, 2] and all("l1" in r for r in logged)
    finally:
        objectives.OBJECTIVE_KINDS.pop("l1_throwaway")
    with pytest.raises(ValueError, match="objective.kind must be one of"):
        ObjectiveConfig(kind="l1_throwaway")


def test_a_registered_single_view_at_kind_computes_its_own_view_only():
    """mvat_map_loss honours the kind's views: a kind of the global view alone gives the AT
    loss of that view, not of all three."""
    register_at(ATKind("global_view_throwaway", "views", "view_blocks", ("global",), mvat_map_loss))
    try:
        torch.manual_seed(0)
        student, teacher = build("tiny_student"), build("tiny_teacher").eval()
        cfg = ObjectiveConfig(at="global_view_throwaway", pairing="dual_depth")
        obj = DistillationObjective(cfg, student, teacher)
        x, c = 0.1 * torch.randn(2, 1, 8000), 0.1 * torch.randn(2, 1, 8000)
        _, terms, _ = obj(x, c)
        with torch.no_grad():
            _, tt = teacher(x, return_views=True)
        _, st = student(x, return_views=True)
        want = sum(
            at_loss(temporal_attention_map(tt.views[(side, td, "global")]),
                    temporal_attention_map(st.views[(side, sd, "global")]))
            for side, sd, td in obj.pairs
        )  # fmt: skip
        assert float(terms["at"]) == pytest.approx(float(want.detach()), rel=1e-5)
        three = DistillationObjective(ObjectiveConfig(at="mvat"), student, teacher)(x, c)[1]["at"]
        assert float(three) != pytest.approx(float(want), rel=1e-2)
    finally:
        AT_KINDS.pop("global_view_throwaway")
