"""Models and the preset registry."""

from .manner import VIEWS, Manner, MannerConfig, Taps, count_parameters, valid_length
from .protocol import Distillable, EnhancementModel, IdentityInit
from .registry import (
    build,
    families,
    fingerprint,
    load_checkpoint,
    load_model,
    model_from_checkpoint,
    model_from_state,
    model_state,
    preset_config,
    preset_names,
    register,
    save_model,
)
from .waveunet import WaveUNet, WaveUNetConfig

__all__ = [
    "VIEWS",
    "Distillable",
    "IdentityInit",
    "EnhancementModel",
    "families",
    "fingerprint",
    "Manner",
    "MannerConfig",
    "Taps",
    "build",
    "count_parameters",
    "load_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "model_from_state",
    "model_state",
    "preset_config",
    "preset_names",
    "register",
    "save_model",
    "valid_length",
    "WaveUNet",
    "WaveUNetConfig",
]
