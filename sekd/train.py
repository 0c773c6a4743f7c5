"""The one training loop: supervised, MV-AT / single-view AT, KD, SNR-routed teachers.

`train(cfg, out_dir)` runs a `RunConfig` (sekd.config) and writes into `out_dir`:
`metrics.jsonl` (one JSON line per log interval and per validation), `last.pt` and `best.pt`
(atomic, loadable with weights_only=True) and `summary.json`. A folder that already holds a run
is refused unless `resume` (continue from its last.pt) or `overwrite` (replace it) is given;
the config, data and teachers are checked before the folder is touched.

The same entry point runs under `torchrun --nproc_per_node N` (and across nodes):
DistributedDataParallel (nccl + SyncBatchNorm on GPUs, gloo on CPU), each process taking its
share of every global batch and of the validation files, rank 0 gathering the validation
scores, logging and checkpointing. On CPU, BatchNorm statistics are per process (SyncBatchNorm
needs a GPU); the single-process run with `train.accumulate = N` processes the same
micro-batches and is the exact equivalent.

A step synchronises with the host once: one check that the total loss and the gradient norm
are finite. Loss terms reach the host only at log intervals.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .baselines import NoisyInput
from .config import RunConfig
from .data import (
    SAMPLE_RATE,
    ValidItem,
    build_train_set,
    build_valid_set,
    collate,
    epoch_batches,
    step_loader,
)
from .device import pick_device
from .metrics import VALIDATION, MetricError, validation_scores
from .models import (
    IdentityInit,
    build,
    fingerprint,
    load_checkpoint,
    load_model,
    model_from_state,
    model_state,
)
from .objectives import OBJECTIVE_KINDS
from .outputs import atomic_path, write_text
from .routing import RoutedTeachers

RUN_FILES = ("metrics.jsonl", "config.json", "last.pt", "best.pt", "summary.json")


class TrainingError(RuntimeError):
    """A run that cannot go on (non-finite loss); the last good state has been saved."""


# ------------------------------------------------------------------------------- objective
def _resolve(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"teacher checkpoint not found: {p} (relative to {Path.cwd()})")
    return p


class TrainingObjective:
    """The loss of a run: turns a batch into (total loss, named terms), as tensors (no host
    synchronisation); the teacher(s) run once per batch. The kind's loss and validation loss
    are its `sekd.objectives` entry."""

    def __init__(self, cfg: RunConfig, student, device):
        self.cfg, self.student, self.device = cfg, student, device
        o, t = cfg.objective, cfg.teacher
        self.teacher = self.routed = self.distill = None
        if t.routing == "single":
            self.teacher = load_model(_resolve(t.checkpoints[0])).to(device)
        elif t.routing == "snr":
            teachers = [load_model(_resolve(c)).to(device) for c in t.checkpoints]
            self.routed = RoutedTeachers(teachers, t.bands, t.between)
        self.band_objectives = None
        self.kind = OBJECTIVE_KINDS[o.kind]
        self.kind.setup(self)

    def teachers(self) -> list:
        """The teacher models, in the order of `teacher.checkpoints` (none: [])."""
        if self.teacher is not None:
            return [self.teacher]
        return list(self.routed.teachers) if self.routed is not None else []

    def __call__(self, batch: dict):
        noisy = batch["mixture"].to(self.device, non_blocking=True)
        clean = batch["clean"].to(self.device, non_blocking=True)
        return self.kind.loss(self, noisy, clean, batch.get("snr"))

    def routed_distill(self, noisy, clean, snr):
        """Split the batch by SNR band; each part runs the objective with its band's teacher,
        weighted by its share of the batch (the student's BatchNorm sees each part alone)."""
        band = self.routed.route(snr)
        total, terms = 0.0, {}
        for b in band.unique().tolist():
            idx = (band == b).nonzero().flatten().to(noisy.device)
            share = len(idx) / len(band)
            t, part, _ = self.band_objectives[b](noisy[idx], clean[idx])
            total = total + share * t
            for k, v in part.items():
                terms[k] = terms.get(k, 0.0) + share * v
        return total, terms

    def valid_loss(self, out: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor) -> float:
        """The validation loss of an output already computed (the model runs once per item)."""
        return self.kind.valid_loss(self, out, noisy, clean)


# ------------------------------------------------------------------------------- validate
VALID_MEASURES = VALIDATION  # the measures training validates on: the metric registry's


def validate(model, items: list[ValidItem], objective: TrainingObjective, device) -> dict:
    """Whole-utterance validation at batch 1.

    PESQ, STOI, SI-SDR, SI-SDR improvement over the input and the least-squares gain of the
    output on the clean signal (negative: inverted polarity; PESQ, STOI and SI-SDR do not see
    the sign), each a mean over the files that scored; `gain_median` too; the loss; and, when
    the set has recorded pairs besides the mixtures, the same measures per group
    (`real_pesq`, `mix_pesq`, ...).
    """
    return summarise_validation(score_valid_items(model, items, objective, device))


def validate_sharded(
    model, items: list[ValidItem], objective: TrainingObjective, device, rank: int, world: int
) -> dict | None:
    """`validate` shared out over the `world` processes of a run: process `rank` scores the
    items rank, rank + world, ..., and process 0 gathers every file's scores in the items'
    order and returns what `validate` returns on all of them (None on the other processes).
    Every process calls it, with the same items and a model of the same weights (as
    DistributedDataParallel keeps them). BatchNorm statistics are per process on CPU: the
    model's buffers are first set to process 0's, those it checkpoints (DDP broadcasts them
    at its next forward in any case)."""
    for b in model.buffers():
        dist.broadcast(b, src=0)
    my_indices = list(range(rank, len(items), world))
    part = score_valid_items(model, [items[i] for i in my_indices], objective, device)
    parts = [None] * world if rank == 0 else None
    dist.gather_object(list(zip(my_indices, part)), parts, dst=0)
    if rank != 0:
        return None
    return summarise_validation(
        [rec for _, rec in sorted((r for p in parts for r in p), key=lambda r: r[0])]
    )


@torch.no_grad()
def score_valid_items(model, items: list[ValidItem], objective: TrainingObjective, device):
    """Each item's (loss, measures or None where a measure failed), in the items' order."""
    model.eval()
    records = []
    for it in items:
        x = torch.from_numpy(it.noisy)[None, None].to(device)
        c = torch.from_numpy(it.clean)[None, None].to(device)
        y = model(x)
        loss = objective.valid_loss(y, x, c)
        y = y[0, 0].float().cpu().numpy()
        try:
            row = {"group": it.group, **validation_scores(it.clean, y, it.noisy)}
        except MetricError:
            row = None
        records.append((loss, row))
    return records


def summarise_validation(records) -> dict:
    """`validate`'s summary of `score_valid_items` records."""
    losses = [loss for loss, _ in records]
    rows = [row for _, row in records if row is not None]

    def means(rs, prefix=""):
        return {
            f"{prefix}{k}": float(np.mean([r[k] for r in rs])) if rs else float("nan")
            for k in VALID_MEASURES
        }

    out = means(rows)
    out["gain_median"] = float(np.median([r["gain"] for r in rows])) if rows else float("nan")
    groups = sorted({r["group"] for r in rows})
    if len(groups) > 1:
        for g in groups:
            out.update(means([r for r in rows if r["group"] == g], f"{g}_"))
    out["loss"] = float(np.mean(losses)) if losses else float("nan")
    out["failed"] = len(records) - len(rows)
    return out


@torch.no_grad()
def silence_loss(items: list[ValidItem], objective: TrainingObjective, device) -> float:
    """The validation loss of an all-zero output (NaN where the loss is not finite on it)."""
    losses = []
    for it in items:
        c = torch.from_numpy(it.clean)[None, None].to(device)
        x = torch.from_numpy(it.noisy)[None, None].to(device)
        losses.append(objective.valid_loss(torch.zeros_like(c), x, c))
    m = float(np.mean(losses)) if losses else float("nan")
    return m if math.isfinite(m) else float("nan")


def init_identity(student, train_set, cfg: RunConfig, device) -> float:
    """`model.init = "identity"`: fit the student's output layer on the run's first global
    batch (every process the same batch, so the weights agree); returns the fit's R^2."""
    if hasattr(train_set, "set_epoch"):
        train_set.set_epoch(0)
    first = epoch_batches(len(train_set), cfg.train.batch_size, 0, cfg.seed)[0]
    student.train()
    return student.init_identity(collate([train_set[i] for i in first])["mixture"].to(device))


def _init_weights(cfg: RunConfig, student) -> dict | None:
    """`model.init = "checkpoint"`: the weights of `model.checkpoint`, checked (before the run
    folder is touched) to be a model of the student's own shape; None for other inits. A
    resumed run restores its own weights instead."""
    if cfg.model.init != "checkpoint":
        return None
    path = Path(cfg.model.checkpoint)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.checkpoint not found: {path} (the weights model.init = checkpoint starts from)"
        )
    try:
        model = load_model(path)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"model.checkpoint: {exc}") from None
    if type(model) is not type(student) or model.cfg.to_dict() != student.cfg.to_dict():
        raise ValueError(
            f"model.checkpoint {path} holds a {type(model).__name__} {model.cfg.to_dict()}, not "
            f"the {type(student).__name__} of model.preset = {cfg.model.preset!r} "
            f"{student.cfg.to_dict()}: start from a checkpoint of the same preset"
        )
    return model.state_dict()


# ----------------------------------------------------------------------------- distributed
def _dist_info():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    return rank, world


# ---------------------------------------------------------------------------- checkpoints
def _atomic_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate((3, tuple(st["python"]), None))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def total_steps(tc, examples_per_epoch: int) -> int:
    """A run's length in steps: train.max_steps, else its epochs of whole batches."""
    return tc.max_steps or tc.epochs * (examples_per_epoch // tc.batch_size)


def _make_scheduler(cfg: RunConfig, opt, total_steps: int):
    o = cfg.optim
    if o.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=o.lr, total_steps=max(total_steps, 1), pct_start=o.pct_start
        )
    if o.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=o.plateau_factor, patience=o.plateau_patience
        )
    return None


def _planned_steps(ck: dict) -> int | None:
    """The total steps a checkpoint's run was planned for (OneCycle's schedule length)."""
    if "total_steps" in ck:
        return int(ck["total_steps"])
    return (ck.get("scheduler") or {}).get("total_steps")


def _check_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """A folder that holds a run is only continued (resume) or replaced (overwrite)."""
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: continue a run or replace it")
    if not out.exists():
        return
    if not out.is_dir():
        raise NotADirectoryError(f"run folder {out} exists and is not a folder")
    held = sorted(p.name for p in out.iterdir() if p.name in RUN_FILES)
    if held and not (resume or overwrite):
        raise FileExistsError(
            f"{out} already holds a run ({', '.join(held)}); pass --resume to continue it or "
            "--overwrite to replace it (nothing was changed)"
        )
    if held and resume and "last.pt" not in held:
        raise FileNotFoundError(
            f"{out} holds a run ({', '.join(held)}) but no last.pt to resume it from; pass "
            "--overwrite to train it again from the start, or train into a new folder "
            "(nothing was changed)"
        )


def _check_compatible(ck: dict, student, cfg: RunConfig, path: Path, total_steps: int) -> None:
    """Refuse a resume whose checkpoint cannot continue this config, before anything is loaded."""
    stored = ck.get("model", {}).get("config")
    if stored is not None and stored != student.cfg.to_dict():
        raise ValueError(
            f"{path} holds a model of another shape (preset "
            f"{ck['model'].get('preset') or '?'!r}, config {stored}) than model.preset = "
            f"{cfg.model.preset!r}; resume it with its own config, or train into a new folder"
        )
    planned = _planned_steps(ck)
    if cfg.optim.schedule == "onecycle" and planned is not None and planned != total_steps:
        raise ValueError(
            f"{path} was planned for {planned} steps with a OneCycle schedule; it cannot be "
            f"continued for {total_steps} (the schedule would change under it). Resume with "
            f"--max-steps {planned}, or start a new run; a constant or plateau schedule "
            "(optim.schedule) can be extended"
        )


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint a resumed run restarts from (and a last
    line cut off mid-write)."""
    if path.exists():
        keep = [r for r in _log_records(path) if r["step"] <= step]
        write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


def _log_records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl. A last line that does not parse was cut off by a stop
    mid-write and is dropped; any other line that does not parse is an error naming the file
    and the line."""
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{path}, line {number}: not a JSON record ({line[:60]!r})") from None
    return records


def _all_finite(tensors) -> bool:
    """One fused check (one host synchronisation) that every tensor is finite."""
    tensors = [t.detach() for t in tensors if t.is_floating_point()]
    if not tensors:
        return True
    # x * 0 is 0 for finite x and NaN for inf / NaN: a norm that cannot overflow
    zeros = torch._foreach_mul(tensors, 0.0)
    return bool(torch.isfinite(torch.stack(torch._foreach_norm(zeros))).all())


# ---------------------------------------------------------------------------------- train
class Trainer:
    """One run: `__init__` checks and builds everything (nothing in the folder changes if it
    fails), `fit` loops over `optimisation_step` and `validate_and_checkpoint`."""

    def __init__(self, cfg: RunConfig, out, resume=False, overwrite=False, device=None):
        self.cfg, self.out = cfg, Path(out)
        self.rank, self.world = _dist_info()
        tc = cfg.train
        if tc.batch_size % self.world:
            raise ValueError(
                f"train.batch_size {tc.batch_size} is not divisible by {self.world} processes"
            )
        if self.world > 1 and tc.accumulate > 1:
            raise ValueError("use either several processes or train.accumulate, not both")
        _check_folder(self.out, resume, overwrite)
        self.dev = pick_device(device, int(os.environ.get("LOCAL_RANK", self.rank)))
        if tc.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)

        self.student = build(cfg.model.preset).to(self.dev)
        if cfg.model.init == "identity" and not isinstance(self.student, IdentityInit):
            raise ValueError(
                f"model.init = identity: preset {cfg.model.preset!r} "
                f"({type(self.student).__name__}) has no identity initialisation"
            )
        self.train_set = build_train_set(cfg.data, cfg.seed)
        # every process holds the validation set: each scores its share of it (validate_sharded)
        self.valid_items = build_valid_set(cfg.data, cfg.seed)
        self.per_epoch = len(self.train_set) // tc.batch_size
        if self.per_epoch == 0:
            raise ValueError(
                f"{len(self.train_set)} training examples make no batch of {tc.batch_size}"
            )
        self.total_steps = total_steps(tc, len(self.train_set))
        self.opt = torch.optim.Adam(
            self.student.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas)
        )
        self.sched = _make_scheduler(cfg, self.opt, self.total_steps)
        self.model = self.student
        if self.world > 1:
            if self.dev.type == "cuda":
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.dev.index] if self.dev.type == "cuda" else None
            )
        self.objective = TrainingObjective(cfg, self.model, self.dev)
        self.step, self.best = 0, None
        # training time over every process of the run: what the checkpoint resumed from had
        # spent (`seconds`, from step `timed_from`) plus this process's time since fit began
        self.seconds_before, self.timed_from, self.fit_start = 0.0, 0, None
        self.last, self.best_path = self.out / "last.pt", self.out / "best.pt"
        ck = load_checkpoint(self.last) if resume and self.last.is_file() else None
        if ck is not None:
            _check_compatible(ck, self.student, cfg, self.last, self.total_steps)
        self.init_from = None if ck is not None else _init_weights(cfg, self.student)
        # ---- every check passed: only now is the run folder touched
        if ck is not None:
            self._restore(ck)
        else:
            self._start(overwrite)
        self.buffers = list(self.student.buffers())
        self.snapshot = [b.clone() for b in self.buffers]
        bf16 = tc.bf16 and self.dev.type == "cuda"
        self.amp = torch.autocast("cuda", torch.bfloat16) if bf16 else None

    # ------------------------------------------------------------------ restore / start
    def _restore(self, ck: dict) -> None:
        self.student.load_state_dict(ck["model"]["state_dict"])
        self.opt.load_state_dict(ck["optimizer"])
        if self.sched is not None and ck.get("scheduler"):
            self.sched.load_state_dict(ck["scheduler"])
        _set_rng_state(ck["rng"])
        self.step, self.best = int(ck["step"]), ck.get("best")
        # a checkpoint written before training time was recorded: time from its step on
        self.seconds_before = float(ck.get("seconds", 0.0))
        self.timed_from = int(ck.get("timed_from", 0 if "seconds" in ck else self.step))
        if self.rank == 0:
            _truncate_log(self.out / "metrics.jsonl", self.step)
            # the config in effect from here on (an extended run has a new length)
            write_text(self.out / "config.json", json.dumps(self.cfg.to_dict(), indent=1))

    def _start(self, overwrite: bool) -> None:
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            if overwrite:
                for name in RUN_FILES:
                    (self.out / name).unlink(missing_ok=True)
            (self.out / "metrics.jsonl").write_text("")
            write_text(self.out / "config.json", json.dumps(self.cfg.to_dict(), indent=1))
        if self.cfg.model.init == "identity":
            r2 = init_identity(self.student, self.train_set, self.cfg, self.dev)
            self.log({"kind": "init", "step": 0, "identity_r2": r2})
        elif self.init_from is not None:
            self.student.load_state_dict(self.init_from)
            self.log({"kind": "init", "step": 0, "checkpoint": self.cfg.model.checkpoint})
        if self.rank == 0 and self.valid_items:  # the noisy input's scores, for reference
            v = validate(NoisyInput(), self.valid_items, self.objective, self.dev)
            # and the loss of a silent output: a model whose validation loss stays near it has
            # learnt to output (almost) nothing, which the loss alone does not say at low SNR
            v["silence_loss"] = silence_loss(self.valid_items, self.objective, self.dev)
            self.log({"kind": "valid_input", "step": 0, **v})

    # ---------------------------------------------------------------------- records
    def log(self, record: dict) -> None:
        if self.rank == 0:
            with open(self.out / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def checkpoint(self, path: Path) -> None:
        # best.pt holds the model as it is stored (export.dtype): what is scored, committed and
        # distilled from; last.pt, which resumes, keeps full precision
        dtype = self.cfg.export.dtype if path == self.best_path else "float32"
        _atomic_save(
            {
                "model": model_state(self.student, self.cfg.model.preset, dtype),
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict() if self.sched is not None else {},
                "rng": _rng_state(),
                "step": self.step,
                "epoch": self.step // self.per_epoch,
                "total_steps": self.total_steps,
                "best": self.best,
                "seconds": self.seconds(),
                "timed_from": self.timed_from,
                "config": json.dumps(self.cfg.to_dict()),
            },
            path,
        )

    def seconds(self) -> float:
        """Training time of the run so far, over the processes that resumed it."""
        now = 0.0 if self.fit_start is None else time.perf_counter() - self.fit_start
        return self.seconds_before + now

    def fail(self, what: str, detail: str = "") -> None:
        """Undo this step's BatchNorm updates, keep the last good state, raise."""
        save = self.rank == 0 and _all_finite(self.student.parameters())
        if save:
            torch._foreach_copy_(self.buffers, self.snapshot)
            self.checkpoint(self.last)
        kept = (
            f"the last good state (step {self.step}) is saved in {self.last}"
            if save
            else f"the last checkpoint in {self.last} is kept as the last good state"
        )
        detail = f" ({detail})" if detail else ""
        raise TrainingError(f"non-finite {what} at step {self.step + 1}{detail}; {kept}")

    # ------------------------------------------------------------- one optimisation step
    def optimisation_step(self, parts: list[dict]) -> dict[str, torch.Tensor]:
        """Forward, backward and update on this process's micro-batches; returns the loss
        terms as tensors. One host synchronisation: the finiteness of loss and gradients."""
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        # BatchNorm updates its running statistics in the forward pass: keep them, so a step
        # that turns out non-finite can be undone before the last good state is saved
        torch._foreach_copy_(self.snapshot, self.buffers)
        terms_sum: dict[str, torch.Tensor] = {}
        total_sum = torch.zeros((), device=self.dev)
        for batch in parts:
            if self.amp is not None:
                with self.amp:
                    total, terms = self.objective(batch)
            else:
                total, terms = self.objective(batch)
            (total / len(parts)).backward()
            total_sum = total_sum + total.detach().float() / len(parts)
            for k, v in terms.items():
                terms_sum[k] = terms_sum.get(k, 0.0) + v.detach().float() / len(parts)
        grads = [p.grad for p in self.student.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads)
        if not bool(torch.isfinite(total_sum) & torch.isfinite(norm)):
            bad = {k: float(v) for k, v in terms_sum.items() if not math.isfinite(float(v))}
            if bad or not math.isfinite(float(total_sum)):
                names = ", ".join(f"{k}={v}" for k, v in bad.items())
                self.fail("loss", names or f"total={float(total_sum)}")
            self.fail("gradient")
        if self.cfg.optim.grad_clip > 0:  # scales the .grad of the parameters given
            params = [p for p in self.student.parameters() if p.grad is not None]
            torch.nn.utils.clip_grads_with_norm_(params, self.cfg.optim.grad_clip, norm)
        self.opt.step()
        if isinstance(self.sched, torch.optim.lr_scheduler.OneCycleLR):
            self.sched.step()
        self.step += 1
        return terms_sum

    # ------------------------------------------------------- validate and checkpoint
    def validate_and_checkpoint(self) -> None:
        score = v = None
        if self.valid_items:  # every process validates; v is None on all but process 0
            args = (self.student, self.valid_items, self.objective, self.dev)
            if self.world > 1:
                v = validate_sharded(*args, self.rank, self.world)
            else:
                v = validate(*args)
        if v is not None:
            self.log({"kind": "valid", "step": self.step, **v})
            if v["gain_median"] <= 0:
                warnings.warn(
                    f"{self.cfg.name}, step {self.step}: the median least-squares gain of the "
                    f"output on the clean validation signals is {v['gain_median']:.3f} (<= 0: "
                    "inverted polarity or silence); PESQ and STOI do not show this",
                    stacklevel=2,
                )
            metric = v["pesq"] if self.cfg.train.valid_metric == "pesq" else -v["loss"]
            if self.best is None or (math.isfinite(metric) and metric > self.best):
                self.best = metric
                self.checkpoint(self.best_path)
            score = v["loss"]
        if self.world > 1:
            box = [score]
            dist.broadcast_object_list(box, src=0)
            score = box[0]
        if isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau) and score is not None:
            self.sched.step(score)
        if self.rank == 0 and not self.cfg.train.checkpoint_every:
            self.checkpoint(self.last)

    # ---------------------------------------------------------------------- the loop
    def fit(self, progress: bool = True, on_step=None) -> dict:
        tc, cfg = self.cfg.train, self.cfg
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=cfg.name,
            disable=not progress or self.rank > 0,
        )
        t0 = t_last = self.fit_start = time.perf_counter()
        seen = 0
        epoch = self.step // self.per_epoch
        while self.step < self.total_steps:
            loader = step_loader(
                self.train_set,
                epoch,
                cfg.seed,
                tc.batch_size,
                start=self.step - epoch * self.per_epoch,
                rank=self.rank,
                world=self.world,
                accumulate=tc.accumulate,
                num_workers=tc.num_workers,
                pin_memory=self.dev.type == "cuda",
            )
            for parts in loader:
                if self.step >= self.total_steps:
                    break
                terms = self.optimisation_step(parts)
                seen += tc.batch_size
                bar.update()
                if on_step is not None:
                    on_step(self.step)
                if self.step % tc.log_every == 0 or self.step == self.total_steps:
                    now = time.perf_counter()
                    host = {k: float(v) for k, v in terms.items()}  # the only host copies
                    bar.set_postfix(loss=f"{host.get('total', 0.0):.4f}")
                    self.log(
                        {
                            "kind": "train",
                            "step": self.step,
                            "epoch": epoch,
                            "lr": self.opt.param_groups[0]["lr"],
                            **host,
                            "steps_per_s": tc.log_every / max(now - t_last, 1e-9),
                            "audio_s_per_s": seen * cfg.data.segment / SAMPLE_RATE / (now - t0),
                        }
                    )
                    t_last = now
                if tc.valid_every and self.step % tc.valid_every == 0:
                    self.validate_and_checkpoint()
                if self.rank == 0 and tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                    self.checkpoint(self.last)
            epoch += 1
            if not tc.valid_every and self.step % self.per_epoch == 0:
                self.validate_and_checkpoint()
        bar.close()
        self.finish()
        return self.write_summary()

    def finish(self) -> None:
        """The last checkpoints of a run that reached its length (a best.pt even if it never
        validated), once its weights are known to be finite."""
        if self.rank == 0:
            if not _all_finite(self.student.parameters()):
                raise TrainingError(
                    f"non-finite parameters after step {self.step}; the last checkpoint in "
                    f"{self.last} is kept as the last good state"
                )
            self.checkpoint(self.last)
            if not self.best_path.exists():
                self.checkpoint(self.best_path)

    def write_summary(self) -> dict:
        """summary.json of a finished run: its length, best validation, time, teachers."""
        tc, cfg = self.cfg.train, self.cfg
        seconds = self.seconds()
        summary = {
            "name": cfg.name,
            "steps": self.step,
            "total_steps": self.total_steps,
            "best": self.best,
            "micro_batch": tc.batch_size // max(self.world, tc.accumulate),
            "seconds": seconds,
            "seconds_this_process": seconds - self.seconds_before,
            "world_size": self.world,
        }
        if self.timed_from:  # resumed from a checkpoint that did not record its time
            summary["timed_from_step"] = self.timed_from
        teachers = self.objective.teachers()
        if teachers:  # which weights it learned from: a student of a replaced teacher is stale
            summary["teachers"] = [fingerprint(t) for t in teachers]
        if self.rank == 0:
            write_text(self.out / "summary.json", json.dumps(summary, indent=1))
        return summary


def train(
    cfg: RunConfig,
    out_dir,
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = True,
    on_step=None,
) -> dict:
    """Run `cfg` into `out_dir`; returns the summary (also written to summary.json).

    `resume` continues the run in `out_dir` from its last.pt (a fresh start if there is none);
    `overwrite` replaces a run that is there. Without either, a folder holding a run is an
    error and nothing in it changes.
    """
    return Trainer(cfg, out_dir, resume, overwrite, device).fit(progress, on_step)


def load_trained(path):
    """The model of a training checkpoint (last.pt / best.pt) or a model-only file, in eval mode."""
    state = load_checkpoint(path)
    return model_from_state(state.get("model", state), str(path)).eval()


def read_metrics(run_dir) -> list[dict]:
    p = Path(run_dir) / "metrics.jsonl"
    return _log_records(p) if p.exists() else []
