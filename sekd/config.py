"""Run configuration: a TOML file parsed into frozen dataclasses; unknown keys are errors.

A config has the sections [data], [model], [teacher], [objective], [optim], [train] and a
top-level `seed`. A file may name a `base` file whose values it overrides, so the profiles
share one description and change only what differs; the files every profile shares live in
configs/shared/ (`locate`).

One rule for relative paths (`base`, `teacher.checkpoints`, data folders): relative to the
folder of the file that declares them; `{profile}` in a path is the profile's name; a value
given on the command line (`--set`) is relative to the working directory.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .checks import at_least, choice
from .data.audio import SAMPLE_RATE
from .distill.objective import ObjectiveConfig
from .models.registry import STORAGE_DTYPES


@dataclass(frozen=True)
class DataConfig:
    source: str = "corpus"  # corpus | paired | voicebank
    speech_datasets: tuple[str, ...] = ("grid", "ljspeech", "emodb")
    noise_datasets: tuple[str, ...] = ("noisex-92",)
    noise_types: tuple[str, ...] = ()  # empty: every noise of the datasets
    valid_noise_types: tuple[str, ...] = ()  # empty: the training noise types
    snrs: tuple[float, ...] = (-5.0, 0.0, 5.0, 10.0, 15.0)
    snr_range: tuple[float, ...] = ()  # (low, high) instead of the list
    segment: int = SAMPLE_RATE  # 1 s
    hop: int = SAMPLE_RATE  # paired sources: window hop
    examples_per_epoch: int = 512
    valid_utterances: int = 16
    valid_seconds: float = 4.0
    # bundled real pairs added to the validation set (corpus source): pair datasets, train split
    valid_pairs: tuple[str, ...] = ()
    noisy_dir: str = ""  # paired
    clean_dir: str = ""
    valid_noisy_dir: str = ""
    valid_clean_dir: str = ""
    voicebank_root: str = ""  # voicebank: a prepared 16 kHz tree

    def __post_init__(self):
        choice("data.source", self.source, ("corpus", "paired", "voicebank"))
        at_least(self, 2, "segment")  # the model normalises by the segment's std
        at_least(self, 1, "hop", "examples_per_epoch")
        at_least(self, 0, "valid_utterances")
        if not self.valid_seconds > 0:
            raise ValueError(f"data.valid_seconds must be > 0; got {self.valid_seconds!r}")
        if self.snr_range and len(self.snr_range) != 2:
            raise ValueError(f"data.snr_range must be [low, high], got {list(self.snr_range)}")


@dataclass(frozen=True)
class ModelConfig:
    preset: str = "cpu_student"
    # default: the architecture's own initialisation. identity: then fit the output layer by
    # least squares on the first training batch so that the untrained model passes its input
    # through (positive polarity, input level); see Manner.init_identity. checkpoint: start
    # from the weights in `checkpoint` (a model of the same preset and shape: fine-tuning, or a
    # curriculum from a model trained on easier data).
    init: str = "default"
    checkpoint: str = ""

    def __post_init__(self):
        from .models import preset_names

        choice("model.preset", self.preset, preset_names())
        choice("model.init", self.init, ("default", "identity", "checkpoint"))
        if (self.init == "checkpoint") != bool(self.checkpoint):
            raise ValueError(
                "model.init = checkpoint needs model.checkpoint (the weights to start from), "
                f"and model.checkpoint needs model.init = checkpoint; got init = {self.init!r}, "
                f"checkpoint = {self.checkpoint!r}"
            )


@dataclass(frozen=True)
class TeacherConfig:
    routing: str = "none"  # none | single | snr
    checkpoints: tuple[str, ...] = ()  # one, or one per band (routing = snr)
    bands: tuple[tuple[float, ...], ...] = ()  # SNRs of each teacher's band (routing = snr)
    between: str = "nearest"  # SNRs between bands go to the nearest band

    def __post_init__(self):
        choice("teacher.routing", self.routing, ("none", "single", "snr"))
        choice("teacher.between", self.between, ("nearest", "error"))
        if self.routing == "single" and len(self.checkpoints) != 1:
            raise ValueError("teacher.routing = single needs exactly one checkpoint")
        if self.routing == "snr" and (not self.bands or len(self.bands) != len(self.checkpoints)):
            raise ValueError("teacher.routing = snr needs one checkpoint per band in teacher.bands")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "onecycle"  # onecycle | plateau | constant
    pct_start: float = 0.3
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    grad_clip: float = 0.0

    def __post_init__(self):
        choice("optim.schedule", self.schedule, ("onecycle", "plateau", "constant"))
        if not self.lr > 0:
            raise ValueError(f"optim.lr must be > 0; got {self.lr!r}")
        if not 0 < self.pct_start < 1:
            raise ValueError(f"optim.pct_start must be between 0 and 1; got {self.pct_start!r}")
        at_least(self, 0, "plateau_patience", "grad_clip")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 4
    epochs: int = 1
    max_steps: int = 0  # 0: epochs decide
    log_every: int = 10
    valid_every: int = 0  # steps; 0: once per epoch
    valid_metric: str = "pesq"  # pesq | loss
    num_workers: int = 0
    accumulate: int = 1  # micro-batches per step (each batch_size / accumulate examples)
    checkpoint_every: int = 0  # steps; 0: at each validation
    deterministic: bool = True
    bf16: bool = False

    def __post_init__(self):
        choice("train.valid_metric", self.valid_metric, ("pesq", "loss"))
        at_least(self, 1, "batch_size", "epochs", "log_every", "accumulate")
        at_least(self, 0, "max_steps", "valid_every", "num_workers", "checkpoint_every")
        if self.batch_size % self.accumulate:
            raise ValueError(
                f"train.accumulate ({self.accumulate}) must divide "
                f"train.batch_size ({self.batch_size})"
            )


@dataclass(frozen=True)
class EvalConfig:
    """The fixed pre-mixed test set a study scores its models on (names the test noises)."""

    speech_datasets: tuple[str, ...] = ("grid", "ljspeech", "emodb")
    utterances: int = 12
    max_seconds: float = 4.0
    noise_datasets: tuple[str, ...] = ("noisex-92",)
    seen_noises: tuple[str, ...] = ("babble", "factory1", "speech_shaped_noise", "white")
    unseen_noises: tuple[str, ...] = ()
    snrs: tuple[float, ...] = (-5.0, 0.0, 5.0, 10.0)
    seed: int = 1234
    voicebank_files: int = 0  # how many bundled VoiceBank-DEMAND test pairs to score; 0: all 31


@dataclass(frozen=True)
class ExportConfig:
    """How a run's best model is stored: in best.pt by training and in the committed model.pt
    (sekd.study.runs.commit_run). float16 halves the file; the model is then scored and
    distilled from with its weights as stored, on every machine. Not part of the recipe: the
    training is the same at either precision."""

    dtype: str = "float32"  # one of models.registry.STORAGE_DTYPES: float32 | float16

    def __post_init__(self):
        choice("export.dtype", self.dtype, tuple(STORAGE_DTYPES))


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    source: str = ""  # the file it was read from (set by load_config)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "teacher": TeacherConfig,
    "objective": ObjectiveConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "export": ExportConfig,
}


def _tupled(value):
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


_SINGULAR = {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}
_PLURAL = {float: "numbers", int: "whole numbers", bool: "true/false values", str: "strings"}


def _plural(tp) -> str:
    if typing.get_origin(tp) is tuple:
        return f"lists of {_plural(typing.get_args(tp)[0])}"
    return _PLURAL[tp]


def _type_name(tp) -> str:
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        count = "" if args[-1] is Ellipsis else f"{len(args)} "
        return f"a list of {count}{_plural(args[0])}"
    return _SINGULAR[tp]


def _fits(value, tp) -> bool:
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            return False
        if args[-1] is not Ellipsis and len(value) != len(args):
            return False
        return all(_fits(v, args[0]) for v in value)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _build(cls, values: dict, where: str):
    """A section's dataclass from TOML values: unknown keys and values of the wrong type are
    errors naming the key, the value and the expected type."""
    known = {f.name for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"{where}: unknown key {key!r}; known keys: {sorted(known)}")
        if not _fits(value, hints[key]):
            raise ValueError(f"{where}: {key} = {value!r} is not {_type_name(hints[key])}")
    return cls(**{k: _tupled(v) for k, v in values.items()})


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# Config values that are file paths: a relative one is relative to the folder of the file that
# declares it (a --set override: to the working directory), and "{profile}" in it is the name of
# the profile the config is read for.
PATH_KEYS = {
    "data": ("noisy_dir", "clean_dir", "valid_noisy_dir", "valid_clean_dir", "voicebank_root"),
    "teacher": ("checkpoints",),
    "model": ("checkpoint",),
}
SHARED = "shared"  # configs/shared/: the files every profile shares


def locate(path) -> tuple[Path, Path]:
    """(the file to read, the profile folder) of a config path.

    `configs/<profile>/<name>.toml` is that file when it exists, else `configs/shared/<name>.toml`
    read for that profile: the profiles keep only the files in which they differ. A profile
    file of a shared file's name overrides it by naming it as its base (`../shared/<name>.toml`).
    """
    path = Path(path)
    if path.is_file():
        return path, path.parent
    shared = path.parent.parent / SHARED / path.name
    if shared.is_file() and path.parent.is_dir():
        return shared, path.parent
    raise FileNotFoundError(
        f"no config file {path}" + (f" (nor {shared})" if path.parent.is_dir() else "")
    )


def _paths_relative_to(raw: dict, folder: Path, profile: str) -> dict:
    def fix(value: str) -> str:
        value = value.replace("{profile}", profile)
        p = Path(value)
        return value if p.is_absolute() or not value else str((folder / p).resolve())

    for section, keys in PATH_KEYS.items():
        table = raw.get(section)
        if not isinstance(table, dict):
            continue
        for key in keys:
            v = table.get(key)
            if isinstance(v, str):
                table[key] = fix(v)
            elif isinstance(v, list):
                table[key] = [fix(x) if isinstance(x, str) else x for x in v]
    return raw


def _read(path: Path, profile_dir: Path, chain: tuple = ()) -> dict:
    """A config file's values merged over its `base` chain; `chain` holds the files that
    named this one as their base, so a file that is its own base, directly or not, is an
    error naming the cycle."""
    if path.resolve() in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path.resolve()))
        raise ValueError(f"config base cycle: {cycle}")
    chain = (*chain, path.resolve())
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no config file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML ({exc})") from None
    raw = _paths_relative_to(raw, path.parent, profile_dir.name)
    base = raw.pop("base", None)
    if base:
        # next to the declaring file, else in the profile's folder (a shared file's base)
        near = path.parent / base
        if not near.is_file() and profile_dir.name == SHARED:
            raise FileNotFoundError(
                f"{path} is shared by the profiles and names base {base!r}: read it for a "
                f"profile, e.g. {path.parent.parent / 'cpu' / path.name}"
            )
        if near.is_file():
            target, base_profile = near, profile_dir
        else:
            target, base_profile = locate(profile_dir / base)
        raw = _merge(_read(target.resolve(), base_profile, chain), raw)
    return raw


def config_from_dict(raw: dict, where: str = "config", **overrides) -> RunConfig:
    raw = _merge(raw, overrides)
    top = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: [{key}] must be a table")
            top[key] = _build(_SECTIONS[key], value, f"{where} [{key}]")
        elif key in ("name", "seed", "source"):
            tp = int if key == "seed" else str
            if not _fits(value, tp):
                raise ValueError(f"{where}: {key} = {value!r} is not {_type_name(tp)}")
            top[key] = value
        else:
            raise ValueError(
                f"{where}: unknown key {key!r}; known: name, seed, base, {', '.join(_SECTIONS)}"
            )
    return RunConfig(**top)


def load_config(path, **overrides) -> RunConfig:
    """Read a TOML run config (following `base`), apply `overrides` (nested dicts).

    `path` may name a profile's file that lives in configs/shared/ (`locate`). Relative paths
    in a file are relative to its folder; relative paths in `overrides`, to the working
    directory.
    """
    path = Path(path)
    target, profile_dir = locate(path)
    raw = _read(target, profile_dir)
    raw.setdefault("name", path.stem)
    raw["source"] = str(path)
    overrides = _paths_relative_to(copy.deepcopy(overrides), Path.cwd(), profile_dir.name)
    return config_from_dict(raw, str(path), **overrides)
