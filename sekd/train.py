"""The one training loop: supervised, MV-AT / single-view AT, KD, SNR-routed teachers.

`train(cfg, out_dir)` runs a `RunConfig` (sekd.config) and writes into `out_dir`:
`metrics.jsonl` (one JSON line per log interval and per validation), `last.pt` and `best.pt`
(atomic, loadable with weights_only=True) and `summary.json`. The same entry point runs under
`torchrun --nproc_per_node N`: DistributedDataParallel (nccl + SyncBatchNorm on GPUs, gloo on
CPU), each process taking its share of every global batch, rank 0 logging and checkpointing.
On CPU, BatchNorm statistics are per process (SyncBatchNorm needs a GPU); the single-process
run with `train.accumulate = N` processes the same micro-batches and is the exact equivalent.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import RunConfig
from .data import (
    SAMPLE_RATE,
    Corpus,
    OnTheFlyMixDataset,
    PairedFolderDataset,
    collate,
    mix,
    read_audio,
)
from .data.datasets import voicebank_train_valid
from .distill import DistillationObjective, ObjectiveConfig
from .losses import snr_teacher_loss, weighted_loss
from .metrics import MetricError, ls_gain, pesq_wb, si_sdr, stoi
from .models import build, load_checkpoint, load_model, model_from_state, model_state
from .routing import RoutedTeachers


class TrainingError(RuntimeError):
    """A run that cannot go on (non-finite loss); the last good state has been saved."""


# ------------------------------------------------------------------------------------ data
@dataclass
class ValidItem:
    name: str
    noisy: np.ndarray
    clean: np.ndarray
    snr: float
    group: str = "mix"  # mix: on-the-fly validation mixtures; real: bundled recorded pairs


def build_train_set(cfg: RunConfig, corpus: Corpus | None = None):
    d = cfg.data
    if d.source == "corpus":
        corpus = corpus or Corpus()
        speech = corpus.select(kind="speech", dataset=d.speech_datasets, split="train")
        noise = corpus.select(
            kind="noise", dataset=d.noise_datasets, split="train", noise_type=d.noise_types or None
        )
        if not speech or not noise:
            raise ValueError(f"no training speech or noise for {d}")
        snr_kw = {"snr_range": tuple(d.snr_range)} if d.snr_range else {"snrs": d.snrs}
        return OnTheFlyMixDataset(
            speech, noise, segment=d.segment, length=d.examples_per_epoch, seed=cfg.seed, **snr_kw
        )
    if d.source == "paired":
        return PairedFolderDataset(d.noisy_dir, d.clean_dir, segment=d.segment, hop=d.hop)
    return voicebank_train_valid(d.voicebank_root, d.segment, d.hop)[0]


def build_valid_set(cfg: RunConfig, corpus: Corpus | None = None) -> list[ValidItem]:
    """Whole validation utterances, deterministic given the seed (never the training files)."""
    d = cfg.data
    if d.source == "corpus":
        corpus = corpus or Corpus()
        rng = np.random.default_rng([cfg.seed, 999])
        speech = corpus.select(kind="speech", dataset=d.speech_datasets, split="valid")
        types = d.valid_noise_types or d.noise_types or None
        noise = corpus.select(
            kind="noise", dataset=d.noise_datasets, split="valid", noise_type=types
        )
        pick = rng.choice(len(speech), size=min(d.valid_utterances, len(speech)), replace=False)
        snrs = list(d.snrs) if not d.snr_range else list(np.linspace(*d.snr_range, 5))
        items = []
        for k, i in enumerate(sorted(pick)):
            clean = read_audio(speech[i].path)[: int(d.valid_seconds * 16_000)]
            nf = noise[k % len(noise)]
            snr = float(snrs[k % len(snrs)])
            m = mix(clean, read_audio(nf.path), snr, rng, nf.noise_type)
            items.append(
                ValidItem(
                    f"{speech[i].path.stem}_{nf.noise_type}_{snr:+g}", m.mixture, m.clean, snr
                )
            )
        return items + real_valid_items(corpus, d.valid_pairs, d.valid_seconds)
    if d.source == "paired":
        if not d.valid_noisy_dir:
            return []
        ds = PairedFolderDataset(d.valid_noisy_dir, d.valid_clean_dir)
    else:
        ds = voicebank_train_valid(d.voicebank_root, d.segment, d.hop)[1]
    out = []
    for name in ds.names[: d.valid_utterances]:
        xn, xc = ds.audio[name]
        n = int(d.valid_seconds * 16_000)
        out.append(ValidItem(name, xn[:n], xc[:n], float("nan")))
    return out


def real_valid_items(corpus: Corpus, datasets, seconds: float) -> list[ValidItem]:
    """The bundled recorded pairs of `datasets` (train split) as validation items, group "real"."""
    items = []
    for name in datasets:
        noisy = corpus.select(kind="pair", role="noisy", dataset=name, split="train")
        if not noisy:
            raise ValueError(f"data.valid_pairs: no bundled train-split pairs of dataset {name!r}")
        clean = {f.path.name: f for f in corpus.select(kind="pair", role="clean", dataset=name)}
        n = int(seconds * SAMPLE_RATE)
        for f in noisy:
            c = clean.get(f.path.name)
            if c is None or "train" not in c.path.parts:
                raise ValueError(f"data.valid_pairs: {f.path} has no clean partner")
            items.append(
                ValidItem(
                    f"{name}:{f.path.stem}",
                    read_audio(f.path)[:n],
                    read_audio(c.path)[:n],
                    float("nan"),
                    "real",
                )
            )
    return items


def epoch_batches(n: int, batch: int, epoch: int, seed: int) -> list[list[int]]:
    """The global batches of an epoch: a seeded permutation cut into full batches."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    return [perm[k * batch : (k + 1) * batch] for k in range(n // batch)]


# ------------------------------------------------------------------------------- objective
def _resolve(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"teacher checkpoint not found: {p} (relative to {Path.cwd()})")
    return p


class Step:
    """Turns a batch into (total loss, named terms); the teacher(s) run once per batch."""

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
        if o.kind == "manner":
            ocfg = ObjectiveConfig(
                at=o.at, pairing=o.pairing, q=o.q, kd=o.kd, beta_at=o.beta_at, beta_kd=o.beta_kd
            )
            if self.routed is not None:
                # beyond the paper: MV-AT / KD from the teacher of each example's SNR band
                self.band_objectives = [
                    DistillationObjective(ocfg, student, t) for t in self.routed.teachers
                ]
            elif ocfg.needs_teacher and self.teacher is None:
                raise ValueError("objective needs a teacher: set teacher.routing and checkpoints")
            else:
                self.distill = DistillationObjective(ocfg, student, self.teacher)
        elif o.kind == "snr_teacher" and self.teacher is None and self.routed is None:
            raise ValueError("objective.kind = snr_teacher needs teacher.routing = single or snr")

    def __call__(self, batch: dict):
        noisy = batch["mixture"].to(self.device)
        clean = batch["clean"].to(self.device)
        o = self.cfg.objective
        if o.kind == "manner" and self.band_objectives is not None:
            return self.routed_distill(noisy, clean, batch["snr"])
        if o.kind == "manner":
            total, terms, _ = self.distill(noisy, clean)
            return total, terms
        out = self.student(noisy)
        if o.kind == "mse":
            total = 0.5 * F.mse_loss(out, clean)
            return total, {"mse": total.detach(), "total": total.detach()}
        with torch.no_grad():
            if self.routed is not None:
                t_out = self.routed(noisy, batch["snr"])
            else:
                t_out = self.teacher(noisy)
        total, parts = snr_teacher_loss(out, t_out, clean, o.alpha)
        return total, {
            "mse_teacher": parts["teacher"].detach(),
            "mse_clean": parts["clean"].detach(),
            "total": total.detach(),
        }

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
        if self.cfg.objective.kind == "manner":
            return float(weighted_loss(out, clean, noisy).total)
        return float(0.5 * F.mse_loss(out, clean))


def init_identity(student, train_set, cfg: RunConfig, device) -> float:
    """`model.init = "identity"`: fit the student's output layer on the run's first global
    batch (every process the same batch, so the weights agree); returns the fit's R^2."""
    if not hasattr(student, "init_identity"):
        raise ValueError(
            f"model.init = identity: preset {cfg.model.preset!r} "
            f"({type(student).__name__}) has no identity initialisation"
        )
    if hasattr(train_set, "set_epoch"):
        train_set.set_epoch(0)
    first = epoch_batches(len(train_set), cfg.train.batch_size, 0, cfg.seed)[0]
    student.train()
    return student.init_identity(collate([train_set[i] for i in first])["mixture"].to(device))


# ----------------------------------------------------------------------------- distributed
def _dist_info():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    return rank, world


def _pick_device(device: str | None, rank: int) -> torch.device:
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    return torch.device("cpu")


# ---------------------------------------------------------------------------- checkpoints
def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


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


# ------------------------------------------------------------------------------- validate
VALID_MEASURES = ("pesq", "stoi", "si_sdr", "si_sdri", "gain")


@torch.no_grad()
def validate(model, items: list[ValidItem], step_obj: Step, device) -> dict:
    """Whole-utterance validation at batch 1.

    PESQ, STOI, SI-SDR, SI-SDR improvement over the input and the least-squares gain of the
    output on the clean signal (negative: inverted polarity; PESQ, STOI and SI-SDR do not see
    the sign), each a mean over the files that scored; `gain_median` too; the loss; and, when
    the set has recorded pairs besides the mixtures, the same measures per group
    (`real_pesq`, `mix_pesq`, ...).
    """
    model.eval()
    rows, losses, failed = [], [], 0
    for it in items:
        x = torch.from_numpy(it.noisy)[None, None].to(device)
        c = torch.from_numpy(it.clean)[None, None].to(device)
        y = model(x)
        losses.append(step_obj.valid_loss(y, x, c))
        y = y[0, 0].float().cpu().numpy()
        try:
            sdr = si_sdr(it.clean, y)
            row = {
                "group": it.group,
                "pesq": pesq_wb(it.clean, y),
                "stoi": stoi(it.clean, y),
                "si_sdr": sdr,
                "si_sdri": sdr - si_sdr(it.clean, it.noisy),
                "gain": ls_gain(it.clean, y),
            }
        except MetricError:
            failed += 1
            continue
        rows.append(row)

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
    out["failed"] = failed
    return out


# ---------------------------------------------------------------------------------- train
def train(
    cfg: RunConfig,
    out_dir,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    on_step=None,
) -> dict:
    """Run `cfg` into `out_dir`; returns the summary (also written to summary.json)."""
    out = Path(out_dir)
    rank, world = _dist_info()
    dev = _pick_device(device, rank)
    tc = cfg.train
    if tc.batch_size % world:
        raise ValueError(f"train.batch_size {tc.batch_size} is not divisible by {world} processes")
    if world > 1 and tc.accumulate > 1:
        raise ValueError("use either several processes or train.accumulate, not both")
    if tc.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    student = build(cfg.model.preset).to(dev)
    train_set = build_train_set(cfg)
    valid_items = build_valid_set(cfg) if rank == 0 else []
    batches_per_epoch = len(train_set) // tc.batch_size
    if batches_per_epoch == 0:
        raise ValueError(f"{len(train_set)} training examples make no batch of {tc.batch_size}")
    total_steps = tc.max_steps or tc.epochs * batches_per_epoch
    opt = torch.optim.Adam(student.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))
    sched = _make_scheduler(cfg, opt, total_steps)
    step, best, start_epoch = 0, None, 0
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and last_path.is_file():
        ck = load_checkpoint(last_path)
        student.load_state_dict(ck["model"]["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None and ck.get("scheduler"):
            sched.load_state_dict(ck["scheduler"])
        _set_rng_state(ck["rng"])
        step, best = int(ck["step"]), ck.get("best")
        start_epoch = step // batches_per_epoch
        if rank == 0:
            _truncate_log(out / "metrics.jsonl", step)
    else:
        if rank == 0:
            (out / "metrics.jsonl").write_text("")
            (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        if cfg.model.init == "identity":
            r2 = init_identity(student, train_set, cfg, dev)
            if rank == 0:
                with open(out / "metrics.jsonl", "a") as fh:
                    fh.write(json.dumps({"kind": "init", "step": 0, "identity_r2": r2}) + "\n")

    model = student
    if world > 1:
        if dev.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    step_obj = Step(cfg, model, dev)
    amp = torch.autocast("cuda", torch.bfloat16) if tc.bf16 and dev.type == "cuda" else None

    def checkpoint(path: Path):
        _atomic_save(
            {
                "model": model_state(student, cfg.model.preset),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else {},
                "rng": _rng_state(),
                "step": step,
                "epoch": step // batches_per_epoch,
                "best": best,
                "config": json.dumps(cfg.to_dict()),
            },
            path,
        )

    def log(record: dict):
        if rank == 0:
            with open(out / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def run_validation():
        nonlocal best
        score = None
        if rank == 0 and valid_items:
            v = validate(student, valid_items, step_obj, dev)
            log({"kind": "valid", "step": step, **v})
            if v["gain_median"] <= 0:
                warnings.warn(
                    f"{cfg.name}, step {step}: the median least-squares gain of the output on "
                    f"the clean validation signals is {v['gain_median']:.3f} (<= 0: inverted "
                    "polarity or silence); PESQ and STOI do not show this",
                    stacklevel=2,
                )
            score = v["pesq"] if tc.valid_metric == "pesq" else -v["loss"]
            if best is None or (math.isfinite(score) and score > best):
                best = score
                checkpoint(best_path)
            score = v["loss"]
        if world > 1:
            box = [score]
            dist.broadcast_object_list(box, src=0)
            score = box[0]
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau) and score is not None:
            sched.step(score)
        if rank == 0 and not tc.checkpoint_every:
            checkpoint(last_path)

    def fail(buffers: dict, what: str, detail: str = "", save: bool = True):
        if save and rank == 0:
            with torch.no_grad():
                for k, b in student.named_buffers():
                    b.copy_(buffers[k])
            checkpoint(last_path)
        kept = (
            f"the last good state (step {step}) is saved in {last_path}"
            if save
            else f"the last checkpoint in {last_path} is kept as the last good state"
        )
        detail = f" ({detail})" if detail else ""
        raise TrainingError(f"non-finite {what} at step {step + 1}{detail}; {kept}")

    micro = tc.batch_size // max(world, tc.accumulate)
    bar = tqdm(total=total_steps, initial=step, desc=cfg.name, disable=not progress or rank > 0)
    t0, seen, t_last = time.perf_counter(), 0, time.perf_counter()
    epoch = start_epoch
    while step < total_steps:
        train_set.set_epoch(epoch) if hasattr(train_set, "set_epoch") else None
        batches = epoch_batches(len(train_set), tc.batch_size, epoch, cfg.seed)
        for gb in batches[step - epoch * batches_per_epoch :]:
            if step >= total_steps:
                break
            model.train()
            # this process's share of the global batch (several processes), or the
            # micro-batches of gradient accumulation (one process): the same split either way
            if world > 1:
                parts = [gb[rank::world]]
            else:
                parts = [gb[k :: tc.accumulate] for k in range(tc.accumulate)]
            opt.zero_grad(set_to_none=True)
            terms_sum: dict[str, float] = {}
            # BatchNorm updates its running statistics in the forward pass: keep them, so a
            # step that turns out non-finite can be undone before the last good state is saved
            buffers = {k: b.clone() for k, b in student.named_buffers()}

            for idx in parts:
                batch = collate([train_set[i] for i in idx])
                if amp is not None:
                    with amp:
                        total, terms = step_obj(batch)
                else:
                    total, terms = step_obj(batch)
                bad = [k for k, v in terms.items() if not torch.isfinite(v)]
                if bad or not torch.isfinite(total):
                    names = ", ".join(f"{k}={float(terms[k])}" for k in bad)
                    fail(buffers, "loss", names or f"total={float(total)}")
                (total / len(parts)).backward()
                for k, v in terms.items():
                    terms_sum[k] = terms_sum.get(k, 0.0) + float(v) / len(parts)
            if any(
                p.grad is not None and not torch.isfinite(p.grad).all()
                for p in student.parameters()
            ):
                fail(buffers, "gradient")
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
            if not all(torch.isfinite(p).all() for p in student.parameters()):
                fail(buffers, "parameters after the optimiser step", save=False)
            if isinstance(sched, torch.optim.lr_scheduler.OneCycleLR):
                sched.step()
            step += 1
            seen += len(gb)
            bar.update()
            bar.set_postfix(loss=f"{terms_sum.get('total', 0.0):.4f}")
            if on_step is not None:
                on_step(step)
            if step % tc.log_every == 0 or step == total_steps:
                now = time.perf_counter()
                log(
                    {
                        "kind": "train",
                        "step": step,
                        "epoch": epoch,
                        "lr": opt.param_groups[0]["lr"],
                        **terms_sum,
                        "steps_per_s": tc.log_every / max(now - t_last, 1e-9),
                        "audio_s_per_s": seen * cfg.data.segment / 16_000 / max(now - t0, 1e-9),
                    }
                )
                t_last = now
            if tc.valid_every and step % tc.valid_every == 0:
                run_validation()
            if rank == 0 and tc.checkpoint_every and step % tc.checkpoint_every == 0:
                checkpoint(last_path)
        epoch += 1
        if not tc.valid_every and step % batches_per_epoch == 0:
            run_validation()
    bar.close()
    if rank == 0:
        checkpoint(last_path)
        if not best_path.exists():
            checkpoint(best_path)
    summary = {
        "name": cfg.name,
        "steps": step,
        "best": best,
        "micro_batch": micro,
        "seconds": time.perf_counter() - t0,
        "world_size": world,
    }
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint a resumed run restarts from."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


def load_trained(path):
    """The model of a training checkpoint (last.pt / best.pt) or a model-only file, in eval mode."""
    state = load_checkpoint(path)
    return model_from_state(state.get("model", state)).eval()


def read_metrics(run_dir) -> list[dict]:
    p = Path(run_dir) / "metrics.jsonl"
    return [json.loads(ln) for ln in p.read_text().splitlines() if ln] if p.exists() else []
