"""Attention transfer for waveforms (MV-AT paper, section 2.2-2.4; docs/method.md sections 1-2).

Everything here takes plain tensors: activations (B, C, T) or maps (B, T). Pairings are lists
of (side, student_depth, teacher_depth) so notebooks can print and draw them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.manner import VIEWS

EPS = 1e-12
PAIRINGS = ("same_depth", "dual_depth")


def temporal_attention_map(A: torch.Tensor, p: float = 2, normalize: bool = True) -> torch.Tensor:
    """Eq. 1: F(A) = sum_c |A_c|^p, (B, C, T) -> (B, T), then each example scaled to unit L2.

    A zero map stays zero (its norm is guarded by EPS).
    """
    if A.dim() != 3:
        raise ValueError(f"temporal_attention_map: expected (B, C, T), got shape {tuple(A.shape)}")
    m = (A * A if p == 2 else A.abs().pow(p)).sum(1)  # (B, T); |a|^2 = a * a exactly
    return _normalize(m) if normalize else m


def _normalize(m: torch.Tensor) -> torch.Tensor:
    return m / torch.linalg.vector_norm(m, dim=-1, keepdim=True).clamp_min(EPS)


def _resize(m: torch.Tensor, length: int) -> torch.Tensor:
    if m.shape[-1] == length:
        return m
    return F.interpolate(m[:, None], size=length, mode="linear", align_corners=False)[:, 0]


AT_REDUCTIONS = ("norm", "mean")


def at_loss(
    teacher_map: torch.Tensor,
    student_map: torch.Tensor,
    q: float = 1,
    resample: str = "teacher",
    reduction: str = "norm",
) -> torch.Tensor:
    """Eq. 2: || F_T / ||F_T|| - F_S / ||F_S|| ||_q per example, mean over the batch.

    Maps are (B, T_t) and (B, T_s), normalised or not; the side named by `resample` ("teacher"
    or "student") is linearly interpolated to the other's length, then both are normalised.
    The teacher side is detached. `reduction = "norm"` is eq. 2 as printed: for q = 1 it sums
    |difference| over the T frames, so it grows with the map's length (as sqrt(T) for maps
    that differ alike everywhere) and at 1 s segments it outweighs the supervised loss by two
    orders of magnitude. "mean" divides it by T^(1/q): the mean absolute difference for q = 1,
    the RMS for q = 2, as common attention-transfer implementations compute it (beyond the
    paper).
    """
    if teacher_map.dim() != 2 or student_map.dim() != 2:
        raise ValueError(
            f"at_loss: expected maps (B, T), got {tuple(teacher_map.shape)} and "
            f"{tuple(student_map.shape)}"
        )
    if teacher_map.shape[0] != student_map.shape[0]:
        raise ValueError(
            f"at_loss: batch sizes differ, {teacher_map.shape[0]} vs {student_map.shape[0]}"
        )
    t = teacher_map.detach()
    if resample == "teacher":
        t = _resize(t, student_map.shape[-1])
        s = student_map
    elif resample == "student":
        s = _resize(student_map, t.shape[-1])
    else:
        raise ValueError(f"resample must be 'teacher' or 'student', got {resample!r}")
    d = _normalize(t) - _normalize(s)
    loss = torch.linalg.vector_norm(d, ord=q, dim=-1)
    if reduction == "mean":
        loss = loss / d.shape[-1] ** (1 / q)
    elif reduction != "norm":
        raise ValueError(f"reduction must be one of {AT_REDUCTIONS}, got {reduction!r}")
    return loss.mean()


def block_pairs(
    student_depths, teacher_depths, student_depth: int, mode: str = "dual_depth"
) -> list[tuple[int, int]]:
    """(student_depth, teacher_depth) pairs for blocks available at the given depths (1-based).

    same_depth: l <-> l. dual_depth: as same_depth, plus the student's deepest depth L_S paired
    with every teacher block deeper than L_S. A pair whose teacher block is missing is skipped;
    a student block left with no partner goes to the nearest deeper teacher block that exists.
    """
    if mode not in PAIRINGS:
        raise ValueError(f"unknown pairing {mode!r}; known: {PAIRINGS}")
    teacher = sorted(set(teacher_depths))
    pairs = []
    for s in sorted(set(student_depths)):
        partners = [(s, s)] if s in teacher else []
        if mode == "dual_depth" and s == student_depth:
            partners += [(s, t) for t in teacher if t > s]
        if not partners:
            deeper = [t for t in teacher if t > s]
            if deeper:
                partners = [(s, deeper[0])]
        pairs += partners
    return pairs


def pair_keys(student_keys, teacher_keys, student_depth: int, mode: str = "dual_depth"):
    """Pairs of (side, depth) keys, per side (encoder, decoder), by `block_pairs`.

    Returns [(side, student_depth, teacher_depth)].
    """
    out = []
    for side in ("encoder", "decoder"):
        s = [k[1] for k in student_keys if k[0] == side]
        t = [k[1] for k in teacher_keys if k[0] == side]
        out += [(side, a, b) for a, b in block_pairs(s, t, student_depth, mode)]
    return out


def mvat_pairs(student_views: dict, teacher_views: dict, student_depth: int, mode="dual_depth"):
    """Block pairs for MV-AT from the `Taps.views` dicts of a student and a teacher."""
    return pair_keys(
        {k[:2] for k in student_views}, {k[:2] for k in teacher_views}, student_depth, mode
    )


def mvat_block_loss(teacher_views: dict, student_views: dict, q: float = 1, p: float = 2):
    """Eq. 3 for one block pair: sum over views of AT losses. Dicts map view name -> (B, n, T)."""
    total = 0.0
    for view in VIEWS:
        total = total + at_loss(
            temporal_attention_map(teacher_views[view], p),
            temporal_attention_map(student_views[view], p),
            q,
        )
    return total


def teacher_maps(teacher_taps: dict, pairs, p: float = 2, views=VIEWS) -> dict:
    """The teacher side of an AT loss, without gradient: the eq. 1 map of every teacher tensor
    that `pairs` uses, keyed as `teacher_taps`. views=VIEWS for `Taps.views` (MV-AT), None for
    `Taps.layers` (single-view AT). Taken right after the teacher's forward, they let its
    activations be freed before the student runs (`DistillationObjective`)."""
    blocks = dict.fromkeys((side, td) for side, _, td in pairs)  # ordered, no duplicates
    keys = [(*b, v) for b in blocks for v in views] if views else list(blocks)
    with torch.no_grad():
        return {k: temporal_attention_map(teacher_taps[k], p) for k in keys}


def mvat_map_loss(t_maps: dict, student_views: dict, pairs, q: float = 1, p: float = 2,
                  reduction: str = "norm", views=VIEWS):  # fmt: skip
    """`mvat_loss` with the teacher side given as `teacher_maps(teacher_views, pairs, p,
    views)`: eq. 3 summed over `views` (MV-AT: all three) of every block pair."""
    if not pairs:
        raise ValueError("mvat_loss: no teacher/student block pairs")
    total = 0.0
    n = len(views)
    for side, sd, td in pairs:
        # eq. 3, the views of one block pair as one batch: the batch mean over V views of B
        # examples, times V, is the sum over views of each view's batch mean
        t = torch.cat([t_maps[(side, td, v)] for v in views])  # (V B, T_t)
        s = torch.cat([temporal_attention_map(student_views[(side, sd, v)], p) for v in views])
        total = total + n * at_loss(t, s, q, reduction=reduction)
    return total


def mvat_loss(
    teacher_views: dict, student_views: dict, pairs, q: float = 1, p: float = 2
) -> torch.Tensor:
    """sum over pairs of L_MV-AT. Views keyed (side, depth, view) as in `Taps.views`."""
    return mvat_map_loss(teacher_maps(teacher_views, pairs, p), student_views, pairs, q, p)


def single_view_map_loss(t_maps: dict, student_layers: dict, pairs, q: float = 1, p: float = 2,
                         reduction: str = "norm", views=None):  # fmt: skip
    """`single_view_loss` with the teacher side given as `teacher_maps(layers, pairs, p, None)`
    (one map per layer: `views` is None)."""
    if not pairs:
        raise ValueError("single_view_loss: no teacher/student layer pairs")
    total = 0.0
    for side, sd, td in pairs:
        s_map = temporal_attention_map(student_layers[(side, sd)], p)
        total = total + at_loss(t_maps[(side, td)], s_map, q, reduction=reduction)
    return total


def single_view_loss(teacher_layers: dict, student_layers: dict, pairs, q: float = 1, p: float = 2):
    """Single-view AT: one map per encoder/decoder layer output, keyed (side, depth)."""
    t_maps = teacher_maps(teacher_layers, pairs, p, views=None)
    return single_view_map_loss(t_maps, student_layers, pairs, q, p)


def attention_maps(teacher, student, noisy: torch.Tensor, pairs=None, mode: str = "dual_depth"):
    """Normalised temporal attention maps of a teacher and a student on one input, per pair
    and view: {(side, s_depth, t_depth, view): (teacher_map, student_map)} as numpy arrays,
    the teacher's interpolated to the student's length as in the AT loss."""
    with torch.no_grad():
        _, tt = teacher.eval()(noisy, return_views=True)
        _, st = student.eval()(noisy, return_views=True)
    pairs = pairs or mvat_pairs(st.views, tt.views, student.cfg.depth, mode)
    out = {}
    for side, sd, td in pairs:
        for view in VIEWS:
            s = temporal_attention_map(st.views[(side, sd, view)])
            t = _normalize(_resize(temporal_attention_map(tt.views[(side, td, view)]), s.shape[-1]))
            out[(side, sd, td, view)] = (t[0].numpy(), s[0].numpy())
    return out


def at_distances(maps: dict, q: float = 1) -> dict:
    """The AT distance (eq. 2, `at_loss`) of each (pair, view) of `attention_maps`' output:
    {key: float}, how far the student's map is from the teacher's."""
    return {
        key: float(at_loss(torch.tensor(t)[None], torch.tensor(s)[None], q=q))
        for key, (t, s) in maps.items()
    }
