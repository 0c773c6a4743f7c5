"""One objective for every MV-AT Table 3 row: supervised + beta_at * AT + beta_kd * KD (eq. 4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses import estimate_magnitudes, kd_loss, weighted_loss
from .attention import PAIRINGS, mvat_loss, mvat_pairs, pair_keys, single_view_loss

AT_KINDS = ("none", "mvat", "single_view")


@dataclass(frozen=True)
class ObjectiveConfig:
    """at: none | mvat | single_view; pairing: same_depth | dual_depth; q: AT norm (1 or 2)."""

    at: str = "none"
    pairing: str = "dual_depth"
    q: float = 1.0
    p: float = 2.0
    kd: bool = False
    beta_at: float = 1.0
    beta_kd: float = 1.0

    def __post_init__(self):
        if self.at not in AT_KINDS:
            raise ValueError(f"unknown attention transfer {self.at!r}; known: {AT_KINDS}")
        if self.pairing not in PAIRINGS:
            raise ValueError(f"unknown pairing {self.pairing!r}; known: {PAIRINGS}")
        if self.q not in (1, 2):
            raise ValueError(f"q must be 1 or 2, got {self.q}")

    @property
    def needs_teacher(self) -> bool:
        return self.at != "none" or self.kd


# MV-AT Table 3: the ablation rows, each one config.
TABLE3_ROWS = {
    "baseline": ObjectiveConfig(),
    "single_view_at_dual": ObjectiveConfig(at="single_view", pairing="dual_depth"),
    "kd_only": ObjectiveConfig(kd=True),
    "mvat_same_depth": ObjectiveConfig(at="mvat", pairing="same_depth"),
    "mvat_dual_q1": ObjectiveConfig(at="mvat", pairing="dual_depth", q=1),
    "mvat_dual_q2": ObjectiveConfig(at="mvat", pairing="dual_depth", q=2),
    "mvat_dual_kd": ObjectiveConfig(at="mvat", pairing="dual_depth", q=1, kd=True),
}


class DistillationObjective:
    """Runs the student (with the taps its terms need) and the frozen teacher once per step.

    `__call__(noisy, clean)` returns (total, terms, student_out); terms maps names
    (supervised, at, kd, total) to detached scalars for logging.
    """

    def __init__(self, cfg: ObjectiveConfig, student, teacher=None):
        if cfg.needs_teacher and teacher is None:
            raise ValueError(f"objective {cfg} needs a teacher model")
        self.cfg, self.student, self.teacher = cfg, student, teacher
        if teacher is not None:
            teacher.eval()
            for prm in teacher.parameters():
                prm.requires_grad_(False)
        self._pairs = None

    def _flags(self) -> dict:
        return {
            "return_views": self.cfg.at == "mvat",
            "return_layers": self.cfg.at == "single_view",
        }

    def pairs(self, student_taps, teacher_taps):
        """The (side, student_depth, teacher_depth) pairs in use (computed once)."""
        if self._pairs is None:
            depth = getattr(self.student, "module", self.student).cfg.depth  # DDP wraps it
            if self.cfg.at == "mvat":
                self._pairs = mvat_pairs(
                    student_taps.views, teacher_taps.views, depth, self.cfg.pairing
                )
            else:
                self._pairs = pair_keys(
                    student_taps.layers, teacher_taps.layers, depth, self.cfg.pairing
                )
        return self._pairs

    def __call__(self, noisy: torch.Tensor, clean: torch.Tensor):
        flags = self._flags()
        want_taps = any(flags.values())
        # The teacher runs first: its activations are freed before the student's forward, whose
        # graph then reuses that memory (run after, it allocates fresh pages next to the live
        # graph, which costs ~15 % of a teacher forward per step on CPU; benchmarks/train_speed).
        if self.cfg.needs_teacher:
            with torch.no_grad():
                t_out = self.teacher(noisy, **flags)
            t_out, t_taps = t_out if want_taps else (t_out, None)
        s_out = self.student(noisy, **flags)
        s_out, s_taps = s_out if want_taps else (s_out, None)
        # the student-side STFTs are shared by the supervised loss and KD
        mags = estimate_magnitudes(s_out, noisy) if self.cfg.kd else None
        sup = weighted_loss(s_out, clean, noisy, mags)
        total = sup.total
        terms = {"supervised": sup.total.detach()}
        if self.cfg.at != "none":
            pairs = self.pairs(s_taps, t_taps)
            if self.cfg.at == "mvat":
                at = mvat_loss(t_taps.views, s_taps.views, pairs, self.cfg.q, self.cfg.p)
            else:
                at = single_view_loss(t_taps.layers, s_taps.layers, pairs, self.cfg.q, self.cfg.p)
            total = total + self.cfg.beta_at * at
            terms["at"] = at.detach()
        if self.cfg.kd:
            kd = kd_loss(s_out, t_out, noisy, mags).total
            total = total + self.cfg.beta_kd * kd
            terms["kd"] = kd.detach()
        terms["total"] = total.detach()
        return total, terms, s_out
