"""One objective for every MV-AT Table 3 row: supervised + beta_at * AT + beta_kd * KD (eq. 4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses import weighted_losses
from ..models.manner import VIEWS
from .attention import PAIRINGS, mvat_map_loss, pair_keys, single_view_map_loss, teacher_maps

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
        self.pairs = self._pair(getattr(student, "module", student), teacher)  # DDP wraps it
        # the blocks / layers each side must hand back (None: no taps)
        self._student_taps = sorted({(side, sd) for side, sd, _ in self.pairs}) or None
        self._teacher_taps = sorted({(side, td) for side, _, td in self.pairs}) or None

    def _pair(self, student, teacher) -> list:
        """The (side, student_depth, teacher_depth) pairs of the AT terms ([] without AT)."""
        if self.cfg.at == "none":
            return []
        keys = "view_blocks" if self.cfg.at == "mvat" else "layer_keys"
        s_keys, t_keys = getattr(student, keys)(), getattr(teacher, keys)()
        pairs = pair_keys(s_keys, t_keys, student.cfg.depth, self.cfg.pairing)
        if not pairs:
            raise ValueError(f"no teacher/student pairs for {self.cfg.at} AT: {s_keys} vs {t_keys}")
        return pairs

    def _taps(self, keys) -> dict:
        if keys is None:
            return {}
        return {"return_views" if self.cfg.at == "mvat" else "return_layers": keys}

    def __call__(self, noisy: torch.Tensor, clean: torch.Tensor):
        mvat = self.cfg.at == "mvat"
        # The teacher runs first and only its AT maps (B, T) are kept: its activations are freed
        # before the student's forward, whose graph then reuses that memory (run after, or with
        # the teacher's views alive, it allocates fresh pages next to the live graph, which
        # costs several % of a teacher forward per step on CPU; benchmarks/train_speed.py).
        if self.cfg.needs_teacher:
            with torch.no_grad():
                t_out = self.teacher(noisy, **self._taps(self._teacher_taps))
                if self._teacher_taps:
                    t_out, t_taps = t_out
                    t_maps = teacher_maps(
                        t_taps.views if mvat else t_taps.layers,
                        self.pairs,
                        self.cfg.p,
                        VIEWS if mvat else None,
                    )
                    del t_taps
        s_out = self.student(noisy, **self._taps(self._student_taps))
        if self._student_taps:
            s_out, s_taps = s_out
        # the supervised loss and KD differ only in their targets: one pass scores both
        targets = [clean, t_out] if self.cfg.kd else [clean]
        losses = weighted_losses(s_out, targets, noisy)
        sup = losses[0]
        total = sup.total
        terms = {"supervised": sup.total.detach()}
        if self.cfg.at != "none":
            if mvat:
                at = mvat_map_loss(t_maps, s_taps.views, self.pairs, self.cfg.q, self.cfg.p)
            else:
                at = single_view_map_loss(t_maps, s_taps.layers, self.pairs, self.cfg.q, self.cfg.p)
            total = total + self.cfg.beta_at * at
            terms["at"] = at.detach()
        if self.cfg.kd:
            kd = losses[1].total
            total = total + self.cfg.beta_kd * kd
            terms["kd"] = kd.detach()
        terms["total"] = total.detach()
        return total, terms, s_out
