"""Distillation: attention transfer (single- and multi-view), layer pairing, the objective."""

from .attention import (
    PAIRINGS,
    at_distances,
    at_loss,
    attention_maps,
    block_pairs,
    mvat_block_loss,
    mvat_loss,
    mvat_map_loss,
    mvat_pairs,
    pair_keys,
    single_view_loss,
    single_view_map_loss,
    teacher_maps,
    temporal_attention_map,
)
from .objective import (
    AT_KINDS,
    TABLE3_ROWS,
    ATKind,
    DistillationObjective,
    ObjectiveConfig,
    register_at,
)

__all__ = [
    "AT_KINDS",
    "PAIRINGS",
    "ATKind",
    "register_at",
    "TABLE3_ROWS",
    "DistillationObjective",
    "ObjectiveConfig",
    "at_distances",
    "at_loss",
    "attention_maps",
    "block_pairs",
    "mvat_block_loss",
    "mvat_loss",
    "mvat_map_loss",
    "mvat_pairs",
    "pair_keys",
    "single_view_loss",
    "single_view_map_loss",
    "teacher_maps",
    "temporal_attention_map",
]
