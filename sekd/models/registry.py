"""Named presets: a name turns into a model; checkpoints store the config and rebuild from it."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..outputs import atomic_path
from .manner import Manner, MannerConfig
from .waveunet import WaveUNet, WaveUNetConfig

_PRESETS: dict[str, tuple[str, Callable[[], object]]] = {}
_FAMILIES: dict[str, tuple[type, type]] = {
    "manner": (Manner, MannerConfig),
    "waveunet": (WaveUNet, WaveUNetConfig),
}


def register_family(name: str, model_cls: type, config_cls: type) -> None:
    _FAMILIES[name] = (model_cls, config_cls)


def register(name: str, family: str, make_config: Callable[[], object]) -> None:
    _PRESETS[name] = (family, make_config)


def preset_names() -> list[str]:
    return sorted(_PRESETS)


def families() -> dict[str, list[str]]:
    """{family: its preset names} of every registered family."""
    out: dict[str, list[str]] = {name: [] for name in _FAMILIES}
    for preset, (family, _) in _PRESETS.items():
        out[family].append(preset)
    return {k: sorted(v) for k, v in out.items()}


def preset_config(name: str):
    """(family, config) of a preset; an unknown name is an error listing the known ones."""
    if name not in _PRESETS:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
    family, make = _PRESETS[name]
    return family, make()


def build(name: str) -> nn.Module:
    family, cfg = preset_config(name)
    return _FAMILIES[family][0](cfg)


def family_of(model: nn.Module) -> str:
    for name, (cls, _) in _FAMILIES.items():
        if isinstance(model, cls):
            return name
    raise TypeError(f"{type(model).__name__} is not a registered model family")


# The precisions a model's weights can be stored at (ExportConfig.dtype). A model loads into
# float32 whatever it was stored at, so a model stored at float16 computes with its weights
# rounded to float16 wherever it is read (scored, distilled from, fingerprinted).
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def model_state(model: nn.Module, preset: str | None = None, dtype: str = "float32") -> dict:
    """What a checkpoint holds to rebuild a model: family, config dict, weights (tensors only),
    the floating-point ones stored at `dtype` (STORAGE_DTYPES)."""
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"storage dtype must be one of {', '.join(STORAGE_DTYPES)}; got {dtype!r}")
    to = STORAGE_DTYPES[dtype]
    weights = {k: v.to(to) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    return {
        "family": family_of(model),
        "config": model.cfg.to_dict(),
        "preset": preset or "",
        "state_dict": weights,
    }


def _names(keys, most: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:most]) + (f", ... ({len(keys)} in all)" if len(keys) > most else "")


def check_state_dict(model: nn.Module, state_dict: dict, where: str = "checkpoint") -> None:
    """Raise a ValueError that summarises (counts and a few names) the keys a state dict lacks,
    has in excess, or has with other shapes than `model`; nothing when it fits exactly."""
    want = model.state_dict()
    missing = set(want) - set(state_dict)
    extra = set(state_dict) - set(want)
    shapes = {
        k for k in set(want) & set(state_dict)
        if tuple(getattr(state_dict[k], "shape", ())) != tuple(want[k].shape)
    }  # fmt: skip
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) ({_names(missing)})")
        if extra:
            parts.append(f"{len(extra)} unexpected key(s) ({_names(extra)})")
        if shapes:
            k = sorted(shapes)[0]
            parts.append(
                f"{len(shapes)} shape mismatch(es) (e.g. {k}: {tuple(state_dict[k].shape)} "
                f"vs {tuple(want[k].shape)})"
            )
        raise ValueError(f"{where} does not fit its model: {'; '.join(parts)}")


def model_from_state(state: dict, where: str = "checkpoint") -> nn.Module:
    family = state["family"]
    if family not in _FAMILIES:
        raise KeyError(f"{where} names unknown model family {family!r}")
    cls, cfg_cls = _FAMILIES[family]
    config = state["config"]
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"{where}: its {family} config has field(s) {unknown} that this version of sekd does "
            f"not know (known: {sorted(known)}); it was written by another version"
        )
    model = cls(cfg_cls.from_dict(config))
    check_state_dict(model, state["state_dict"], where)
    model.load_state_dict(state["state_dict"])
    return model


def save_model(
    model: nn.Module, path, preset: str | None = None, dtype: str = "float32", **extra
) -> Path:
    """Atomic write (temp file + rename) of a model-only checkpoint, its weights at `dtype`."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({**model_state(model, preset, dtype), **extra}, tmp)
    return path


def load_checkpoint(path) -> dict:
    """Load with `weights_only=True`: plain containers and tensors only, no arbitrary pickle."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # never pass on torch's advice to load unsafely
        raise ValueError(
            f"{path} is not a sekd checkpoint: it cannot be read as a safe PyTorch tensor file "
            f"({type(exc).__name__})"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a sekd checkpoint (it holds a {type(state).__name__})")
    return state


def load_model(path) -> nn.Module:
    """Rebuild the model stored in a checkpoint (model-only or training), in eval mode."""
    return model_from_checkpoint(load_checkpoint(path), path)


def model_from_checkpoint(state: dict, path="") -> nn.Module:
    """The model of a checkpoint already read (`load_checkpoint`), in eval mode; `path` names
    it in errors."""
    if "model" in state:  # a training checkpoint nests the model state
        state = state["model"]
    for key in ("family", "config", "state_dict"):
        if key not in state:
            raise ValueError(
                f"{path} is not a sekd checkpoint: it lacks {key!r} (a bare state dict or "
                "another program's checkpoint; official MANNER weights: `sekd import-manner`)"
            )
    return model_from_state(state, str(path)).eval()


def fingerprint(model) -> str:
    """A short sha256 of what a model computes: its class and every tensor of its state dict
    (name, dtype, shape, bytes); for the untrained references, their class and settings."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    if isinstance(model, torch.nn.Module):
        for k, v in sorted(model.state_dict().items()):
            v = v.detach().cpu().contiguous()
            h.update(f"{k}|{v.dtype}|{tuple(v.shape)}".encode())
            h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    else:
        h.update(repr(sorted(vars(model).items())).encode())
    return h.hexdigest()[:16]


def _manner(depth: int, hidden: int, ma: str) -> Callable[[], MannerConfig]:
    layers = tuple(range(depth)) if ma == "all" else (depth - 1,)
    return lambda: MannerConfig(depth=depth, hidden=hidden, ma_layers=layers)


# The paper's models (MV-AT Table 1), exact to the parameter.
register("manner_b", "manner", _manner(4, 60, "all"))
register("manner_s_38gf", "manner", _manner(4, 60, "deepest"))
register("manner_l", "manner", _manner(4, 120, "all"))
register("student_1p5gf", "manner", _manner(3, 12, "deepest"))
register("student_5p3gf", "manner", _manner(3, 24, "deepest"))
register("student_8p1gf", "manner", _manner(3, 30, "deepest"))
# CPU-scale study: a MANNER-B-shaped teacher (depth 4, MA everywhere) narrow enough to train on
# 2 cores, and depth-3 students shaped like the paper's (MA at the deepest layer only).
register("cpu_teacher", "manner", _manner(4, 20, "all"))
register("quick_teacher", "manner", _manner(4, 12, "all"))
register("cpu_student", "manner", _manner(3, 6, "deepest"))
register("cpu_student_l", "manner", _manner(3, 12, "deepest"))
# Tests and the smoke profile: seconds, not minutes.
register("tiny_teacher", "manner", _manner(4, 8, "all"))
register("tiny_student", "manner", _manner(3, 4, "deepest"))

# The SNR teachers-student U-Net: the paper's (48 + 24 i channels, 7 decimations), the public
# code's (24 + 24 i, 12 decimations), and width-scaled CPU presets of the paper's.
register("waveunet_snr", "waveunet", lambda: WaveUNetConfig())
register(
    "waveunet_public",
    "waveunet",
    lambda: WaveUNetConfig(base=24, step=24, decimate=12, align_corners=True),
)
register("waveunet_cpu", "waveunet", lambda: WaveUNetConfig(width=0.25))
register("waveunet_cpu_wide", "waveunet", lambda: WaveUNetConfig(width=0.5))
register("waveunet_tiny", "waveunet", lambda: WaveUNetConfig(layers=8, decimate=5, width=0.125))
