"""The training objectives (`objective.kind`), one registry entry each: how a kind is set up
for a run, its loss on a batch and its validation loss. A new objective is one
`register_objective(ObjectiveKind(...))` and its test; `sekd.train.TrainingObjective`
dispatches through the registry.

Each function takes the run's `TrainingObjective` (its config, student, teachers and
`DistillationObjective`s) as `run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .losses import si_sdr_gain_loss, snr_teacher_loss, weighted_loss


@dataclass(frozen=True)
class ObjectiveKind:
    """`setup(run)`: checks and builds what the kind needs (raise ValueError if the config
    cannot run it); `loss(run, noisy, clean, snr)`: (total, {term: detached tensor}), the
    total among the terms; `valid_loss(run, out, noisy, clean)`: a float. `aliases`: older
    names still read from configs and checkpoints."""

    name: str
    setup: Callable
    loss: Callable
    valid_loss: Callable
    aliases: tuple[str, ...] = field(default=())


OBJECTIVE_KINDS: dict[str, ObjectiveKind] = {}
_ALIASES: dict[str, str] = {}


def register_objective(kind: ObjectiveKind) -> ObjectiveKind:
    OBJECTIVE_KINDS[kind.name] = kind
    _ALIASES.update(dict.fromkeys(kind.aliases, kind.name))
    return kind


def canonical_kind(name: str) -> str:
    """The registered name of `name` (an alias such as "manner" maps to its current name)."""
    return _ALIASES.get(name, name)


def _detached(parts: dict, total: torch.Tensor) -> dict:
    return {**{k: v.detach() for k, v in parts.items()}, "total": total.detach()}


# ------------------------------------------------- weighted L1 + multi-resolution STFT (+ AT, KD)
def _distill_setup(run) -> None:
    from .distill import DistillationObjective  # sekd.distill reads this registry as it loads

    o = run.cfg.objective
    if run.routed is not None:  # beyond the paper: MV-AT / KD from each example's band teacher
        run.band_objectives = [
            DistillationObjective(o, run.student, t) for t in run.routed.teachers
        ]
    elif o.needs_teacher and run.teacher is None:
        raise ValueError("objective needs a teacher: set teacher.routing and checkpoints")
    else:
        run.distill = DistillationObjective(o, run.student, run.teacher)


def _distill_loss(run, noisy, clean, snr):
    if run.band_objectives is not None:
        return run.routed_distill(noisy, clean, snr)
    total, terms, _ = run.distill(noisy, clean)
    return total, terms


def _weighted_valid(run, out, noisy, clean) -> float:
    return float(weighted_loss(out, clean, noisy).total)


# --------------------------------------------------------------- against the clean signal alone
def _no_setup(run) -> None:
    return None


def _half_mse(out, clean):
    total = 0.5 * F.mse_loss(out, clean)
    return total, {"mse": total}


def _si_sdr(run):
    return lambda out, clean: si_sdr_gain_loss(out, clean, run.cfg.objective.gain_weight)


def _to_clean_kind(name: str, against: Callable) -> ObjectiveKind:
    """A kind whose loss compares the student's output with the clean signal only;
    `against(run)` returns the (out, clean) -> (total, parts) function."""

    def loss(run, noisy, clean, snr):
        total, parts = against(run)(run.student(noisy), clean)
        return total, _detached(parts, total)

    def valid(run, out, noisy, clean) -> float:
        return float(against(run)(out, clean)[0])

    return ObjectiveKind(name, _no_setup, loss, valid)


# ---------------------------------------------------------------------------- SNR teachers
def _snr_teacher_setup(run) -> None:
    if run.teacher is None and run.routed is None:
        raise ValueError("objective.kind = snr_teacher needs teacher.routing = single or snr")


def _snr_teacher_loss(run, noisy, clean, snr):
    out = run.student(noisy)
    with torch.no_grad():
        t_out = run.routed(noisy, snr) if run.routed is not None else run.teacher(noisy)
    total, parts = snr_teacher_loss(out, t_out, clean, run.cfg.objective.alpha)
    return total, {"mse_teacher": parts["teacher"].detach(), "mse_clean": parts["clean"].detach(),
                   "total": total.detach()}  # fmt: skip


def _half_mse_valid(run, out, noisy, clean) -> float:
    return float(_half_mse(out, clean)[0])


register_objective(
    ObjectiveKind(
        "weighted_l1_mrstft", _distill_setup, _distill_loss, _weighted_valid, aliases=("manner",)
    )
)
register_objective(_to_clean_kind("mse", lambda run: _half_mse))
register_objective(_to_clean_kind("si_sdr", _si_sdr))
register_objective(
    ObjectiveKind("snr_teacher", _snr_teacher_setup, _snr_teacher_loss, _half_mse_valid)
)
