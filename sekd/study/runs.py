"""Profiles and runs: where a profile's configs, runs and results live; runs that are trained
once and reused (or restored from the committed checkpoints); their learning curves."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import PATH_KEYS, RunConfig, config_from_dict, load_config
from ..data.corpus import REPO_ROOT
from ..models import fingerprint, load_model, save_model
from ..outputs import atomic_path, write_text
from ..train import load_trained, read_metrics, train
from .spec import PROFILES, STUDY_SEEDS, label

COMMITTED = REPO_ROOT / "checkpoints"
_COMMITTED_FILES = ("metrics.jsonl", "summary.json", "config.json")
# An unfinished run's resumable state, committed under checkpoints/<profile>/<run>/in_progress/
# so that a long run can go on on another machine (`save_progress`, `restore_progress`).
IN_PROGRESS = "in_progress"
_PROGRESS_FILES = ("last.pt", "best.pt", "metrics.jsonl", "config.json")


@contextmanager
def locked(path: Path):
    """An exclusive file lock: notebooks executed in parallel share runs and results safely."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known profiles: {', '.join(PROFILES)}")
    return profile


@dataclass(frozen=True)
class Paths:
    profile: str
    configs: Path
    runs: Path
    results: Path
    figures: Path
    cache: Path


def study_seeds(profile: str, seeds=None) -> tuple:
    """`seeds` as a tuple, or the profile's own (STUDY_SEEDS) when it is None."""
    check_profile(profile)
    return tuple(STUDY_SEEDS[profile] if seeds is None else seeds)


def paths(profile: str, root: Path = REPO_ROOT) -> Paths:
    check_profile(profile)
    p = Paths(
        profile,
        root / "configs" / profile,
        root / "runs" / profile,
        root / "results" / profile,
        root / "results" / profile / "figures",
        root / "cache",
    )
    for d in (p.results, p.figures, p.cache):
        d.mkdir(parents=True, exist_ok=True)
    return p


def run_config(profile: str, name: str, seed: int | None = None) -> RunConfig:
    """The config `name` of a profile: `configs/<profile>/<name>.toml`, or the shared file of
    that name read for the profile (`sekd.config.locate`); teachers that are committed but not
    trained on this machine are read from checkpoints/ (`committed_teachers`)."""
    p = paths(profile)
    f = p.configs / f"{name}.toml"
    try:
        cfg = load_config(f, **({} if seed is None else {"seed": seed}))
    except FileNotFoundError:
        names = {x.stem for x in p.configs.glob("*.toml")}
        names |= {x.stem for x in (p.configs.parent / "shared").glob("*.toml")}
        raise FileNotFoundError(
            f"no config {name!r} for profile {profile}; known: {sorted(names)}"
        ) from None
    return committed_teachers(profile, cfg)


def committed_teachers(profile: str, cfg: RunConfig) -> RunConfig:
    """`cfg` with each teacher checkpoint that names a run of this profile which is not on this
    machine (`.../runs/<profile>/<run>/best.pt`, missing) replaced by that run's committed
    model (`checkpoints/<profile>/<run>/model.pt`, the same weights): on a fresh checkout the
    students train, and resume, from the committed teachers. Other paths are left as they are."""
    out = []
    for c in cfg.teacher.checkpoints:
        p = Path(c)
        if not p.is_file() and p.name == "best.pt" and p.parts[-4:-2] == ("runs", profile):
            committed = committed_dir(profile, p.parent.name) / "model.pt"
            if committed.is_file():
                p = committed
        out.append(str(p))
    if tuple(out) == tuple(cfg.teacher.checkpoints):
        return cfg
    return replace(cfg, teacher=replace(cfg.teacher, checkpoints=tuple(out)))


def run_dir(profile: str, name: str, seed: int | None = None) -> Path:
    return paths(profile).runs / label(name, seed)


def committed_dir(profile: str, name: str, seed: int | None = None) -> Path:
    return COMMITTED / profile / label(name, seed)


def commit_run(profile: str, name: str, seed: int | None = None) -> Path:
    """Copy a finished run's best model (weights only, at the run's export.dtype) and its logs
    to checkpoints/, for git."""
    src, dst = run_dir(profile, name, seed), committed_dir(profile, name, seed)
    dst.mkdir(parents=True, exist_ok=True)
    cfg = run_config(profile, name, seed)
    save_model(
        load_trained(src / "best.pt"),
        dst / "model.pt",
        preset=cfg.model.preset,
        dtype=cfg.export.dtype,
    )
    _copy_files(src, dst, _COMMITTED_FILES)
    if (dst / "config.json").is_file():  # read the same in every checkout
        portable = _portable(json.loads((dst / "config.json").read_text()))
        write_text(dst / "config.json", json.dumps(portable, indent=1))
    summary = json.loads((dst / "summary.json").read_text())
    if "teachers" not in summary and (src / "config.json").is_file():
        # a summary written before they were recorded: the teachers its config names
        trained_with = config_from_dict(json.loads((src / "config.json").read_text()))
        if trained_with.teacher.checkpoints:
            summary["teachers"] = _teacher_fingerprints(trained_with.teacher.checkpoints)
            write_text(dst / "summary.json", json.dumps(summary, indent=1))
    shutil.rmtree(dst / IN_PROGRESS, ignore_errors=True)  # finished: its resumable state goes
    return dst


def _teacher_fingerprints(checkpoints) -> list[str] | None:
    """`fingerprint` of each teacher checkpoint; None when one of them is missing."""
    if not all(Path(c).is_file() for c in checkpoints):
        return None
    return [_file_fingerprint(str(c), Path(c).stat().st_mtime_ns) for c in checkpoints]


@functools.lru_cache(maxsize=64)
def _file_fingerprint(path: str, mtime_ns: int) -> str:  # mtime: a file written since is read
    return fingerprint(load_model(path))


def _portable(d: dict) -> dict:
    """A config dict with its file paths inside this checkout (PATH_KEYS) made relative to the
    repository root: a committed config equals the same recipe read in another checkout."""

    def rel(value):
        if isinstance(value, list):
            return [rel(v) for v in value]
        if isinstance(value, str) and Path(value).is_absolute():
            try:
                return str(Path(value).relative_to(REPO_ROOT))
            except ValueError:
                return value
        return value

    out = dict(d)
    for section, keys in PATH_KEYS.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: rel(v) if k in keys else v for k, v in out[section].items()}
    return out


def _recipe(d: dict) -> dict:
    """A run's config dict without where its teachers' files live (runs/ or checkpoints/),
    without how its model is stored ([export]) and without the path of the file it was read
    from (`source`, another in every checkout): what decides its training."""
    teacher = {k: v for k, v in d.get("teacher", {}).items() if k != "checkpoints"}
    return {**{k: v for k, v in d.items() if k not in ("export", "source")}, "teacher": teacher}


def _copy_files(src: Path, dst: Path, names) -> None:
    """Copy the files `names` that `src` holds into `dst` (made if needed)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in names:
        if (src / f).is_file():
            shutil.copy(src / f, dst / f)


def committed_current(profile: str, name: str, seed: int | None = None) -> bool:
    """True when the committed run was trained with the config the profile has now (its
    config.json equals `run_config`, teacher file locations aside): a queue on a fresh
    checkout skips it instead of training it again. A committed run of an older recipe (or
    one committed without its config), or a student whose summary does not record the
    `fingerprint` of the teachers the config now names, is not current."""
    folder = committed_dir(profile, name, seed)
    if not (_finished(folder) and (folder / "config.json").is_file()):
        return False
    cfg = run_config(profile, name, seed)
    want = _portable(json.loads(json.dumps(cfg.to_dict())))  # as commit_run writes it
    try:  # read back through the config's fields: a key added since, at its default, is equal
        have = _portable(
            config_from_dict(json.loads((folder / "config.json").read_text())).to_dict()
        )
    except ValueError:  # a key the config no longer has: an older recipe
        return False
    if _recipe(json.loads(json.dumps(have))) != _recipe(want):
        return False
    teachers = cfg.teacher.checkpoints
    if not teachers:
        return True
    # the same recipe distilled from other weights (a teacher retrained since) is not current
    recorded = json.loads((folder / "summary.json").read_text()).get("teachers")
    return recorded is not None and recorded == _teacher_fingerprints(teachers)


def save_progress(profile: str, name: str, seed: int | None = None) -> Path:
    """Copy the resumable state of an unfinished run under runs/ (last.pt, best.pt,
    metrics.jsonl, config.json) to checkpoints/<profile>/<run>/in_progress/, for git: a long
    run interrupted on one machine resumes on another (`restore_progress`). The committed
    model of the run, if any, is left as it is."""
    src = run_dir(profile, name, seed)
    if (src / "summary.json").is_file():
        raise ValueError(f"{src} is finished: commit it with commit_run, not save_progress")
    if not (src / "last.pt").is_file():
        raise FileNotFoundError(f"{src} has no last.pt: nothing to save")
    dst = committed_dir(profile, name, seed) / IN_PROGRESS
    _copy_files(src, dst, _PROGRESS_FILES)
    return dst


def restore_progress(profile: str, name: str, seed: int | None = None) -> bool:
    """Copy a run's committed resumable state (`save_progress`) into runs/ when the run there
    has neither finished nor started (no summary.json, no last.pt); a run folder with state of
    its own is never written over. True when something was restored."""
    src = committed_dir(profile, name, seed) / IN_PROGRESS
    out = run_dir(profile, name, seed)
    if not (src / "last.pt").is_file() or any(
        (out / f).exists() for f in ("summary.json", "last.pt")
    ):
        return False
    _copy_files(src, out, _PROGRESS_FILES)
    return True


def train_run(profile: str, name: str, seed: int | None = None, retrain: bool = False,
              log=None) -> dict:  # fmt: skip
    """Train the run `name` into runs/ and return its summary: resumed from its last.pt, or
    from committed state in progress (`restore_progress`); else from the start (a folder
    without last.pt, a run stopped before its first checkpoint, holds nothing to resume and is
    replaced). `retrain`: from the start in any case. `log(line)` hears what happens."""
    out = run_dir(profile, name, seed)
    log = log or (lambda line: None)
    cfg = run_config(profile, name, seed)
    unfinished = unfinished_teachers(profile, cfg)
    if unfinished:  # its best.pt so far is not the teacher the study reports
        raise UnfinishedTeacherError(profile, out.name, unfinished[0])
    if not retrain and restore_progress(profile, name, seed):
        log(f"{out}: restored the committed state in progress")
    resume = not retrain and (out / "last.pt").is_file()
    log(f"{time.strftime('%H:%M:%S')} {out}: {'resume' if resume else 'start'}")
    return train(cfg, out, resume=resume, overwrite=not resume, progress=False)


def unfinished_teachers(profile: str, cfg: RunConfig) -> list[Path]:
    """The folders of this profile's teacher runs named by `cfg` that are on this machine but
    have not finished (best.pt, no summary.json yet)."""
    files = [Path(c) for c in cfg.teacher.checkpoints]
    return [
        f.parent
        for f in files
        if f.parts[-4:-2] == ("runs", profile) and f.is_file() and not _finished(f.parent)
    ]


class UnfinishedTeacherError(RuntimeError):
    """`train_run` of a student whose teacher run on this machine has not finished."""

    def __init__(self, profile: str, run: str, teacher: Path):
        self.teacher = teacher
        super().__init__(
            f"{run}: teacher run {teacher} has not finished (no summary.json): finish it "
            f"(python -m sekd.study.queue --profile {profile} {teacher.name}) before training "
            "a student from it"
        )


# The committed finished models (checkpoints/<profile>/<run>/model.pt, every profile) stay under
# this many bytes in all: the repository ships them. The resumable states of unfinished runs
# (in_progress/) are transient and not counted. A profile's configs can store models at float16
# ([export] dtype) to keep within it: the cpu profile's SNR study and its 5.3GF students do. 90 MB
# makes room for the 5.3GF students (three arms x three seeds) beside the 1.5GF study.
CHECKPOINT_BUDGET_BYTES = 90_000_000


def committed_model_bytes() -> dict[str, int]:
    """{"<profile>/<run>": size in bytes} of every committed finished model."""
    return {
        f"{p.parent.parent.name}/{p.parent.name}": p.stat().st_size
        for p in sorted(COMMITTED.glob("*/*/model.pt"))
    }


def budget_line() -> str:
    """One line: the committed models' total against CHECKPOINT_BUDGET_BYTES, saying when over."""
    total = sum(committed_model_bytes().values())
    verdict = "within" if total < CHECKPOINT_BUDGET_BYTES else "OVER"
    return (
        f"committed models: {total:,} bytes, {verdict} the budget of "
        f"{CHECKPOINT_BUDGET_BYTES:,} (sekd.study.runs.CHECKPOINT_BUDGET_BYTES)"
    )


def committed_runs(profile: str) -> list[str]:
    """Names (with _seed<k>) of the runs committed under checkpoints/<profile>/."""
    root = COMMITTED / profile
    return sorted(p.parent.name for p in root.glob("*/model.pt")) if root.is_dir() else []


_TRAINING = {"allowed": True}


def use_committed(profile: str) -> str:
    """Switch this process to the committed checkpoints of `profile` (e.g. "cpu"): from then on
    runs are read from checkpoints/<profile>/ (never from or into runs/) and nothing trains.
    Returns the profile, for a notebook's `profile = use_committed(weights)`."""
    check_profile(profile)
    _TRAINING["allowed"] = False
    return profile


def open_profile(profile: str, committed: str | None = None) -> str:
    """A notebook's first step: check its profile and, with `committed` (a profile), read that
    profile's committed models from then on (`use_committed`: nothing trains). Returns the
    profile the notebook works in."""
    check_profile(profile)
    return use_committed(committed) if committed else profile


class StaleRunWarning(UserWarning):
    """A committed run is read that the profile's current config would not reproduce."""


def _finished(folder: Path) -> bool:
    return (folder / "summary.json").is_file() and (
        (folder / "best.pt").is_file() or (folder / "model.pt").is_file()
    )


def find_run(profile: str, name: str, seed: int | None = None) -> Path | None:
    """The folder of a finished run: with committed checkpoints only (`use_committed`), the
    committed one; otherwise this machine's run under runs/, else the committed one."""
    committed = committed_dir(profile, name, seed)
    candidates = [committed] if not _TRAINING["allowed"] else [run_dir(profile, name, seed),
                                                               committed]  # fmt: skip
    found = next((c for c in candidates if _finished(c)), None)
    if found == committed and not committed_current(profile, name, seed):
        warnings.warn(
            f"{found} was trained with another recipe than configs/{profile}/ gives {found.name} "
            "now, or from other teacher weights: its scores do not describe the current study",
            StaleRunWarning,
            stacklevel=2,
        )
    return found


def finished_rows(profile: str, rows, seeds=(None,)) -> list[str]:
    """Those of `rows` (student rows) whose run is finished for every seed, found without
    training anything: the study shows a row once it exists."""
    return [r for r in rows if all(find_run(profile, f"student_{r}", s) for s in seeds)]


def all_finished(profile: str, rows, seeds=(None,)) -> bool:
    """Whether every one of `rows` is finished for every seed (`finished_rows`)."""
    return len(finished_rows(profile, rows, seeds)) == len(rows)


def ensure_run(profile: str, name: str, seed: int | None = None, retrain: bool = False) -> Path:
    """The folder of the finished run `name` (see `find_run`), trained first when there is none.

    An interrupted run under runs/ (last.pt without summary.json) is resumed, as is committed
    resumable state (`restore_progress`); `retrain` trains anew into runs/ (replacing the run
    there). A committed run is read where it is, never copied over a run folder.
    """
    out = run_dir(profile, name, seed)
    with locked(out):
        found = None if retrain else find_run(profile, name, seed)
        if found is not None:
            return found
        if not _TRAINING["allowed"]:
            raise RuntimeError(
                f"run {out.name} of profile {profile!r} is not committed under "
                f"{committed_dir(profile, name, seed)} and training is off (use_committed); "
                f"committed: {', '.join(committed_runs(profile)) or 'none'}"
            )
        train_run(profile, name, seed, retrain=retrain)
    return out


def parallel_workers() -> int:
    """How many runs to train at once: one 1-thread process per core (two 1-thread processes
    beat one 2-thread process on 2 cores: results/benchmarks/study_throughput.json), or one
    where this process was given a single thread (OMP_NUM_THREADS=1, as `make test` runs the
    notebooks two at a time)."""
    return 1 if os.environ.get("OMP_NUM_THREADS") == "1" else os.cpu_count() or 1


def _train_in_processes(profile: str, runs, workers: int) -> None:
    """Train `runs` ((name, seed) pairs that do not depend on each other) in `workers` queue
    processes of one thread each; a failed queue is an error naming its log."""
    queues = [runs[i::workers] for i in range(workers)]
    logs = paths(profile).runs
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for i, queue in enumerate(q for q in queues if q):
        items = [name if seed is None else f"{name}:{seed}" for name, seed in queue]
        log = logs / f"parallel_queue_{i}.log"
        cmd = [sys.executable, "-m", "sekd.study.queue", "--profile", profile, "--threads", "1"]
        with open(log, "w") as f:
            procs.append((subprocess.Popen([*cmd, *items], stdout=f, stderr=subprocess.STDOUT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}), log))  # fmt: skip
    failed = [log for proc, log in procs if proc.wait() != 0]
    if failed:
        raise RuntimeError(f"training failed; see {', '.join(map(str, failed))}")


def ensure_runs(profile: str, runs, retrain: bool = False) -> list[Path]:
    """`ensure_run` for each (name, seed) of `runs`, the missing ones trained side by side
    (`parallel_workers`). The runs must not depend on each other: a student and its teacher go
    in two calls, the teacher's first."""
    runs = list(runs)
    missing = [(n, s) for n, s in runs if retrain or find_run(profile, n, s) is None]
    workers = min(len(missing), parallel_workers())
    if _TRAINING["allowed"] and not retrain and workers > 1:
        _train_in_processes(profile, missing, workers)
    return [ensure_run(profile, n, s, retrain=retrain) for n, s in runs]


def load_run_model(profile: str, name: str, seed: int | None = None, which: str = "best"):
    """The model of a finished run (`find_run`): its best.pt (or a committed model.pt);
    `which = "last"` reads last.pt of a run under runs/."""
    if which == "last":
        return load_trained(run_dir(profile, name, seed) / "last.pt")
    folder = find_run(profile, name, seed)
    if folder is None:
        raise FileNotFoundError(
            f"no finished run {name}{'' if seed is None else f' (seed {seed})'} of profile "
            f"{profile!r} under {run_dir(profile, name, seed)} or "
            f"{committed_dir(profile, name, seed)}"
        )
    best = folder / "best.pt"
    return load_trained(best if best.is_file() else folder / "model.pt")


def curves(profile: str, name: str, seed: int | None = None):
    """(train rows, valid rows) of a finished run's metrics.jsonl (`find_run`)."""
    folder = find_run(profile, name, seed) or run_dir(profile, name, seed)
    return log_rows(folder, "train"), log_rows(folder, "valid")


def log_rows(folder: Path, kind: str) -> list[dict]:
    """The rows of one kind ("train", "valid", ...) of a run folder's metrics.jsonl."""
    return [r for r in read_metrics(folder) if r.get("kind") == kind]


def save_figure(fig, profile: str, name: str) -> None:
    """Save as results/<profile>/figures/<name>.png (returns nothing, so a notebook cell that
    ends with it shows the figure, not a path)."""
    with atomic_path(paths(profile).figures / f"{name}.png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
