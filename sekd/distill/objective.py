"""One objective for every MV-AT Table 3 row: supervised + beta_at * AT + beta_kd * KD (eq. 4).

The attention-transfer kinds live in one registry (`AT_KINDS`): what a kind reads from the
models, how the teacher's maps are taken and how the loss compares them. A new kind is one
`register_at(ATKind(...))` and its test. docs/method.md derives the equations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..checks import choice
from ..losses import weighted_losses
from ..models.manner import VIEWS
from ..models.protocol import Distillable
from .attention import (
    AT_REDUCTIONS,
    PAIRINGS,
    mvat_map_loss,
    pair_keys,
    single_view_map_loss,
    teacher_maps,
)


@dataclass(frozen=True)
class ATKind:
    """One attention-transfer kind.

    `taps`: which `Taps` field it reads, "views" (per MA block and view) or "layers" (per
    layer output); the models are asked for it with `return_<taps>`. `keys`: the model method
    that names those blocks. `views`: the view names per block (None: one map per key).
    `loss(t_maps, student_taps, pairs, q, p, reduction, views)`: the AT loss from the
    teacher's eq. 1 maps (`teacher_maps`) and the student's tapped tensors, over `views`.
    """

    name: str
    taps: str
    keys: str
    views: tuple[str, ...] | None
    loss: Callable


AT_KINDS: dict[str, ATKind] = {}


def register_at(kind: ATKind) -> ATKind:
    AT_KINDS[kind.name] = kind
    return kind


register_at(ATKind("mvat", "views", "view_blocks", VIEWS, mvat_map_loss))
register_at(ATKind("single_view", "layers", "layer_keys", None, single_view_map_loss))


@dataclass(frozen=True)
class ObjectiveConfig:
    """The `[objective]` section of a run config, and the objective's own settings.

    kind: a `sekd.objectives` entry: weighted_l1_mrstft (MANNER's weighted L1 +
    multi-resolution STFT loss, + AT / KD; read from the older name "manner" too) |
    snr_teacher (the SNR paper's loss) | mse | si_sdr (-SI-SDR + gain_weight * (gain - 1)^2,
    `losses.si_sdr_gain_loss`; beyond the paper).
    at: none or an `AT_KINDS` name; pairing: same_depth | dual_depth; q: AT norm (1 or 2);
    p: the exponent of eq. 1; at_reduction: norm (eq. 2 as printed) | mean (divided by
    T^(1/q): the per-frame mean; beyond the paper); kd: output distillation;
    beta_at, beta_kd: eq. 4 weights; alpha: the teacher's weight in the SNR loss;
    gain_weight: the weight of the gain term of kind si_sdr.
    """

    kind: str = "weighted_l1_mrstft"
    at: str = "none"
    pairing: str = "dual_depth"
    q: float = 1.0
    p: float = 2.0
    at_reduction: str = "norm"
    kd: bool = False
    beta_at: float = 1.0
    beta_kd: float = 1.0
    alpha: float = 0.5
    gain_weight: float = 10.0

    def __post_init__(self):
        from ..objectives import OBJECTIVE_KINDS, canonical_kind

        object.__setattr__(self, "kind", canonical_kind(self.kind))
        choice("objective.kind", self.kind, tuple(OBJECTIVE_KINDS))
        choice("objective.at", self.at, ("none", *AT_KINDS))
        choice("objective.pairing", self.pairing, PAIRINGS)
        choice("objective.at_reduction", self.at_reduction, AT_REDUCTIONS)
        if self.q not in (1, 2):
            raise ValueError(f"objective.q must be 1 or 2, got {self.q}")
        if not self.p > 0:
            raise ValueError(f"objective.p must be positive, got {self.p}")
        if not self.gain_weight >= 0:
            raise ValueError(f"objective.gain_weight must be >= 0, got {self.gain_weight}")

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
    # beyond the paper: eq. 2 as a per-frame mean (divided by T^(1/q)); as printed, the l1 sum
    # over frames outweighs the supervised loss by two orders of magnitude at 1 s segments
    "mvat_dual_mean": ObjectiveConfig(at="mvat", pairing="dual_depth", q=1, at_reduction="mean"),
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
        self.kind = AT_KINDS.get(cfg.at)
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
        if self.kind is None:
            return []
        for role, m in (("student", student), ("teacher", teacher)):
            if not isinstance(m, Distillable):
                raise ValueError(
                    f"{self.cfg.at} attention transfer needs a Distillable {role} "
                    f"(sekd.models.protocol); {type(m).__name__} has no attention taps"
                )
        s_keys = getattr(student, self.kind.keys)()
        t_keys = getattr(teacher, self.kind.keys)()
        pairs = pair_keys(s_keys, t_keys, student.cfg.depth, self.cfg.pairing)
        if not pairs:
            raise ValueError(f"no teacher/student pairs for {self.cfg.at} AT: {s_keys} vs {t_keys}")
        return pairs

    def _taps(self, keys) -> dict:
        return {} if keys is None else {f"return_{self.kind.taps}": keys}

    def __call__(self, noisy: torch.Tensor, clean: torch.Tensor):
        kind = self.kind
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
                        getattr(t_taps, kind.taps), self.pairs, self.cfg.p, kind.views
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
        if kind is not None:
            at = kind.loss(
                t_maps,
                getattr(s_taps, kind.taps),
                self.pairs,
                self.cfg.q,
                self.cfg.p,
                self.cfg.at_reduction,
                kind.views,
            )
            total = total + self.cfg.beta_at * at
            terms["at"] = at.detach()
        if self.cfg.kd:
            kd = losses[1].total
            total = total + self.cfg.beta_kd * kd
            terms["kd"] = kd.detach()
        terms["total"] = total.detach()
        return total, terms, s_out
