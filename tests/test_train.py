import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from sekd.config import config_from_dict, load_config
from sekd.models import WaveUNetConfig, build, fingerprint, load_checkpoint, load_model, save_model
from sekd.train import TrainingError, TrainingObjective, read_metrics, train

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke"


def _smoke(**over):
    return load_config(SMOKE / "student_baseline.toml", **over)


def _params(path):
    sd = load_checkpoint(path)["model"]["state_dict"]
    return {k: v for k, v in sd.items() if "running" not in k and "num_batches" not in k}


# -------------------------------------------------------------------------------- config
def test_config_unknown_key_is_named(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('base = "%s"\n[train]\nbatch_sise = 4\n' % (SMOKE / "common.toml"))
    with pytest.raises(ValueError, match=r"\[train\]: unknown key 'batch_sise'"):
        load_config(f)
    f.write_text("[trian]\nbatch_size = 4\n")
    with pytest.raises(ValueError, match="unknown key 'trian'"):
        load_config(f)
    with pytest.raises(ValueError, match="objective.at"):
        config_from_dict({"objective": {"at": "everything"}})
    with pytest.raises(ValueError, match="accumulate"):
        config_from_dict({"train": {"batch_size": 4, "accumulate": 3}})
    # one dataclass for the TOML section and the objective: every field can be set, p included
    from sekd.distill import ObjectiveConfig

    o = config_from_dict({"objective": {"at": "mvat", "p": 1.0, "kd": True}}).objective
    assert isinstance(o, ObjectiveConfig) and o.p == 1.0 and o.needs_teacher
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_config(tmp_path / "nope.toml")


def test_every_profile_config_parses_and_profiles_keep_only_what_differs():
    from sekd.study import PROFILES, run_config

    shared = sorted(p.stem for p in (ROOT / "configs" / "shared").glob("*.toml"))
    assert "student_mvat_dual_kd" in shared and "snr_s2" in shared
    for profile in PROFILES:
        own = sorted(p.stem for p in (ROOT / "configs" / profile).glob("*.toml"))
        for name in set(own) & set(shared):  # a profile file over a shared one only overrides it
            raw = tomllib.loads((ROOT / "configs" / profile / f"{name}.toml").read_text())
            assert raw.get("base") == f"../shared/{name}.toml", (profile, name)
        for name in sorted(set(own) | set(shared)):
            run_config(profile, name)  # as the study reads it
            cfg = load_config(ROOT / "configs" / profile / f"{name}.toml")
            for ck in cfg.teacher.checkpoints:  # profile-relative teacher paths
                assert Path(ck).is_absolute() and f"/runs/{profile}/" in ck
    # a shared file read without a profile says how to read it
    with pytest.raises(FileNotFoundError, match=r"shared by the profiles.*configs/cpu/"):
        load_config(ROOT / "configs" / "shared" / "student_baseline.toml")


def test_relative_paths_follow_the_file_that_declares_them(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "base.toml").write_text(
        '[teacher]\nrouting = "single"\ncheckpoints = ["t/{profile}.pt"]\n'
    )
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run.toml").write_text('base = "../a/base.toml"\n[data]\nnoisy_dir = "n"\n')
    cfg = load_config(tmp_path / "b" / "run.toml")
    assert cfg.teacher.checkpoints == (str(tmp_path / "a" / "t" / "b.pt"),)
    assert cfg.data.noisy_dir == str(tmp_path / "b" / "n")
    # a value given on the command line (--set) is relative to the working directory
    monkeypatch.chdir(tmp_path)
    cfg = load_config(tmp_path / "b" / "run.toml", data={"noisy_dir": "here"})
    assert cfg.data.noisy_dir == str(tmp_path / "here")


# ---------------------------------------------------------------------------------- train
def test_smoke_training_loss_falls(tmp_path):
    cfg = _smoke(
        optim={"schedule": "constant", "lr": 5e-3},
        train={"batch_size": 4, "max_steps": 60, "epochs": 100, "log_every": 1, "valid_every": 60},
        data={"examples_per_epoch": 8},
    )
    train(cfg, tmp_path / "run", progress=False)
    losses = [r["total"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert len(losses) == 60
    # fresh mixtures every epoch, so this is generalisation, not memorising 8 examples
    assert np.mean(losses[-10:]) < 0.85 * np.mean(losses[:10])
    valid = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "valid"]
    assert valid and np.isfinite(valid[-1]["pesq"]) and valid[-1]["failed"] == 0
    for name in ("last.pt", "best.pt", "summary.json", "config.json"):
        assert (tmp_path / "run" / name).is_file()


def test_nan_stops_with_named_step_and_keeps_last_good_state(tmp_path):
    cfg = _smoke(optim={"schedule": "constant", "lr": 1e25}, train={"max_steps": 30, "epochs": 30})
    with pytest.raises(TrainingError, match=r"non-finite loss at step (\d+) \((supervised|total)="):
        train(cfg, tmp_path / "run", progress=False)
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["step"] >= 1
    assert all(
        torch.isfinite(v).all() for v in ck["model"]["state_dict"].values() if v.is_floating_point()
    )


def test_distillation_leaves_teacher_unchanged(tmp_path):
    teacher = build("tiny_teacher")
    save_model(teacher, tmp_path / "t.pt")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    cfg = load_config(
        SMOKE / "student_mvat_dual_kd.toml", teacher={"checkpoints": [str(tmp_path / "t.pt")]}
    )
    student = build("tiny_student")
    step = TrainingObjective(cfg, student, torch.device("cpu"))
    opt = torch.optim.Adam(student.parameters(), 1e-3)
    from sekd.data import build_train_set, collate

    ds = build_train_set(cfg.data, cfg.seed)
    for k in range(3):
        total, terms = step(collate([ds[4 * k + i] for i in range(4)]))
        assert {"supervised", "at", "kd", "total"} <= set(terms)
        opt.zero_grad()
        total.backward()
        opt.step()
    t = step.distill.teacher
    assert not t.training and all(p.grad is None for p in t.parameters())
    for k, v in t.state_dict().items():
        assert torch.equal(v, before[k]), k


def _train_cmd(cfg, out, *extra):
    return [sys.executable, "-m", "sekd", "train", "--config", str(cfg), "--out", str(out), *extra]


def test_resume_after_kill_is_bitwise_identical(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'base = "{SMOKE / "student_baseline.toml"}"\n'
        "[data]\nexamples_per_epoch = 24\n"
        "[train]\nepochs = 4\ncheckpoint_every = 2\nlog_every = 1\nvalid_every = 0\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_train_cmd(cfg, tmp_path / "full"), check=True, env=env, capture_output=True)
    # the same run, killed mid-way (after step 5 of 24 is logged), then resumed
    proc = subprocess.Popen(
        _train_cmd(cfg, tmp_path / "cut"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        rows = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
        if any(r["step"] >= 5 for r in rows):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(json.loads(x)["step"] for x in log.read_text().splitlines())
    assert 5 <= killed_at < 24, "the run must be killed mid-way"
    spent = load_checkpoint(tmp_path / "cut" / "last.pt")["seconds"]
    assert spent > 0
    subprocess.run(
        _train_cmd(cfg, tmp_path / "cut", "--resume"), check=True, env=env, capture_output=True
    )
    # the summary's training time covers the killed process too, as its checkpoint recorded it
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert summary["seconds"] == pytest.approx(spent + summary["seconds_this_process"])
    assert "timed_from_step" not in summary
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert a["step"] == b["step"] == 24
    for k, v in a["model"]["state_dict"].items():
        assert torch.equal(v, b["model"]["state_dict"][k]), k
    steps = [r["step"] for r in read_metrics(tmp_path / "cut") if r["kind"] == "train"]
    assert steps == list(range(1, 25))  # the log has each step once


def test_two_gloo_processes_match_single_process_accumulation(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'base = "{SMOKE / "student_baseline.toml"}"\n'
        "[train]\nbatch_size = 4\nepochs = 1\nvalid_every = 2\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            # the README's multi-node form, on one node: rendezvous at an endpoint
            "--nnodes",
            "1",
            "--nproc_per_node",
            "2",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            "127.0.0.1:29531",
            "-m",
            "sekd",
            "train",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "ddp"),
            "--device",
            "cpu",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    acc = tmp_path / "acc.toml"
    acc.write_text(f'base = "{cfg}"\n[train]\naccumulate = 2\n')
    subprocess.run(
        _train_cmd(acc, tmp_path / "single", "--device", "cpu"),
        check=True,
        env=env,
        capture_output=True,
    )
    a, b = _params(tmp_path / "ddp" / "last.pt"), _params(tmp_path / "single" / "last.pt")
    assert load_checkpoint(tmp_path / "ddp" / "last.pt")["step"] == 4
    # validation, shared out over the two processes, ran at steps 2 and 4 and scored every file
    valid = [r for r in read_metrics(tmp_path / "ddp") if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [2, 4]
    assert all(r["failed"] == 0 and np.isfinite(r["pesq"]) for r in valid)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4, msg=k)
    # and the processes really trained: weights moved from the seeded initialisation
    torch.manual_seed(0)
    init = build("tiny_student").state_dict()
    assert any(not torch.allclose(init[k], a[k]) for k in a)


_SHARDED_VALIDATION = """
import json, sys
import torch
import torch.distributed as dist
from sekd.config import load_config
from sekd.data import build_valid_set
from sekd.models import build
from sekd.train import TrainingObjective, validate_sharded

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
cfg = load_config(sys.argv[1])
items = build_valid_set(cfg.data, cfg.seed)
torch.manual_seed(0)
model = build(cfg.model.preset)
torch.manual_seed(100 + rank)  # BatchNorm statistics of each process's own batch
model.train()(torch.randn(2, 1, 4000))
if rank == 0:
    torch.save(model.state_dict(), sys.argv[2] + "/rank0.pt")
objective = TrainingObjective(cfg, model, torch.device("cpu"))
v = validate_sharded(model, items, objective, torch.device("cpu"), rank, world)
assert (v is None) == (rank != 0)
if rank == 0:
    json.dump({"valid": v, "items": len(items)}, open(sys.argv[2] + "/valid.json", "w"))
dist.destroy_process_group()
"""


def test_validation_shared_over_processes_equals_one_process(tmp_path):
    """Under torchrun each process scores its share of the validation files; process 0's
    summary is the one-process validation of its own weights and BatchNorm statistics, though
    the other process's statistics differ."""
    from sekd.data import build_valid_set
    from sekd.train import validate

    script = tmp_path / "v.py"
    script.write_text(_SHARDED_VALIDATION)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'base = "{SMOKE / "student_baseline.toml"}"\n[data]\nvalid_utterances = 5\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", str(script), str(cfg), str(tmp_path)],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    got = json.loads((tmp_path / "valid.json").read_text())
    c = load_config(cfg)
    items = build_valid_set(c.data, c.seed)
    assert got["items"] == len(items) == 5  # 2 processes, one with more files than the other
    torch.manual_seed(0)
    model = build(c.model.preset)
    model.load_state_dict(torch.load(tmp_path / "rank0.pt", weights_only=True))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each process ran
    try:
        want = validate(model, items, TrainingObjective(c, model, torch.device("cpu")), "cpu")
    finally:
        torch.set_num_threads(threads)
    # the same files' scores: equal up to the last bits of the float arithmetic
    assert got["valid"] == pytest.approx(json.loads(json.dumps(want)), rel=1e-12, abs=1e-12)
    assert set(want) >= {"pesq", "stoi", "si_sdri", "gain", "gain_median", "loss", "failed"}


def test_routed_mvat_uses_each_bands_manner_teacher(tmp_path):
    """Beyond the paper: MV-AT + KD from the teacher of each example's SNR band."""
    paths = []
    for k in range(2):
        torch.manual_seed(10 + k)
        paths.append(str(save_model(build("tiny_teacher"), tmp_path / f"t{k}.pt")))
    cfg = config_from_dict(
        {
            "model": {"preset": "tiny_student"},
            "teacher": {"routing": "snr", "checkpoints": paths, "bands": [[0.0], [10.0]]},
            "objective": {"kind": "manner", "at": "mvat", "kd": True},
        }
    )
    torch.manual_seed(0)
    student = build("tiny_student")
    step = TrainingObjective(cfg, student, torch.device("cpu"))
    noisy, clean = torch.randn(4, 1, 4000), 0.3 * torch.randn(4, 1, 4000)
    snr = torch.tensor([0.0, 10.0, 10.0, 0.0])
    total, terms = step({"mixture": noisy, "clean": clean, "snr": snr})
    # by hand: each band's examples with that band's teacher, weighted by their share
    want = 0.0
    for band, idx in ((0, [0, 3]), (1, [1, 2])):
        t, _, _ = step.band_objectives[band](noisy[idx], clean[idx])
        want += 0.5 * float(t)
    assert float(total) == pytest.approx(want, rel=1e-5)
    assert step.band_objectives[0].teacher is not step.band_objectives[1].teacher
    total.backward()
    assert all(p.grad is None for t in step.routed.teachers for p in t.parameters())


def test_identity_init_and_validation_diagnostics(tmp_path):
    cfg = _smoke(
        model={"init": "identity"},
        data={"valid_pairs": ["voicebank-demand"]},
        train={"max_steps": 2, "valid_every": 2},
    )
    train(cfg, tmp_path / "run", progress=False)
    rows = read_metrics(tmp_path / "run")
    assert rows[0]["kind"] == "init" and rows[0]["identity_r2"] > 0.8
    # the noisy input scored on the same validation set, once, for reference
    (inp,) = [r for r in rows if r["kind"] == "valid_input"]
    assert inp["si_sdri"] == 0.0 and inp["gain"] == pytest.approx(1.0, abs=0.3)
    # a silent output's loss, for reference: finite, and not the input's
    assert np.isfinite(inp["silence_loss"]) and inp["silence_loss"] != inp["loss"]
    v = [r for r in rows if r["kind"] == "valid"][-1]
    for k in ("pesq", "stoi", "si_sdr", "si_sdri", "gain", "gain_median"):
        assert np.isfinite(v[k]), k
    # the six bundled VoiceBank-DEMAND training pairs are scored as their own group
    for k in ("real_pesq", "real_gain", "mix_pesq", "mix_si_sdri"):
        assert np.isfinite(v[k]), k
    # the same run with the default initialisation has no init record and other weights
    train(_smoke(train={"max_steps": 2, "valid_every": 2}), tmp_path / "plain", progress=False)
    assert read_metrics(tmp_path / "plain")[0]["kind"] == "valid_input"
    with pytest.raises(ValueError, match="valid_pairs.*'nope'"):
        train(_smoke(data={"valid_pairs": ["nope"]}), tmp_path / "bad", progress=False)


def test_identity_init_of_a_wave_u_net_and_of_a_family_without_one(tmp_path):
    cfg = load_config(
        SMOKE / "snr_teacher1.toml", model={"init": "identity"}, train={"max_steps": 1}
    )
    train(cfg, tmp_path / "unet", progress=False)
    assert read_metrics(tmp_path / "unet")[0]["identity_r2"] > 0.99

    class Plain(torch.nn.Module):  # a user's own family, registered, with no identity init
        def __init__(self, cfg):
            super().__init__()
            self.cfg, self.conv = cfg, torch.nn.Conv1d(1, 1, 3, padding=1)

        def forward(self, x):
            return self.conv(x)

    from sekd.models import registry

    registry.register_family("plain_test", Plain, WaveUNetConfig)
    registry.register("plain_test_tiny", "plain_test", WaveUNetConfig)
    try:
        cfg = load_config(
            SMOKE / "snr_teacher1.toml", model={"init": "identity", "preset": "plain_test_tiny"}
        )
        with pytest.raises(ValueError, match="plain_test_tiny.*Plain.*no identity init"):
            train(cfg, tmp_path / "run", progress=False)
        assert not (tmp_path / "run").exists()  # refused before the folder is made
    finally:
        registry._FAMILIES.pop("plain_test")
        registry._PRESETS.pop("plain_test_tiny")
    with pytest.raises(ValueError, match="model.init"):
        config_from_dict({"model": {"init": "zeros"}})


# ------------------------------------------------------------------- run folder safety
def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_existing_run_is_refused_without_resume_or_overwrite(tmp_path):
    cfg = _smoke(train={"max_steps": 2})
    out = tmp_path / "run"
    train(cfg, out, progress=False)
    before = _snapshot(out)
    with pytest.raises(FileExistsError, match=r"already holds a run.*--resume.*--overwrite"):
        train(cfg, out, progress=False)
    assert _snapshot(out) == before
    # the CLI says the same, exit 2, and changes nothing
    r = subprocess.run(
        _train_cmd(SMOKE / "student_baseline.toml", out, "--max-steps", "2"),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "already holds a run" in r.stderr
    assert _snapshot(out) == before
    # --overwrite replaces it: a fresh run, no stale best.pt of the old model
    train(_smoke(train={"max_steps": 3}), out, overwrite=True, progress=False)
    assert load_checkpoint(out / "last.pt")["step"] == 3
    assert [r["step"] for r in read_metrics(out) if r["kind"] == "train"] == [1, 2, 3]


def test_startup_failure_leaves_the_folder_untouched(tmp_path):
    out = tmp_path / "run"
    train(_smoke(train={"max_steps": 2}), out, progress=False)
    before = _snapshot(out)
    cfg = load_config(
        SMOKE / "student_mvat_dual_kd.toml", teacher={"checkpoints": [str(tmp_path / "no.pt")]}
    )
    with pytest.raises(FileNotFoundError, match="no.pt"):
        train(cfg, out, overwrite=True, progress=False)
    assert _snapshot(out) == before
    with pytest.raises(ValueError, match=r"model.preset must be one of .*tiny_student.*'tny'"):
        _smoke(model={"preset": "tny"})


def test_resume_refuses_another_shape_and_a_longer_onecycle(tmp_path):
    out = tmp_path / "run"
    train(_smoke(train={"max_steps": 2}), out, progress=False)
    with pytest.raises(ValueError, match=r"another shape.*tiny_student"):
        train(_smoke(model={"preset": "cpu_student"}, train={"max_steps": 2}), out, resume=True)
    with pytest.raises(ValueError, match=r"planned for 2 steps with a OneCycle.*--max-steps 2"):
        train(_smoke(train={"max_steps": 4}), out, resume=True, progress=False)
    # a constant schedule can be extended: the resumed run goes on to the new length
    const = {"schedule": "constant"}
    train(_smoke(optim=const, train={"max_steps": 2}), tmp_path / "c", progress=False)
    train(_smoke(optim=const, train={"max_steps": 4}), tmp_path / "c", resume=True)
    assert load_checkpoint(tmp_path / "c" / "last.pt")["step"] == 4
    # resumed from a checkpoint of before training time was recorded: the summary says from
    # which step its time counts
    ck = load_checkpoint(tmp_path / "c" / "last.pt")
    del ck["seconds"], ck["timed_from"]
    torch.save(ck, tmp_path / "c" / "last.pt")
    summary = train(_smoke(optim=const, train={"max_steps": 5}), tmp_path / "c", resume=True)
    assert summary["timed_from_step"] == 4
    assert summary["seconds"] == summary["seconds_this_process"]


@pytest.mark.parametrize("value", ["0", "-3", "ten"])
def test_max_steps_below_one_is_refused(tmp_path, value):
    r = subprocess.run(
        _train_cmd(SMOKE / "student_baseline.toml", tmp_path / "r", "--max-steps", value),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "--max-steps" in r.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_a_clear_error(tmp_path):
    r = subprocess.run(
        _train_cmd(SMOKE / "student_baseline.toml", tmp_path / "r", "--device", "cuda"),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "CUDA is not available" in r.stderr and "devices on this machine: cpu" in r.stderr
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------ input pipeline, syncs
def test_loader_batches_equal_the_seeded_batches_with_and_without_workers():
    from sekd.data import build_train_set, collate, epoch_batches, step_loader

    cfg = _smoke(data={"examples_per_epoch": 24}, train={"batch_size": 4})
    ds = build_train_set(cfg.data, cfg.seed)
    for epoch in (0, 1):
        want = []
        ds.set_epoch(epoch)
        for gb in epoch_batches(len(ds), 4, epoch, cfg.seed)[2:]:
            want.append([collate([ds[i] for i in gb[k::2]]) for k in range(2)])
        for workers in (0, 2):
            got = list(step_loader(ds, epoch, cfg.seed, 4, start=2, accumulate=2,
                                   num_workers=workers))  # fmt: skip
            assert len(got) == len(want) == 4
            for g, w in zip(got, want):
                for gp, wp in zip(g, w):
                    assert gp["name"] == wp["name"]
                    for key in ("mixture", "clean", "snr"):
                        assert torch.equal(gp[key], wp[key]), (workers, key)


def test_training_with_loader_workers_is_bitwise_the_in_process_run(tmp_path):
    a = _smoke(train={"max_steps": 3, "num_workers": 0})
    b = _smoke(train={"max_steps": 3, "num_workers": 2})
    train(a, tmp_path / "a", progress=False)
    train(b, tmp_path / "b", progress=False)
    pa, pb = _params(tmp_path / "a" / "last.pt"), _params(tmp_path / "b" / "last.pt")
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.mark.parametrize("config", ["student_baseline.toml", "student_mvat_dual_kd.toml"])
def test_a_step_synchronises_with_the_host_once(tmp_path, monkeypatch, config):
    from sekd.train import Trainer

    teacher = build("tiny_teacher")
    save_model(teacher, tmp_path / "t.pt")
    cfg = load_config(
        SMOKE / config,
        teacher={"checkpoints": [str(tmp_path / "t.pt")]},
        train={"max_steps": 50, "log_every": 50},
    )
    trainer = Trainer(cfg, tmp_path / "run")
    from sekd.data import step_loader

    batches = list(step_loader(trainer.train_set, 0, cfg.seed, 4))
    trainer.optimisation_step(batches[0])  # warm-up outside the count
    # Adam keeps its step counters on the CPU even for a GPU model (reading them is no sync)
    counters = {id(st["step"]) for st in trainer.opt.state.values()}
    calls = []
    for name in ("item", "__bool__", "__float__", "__int__", "tolist", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _name=name, _orig=original, **k):
            if id(self) not in counters:
                calls.append(_name)
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    for parts in batches[1:3]:
        trainer.optimisation_step(parts)
    monkeypatch.undo()
    assert calls == ["__bool__", "__bool__"], calls  # one fused finiteness check per step


def test_the_readme_gpu_commands_run_on_the_cpu(tmp_path, fake_voicebank):
    """The README's 'Training on your own GPUs' commands, at toy size on the CPU: prepare
    VoiceBank-DEMAND, train the paper profile's teacher config with overrides, resume it, and
    use an imported checkpoint as the MV-AT teacher of a student."""
    cache = tmp_path / "vb16k"
    r = subprocess.run([sys.executable, "-m", "sekd", "prepare-voicebank", str(fake_voicebank),
                        "--out", str(cache)], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0 and "data.voicebank_root" in r.stdout, r.stderr
    toy = [f"--set={kv}" for kv in ("model.preset=tiny_teacher", "data.segment=8000",
                                     "data.hop=2000", "data.valid_utterances=1",
                                     "data.valid_seconds=1.0")] + ["--device", "cpu"]  # fmt: skip
    paper = ROOT / "configs" / "paper"
    run = tmp_path / "teacher"
    cmd = _train_cmd(paper / "teacher.toml", run, "--set", f"data.voicebank_root={cache}", *toy)
    r = subprocess.run([*cmd, "--max-steps", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["data"]["voicebank_root"] == str(cache)
    # preempted: the same command with --resume continues from last.pt
    r = subprocess.run([*cmd, "--max-steps", "2", "--resume"], capture_output=True, text=True)
    assert r.returncode == 0 and load_checkpoint(run / "last.pt")["step"] == 2, r.stderr
    # a student distilled from that teacher (as from an imported official checkpoint)
    student = [*toy[:-2], "--set", "model.preset=tiny_student", "--device", "cpu"]
    r = subprocess.run(
        [*_train_cmd(paper / "student_mvat_dual_kd.toml", tmp_path / "student"),
         "--set", f"data.voicebank_root={cache}", "--set",
         f'teacher.checkpoints=["{run / "best.pt"}"]', *student, "--max-steps", "1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert {"at", "kd"} <= set(read_metrics(tmp_path / "student")[-1])
    # the summary records which weights it learned from
    summary = json.loads((tmp_path / "student" / "summary.json").read_text())
    assert summary["teachers"] == [fingerprint(load_model(run / "best.pt"))]


def test_gradient_clipping_scales_the_parameters_gradients(tmp_path):
    from sekd.data import step_loader
    from sekd.train import Trainer

    trainer = Trainer(_smoke(optim={"grad_clip": 1e-3}, train={"max_steps": 2}), tmp_path / "r")
    (parts,) = [next(iter(step_loader(trainer.train_set, 0, 0, 4)))]
    trainer.optimisation_step(parts)
    grads = [p.grad for p in trainer.student.parameters() if p.grad is not None]
    assert float(torch.nn.utils.get_total_norm(grads)) <= 1e-3 * (1 + 1e-4)


def test_init_from_a_checkpoint_starts_at_its_weights(tmp_path):
    first = load_config(SMOKE / "snr_teacher1.toml", train={"max_steps": 2})
    train(first, tmp_path / "a", progress=False)
    start = tmp_path / "a" / "best.pt"
    cfg = load_config(
        SMOKE / "snr_teacher1.toml",
        model={"init": "checkpoint", "checkpoint": str(start)},
        train={"max_steps": 1, "valid_every": 1},
    )
    from sekd.train import Trainer

    t = Trainer(cfg, tmp_path / "b")
    want = load_checkpoint(start)["model"]["state_dict"]
    got = t.student.state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert read_metrics(tmp_path / "b")[0] == {"kind": "init", "step": 0, "checkpoint": str(start)}
    # a checkpoint of another shape, a missing one, and half a setting are refused up front
    other = save_model(build("waveunet_cpu"), tmp_path / "other.pt", "waveunet_cpu")
    for path, err, msg in [
        (other, ValueError, "holds a WaveUNet.*same preset"),
        (tmp_path / "none.pt", FileNotFoundError, "model.checkpoint not found.*none.pt"),
    ]:
        bad = load_config(
            SMOKE / "snr_teacher1.toml", model={"init": "checkpoint", "checkpoint": str(path)}
        )
        with pytest.raises(err, match=msg):
            train(bad, tmp_path / "c", progress=False)
        assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="needs model.checkpoint"):
        load_config(SMOKE / "snr_teacher1.toml", model={"init": "checkpoint"})
    with pytest.raises(ValueError, match="needs model.init = checkpoint"):
        load_config(SMOKE / "snr_teacher1.toml", model={"checkpoint": str(start)})


def test_a_model_stored_at_float16_is_the_model_with_its_weights_rounded(tmp_path):
    """save_model(dtype="float16") stores the floating-point tensors at float16 (integer
    buffers as they are) in about half the bytes; read back, the model computes exactly what
    the float32 model with its weights rounded to float16 computes. An unknown dtype is named."""
    torch.manual_seed(0)
    model = build("waveunet_cpu").eval()
    full = save_model(model, tmp_path / "full.pt", "waveunet_cpu")
    half = save_model(model, tmp_path / "half.pt", "waveunet_cpu", dtype="float16")
    assert 0.45 < half.stat().st_size / full.stat().st_size < 0.55
    stored = load_checkpoint(half)["state_dict"]
    for k, v in model.state_dict().items():
        assert stored[k].dtype == (torch.float16 if v.is_floating_point() else v.dtype), k
    rounded = build("waveunet_cpu").eval()
    rounded.load_state_dict({k: v.half() if v.is_floating_point() else v
                             for k, v in model.state_dict().items()})  # fmt: skip
    x = torch.randn(1, 1, 16384)
    with torch.no_grad():
        got, want, exact = load_model(half)(x), rounded(x), model(x)
    assert torch.equal(got, want) and not torch.equal(got, exact)
    assert fingerprint(load_model(half)) == fingerprint(rounded)
    with pytest.raises(ValueError, match="must be one of float32, float16; got 'int8'"):
        save_model(model, tmp_path / "bad.pt", dtype="int8")
    assert not (tmp_path / "bad.pt").exists()
    with pytest.raises(ValueError, match="export.dtype must be one of float32, float16"):
        config_from_dict({"export": {"dtype": "bfloat16"}})


def test_export_float16_stores_best_pt_as_scored_and_last_pt_in_full(tmp_path):
    """With export.dtype = float16, best.pt (what is scored, committed and distilled from)
    holds the weights at float16 and last.pt (what resumes) at float32."""
    cfg = load_config(
        SMOKE / "snr_teacher1.toml", train={"max_steps": 2}, export={"dtype": "float16"}
    )
    train(cfg, tmp_path / "a", progress=False)
    best = load_checkpoint(tmp_path / "a" / "best.pt")["model"]["state_dict"]
    last = load_checkpoint(tmp_path / "a" / "last.pt")["model"]["state_dict"]
    floats = [k for k, v in last.items() if v.is_floating_point()]
    assert floats and {best[k].dtype for k in floats} == {torch.float16}
    assert {last[k].dtype for k in floats} == {torch.float32}


def test_silence_loss_is_the_loss_of_a_zero_output():
    from sekd.data.training import ValidItem
    from sekd.train import silence_loss

    cfg = load_config(SMOKE / "snr_teacher1.toml")  # objective mse: 0.5 * mean(clean^2)
    step = TrainingObjective(cfg, build("waveunet_tiny"), torch.device("cpu"))
    rng = np.random.default_rng(0)
    items = [
        ValidItem(f"u{k}", rng.normal(size=800).astype(np.float32), c, 0.0)
        for k, c in enumerate(rng.normal(scale=[[0.1], [0.3]], size=(2, 800)).astype(np.float32))
    ]
    want = np.mean([0.5 * np.mean(it.clean.astype(np.float64) ** 2) for it in items])
    assert silence_loss(items, step, torch.device("cpu")) == pytest.approx(want, rel=1e-5)
    assert np.isnan(silence_loss([], step, torch.device("cpu")))


def test_si_sdr_objective_trains_on_its_loss_and_validates_with_it():
    import dataclasses

    from sekd.distill import ObjectiveConfig
    from sekd.losses import si_sdr_gain_loss

    cfg = load_config(SMOKE / "snr_teacher1.toml")
    cfg = dataclasses.replace(cfg, objective=ObjectiveConfig(kind="si_sdr", gain_weight=3.0))
    torch.manual_seed(0)
    model = build("waveunet_tiny")
    step = TrainingObjective(cfg, model, torch.device("cpu"))
    noisy, clean = torch.randn(2, 1, 2048), 0.5 * torch.randn(2, 1, 2048)
    total, terms = step({"mixture": noisy, "clean": clean, "snr": torch.zeros(2)})
    want, parts = si_sdr_gain_loss(model(noisy), clean, 3.0)
    assert total.item() == pytest.approx(want.item(), rel=1e-6) and total.requires_grad
    assert set(terms) == {"si_sdr", "gain", "total"}
    assert terms["gain"].item() == pytest.approx(parts["gain"].item(), rel=1e-6)
    out = model(noisy[:1]).detach()
    valid = step.valid_loss(out, noisy[:1], clean[:1])
    assert valid == pytest.approx(si_sdr_gain_loss(out, clean[:1], 3.0)[0].item(), rel=1e-6)
