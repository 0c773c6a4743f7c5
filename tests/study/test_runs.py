"""sekd.study.runs."""

import json
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def test_committed_run_is_restored_instead_of_trained(tmp_path, monkeypatch, tmp_study_paths):
    import sekd.study.runs as study
    from sekd.models import build, save_model

    monkeypatch.setattr(study, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(study, "paths", tmp_study_paths)
    src = tmp_path / "runs" / "smoke" / "student_baseline"
    src.mkdir(parents=True)
    model = build("tiny_student")
    save_model(model, src / "best.pt")
    (src / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "total": 1.0}\n')
    (src / "summary.json").write_text('{"steps": 1}')
    committed = study.commit_run("smoke", "student_baseline")
    assert (committed / "model.pt").is_file()
    import shutil

    shutil.rmtree(src)
    # a run in progress under runs/ (no summary yet) is never written over by the committed one
    src.mkdir(parents=True)
    (src / "last.pt").write_bytes(b"in progress")
    (src / "metrics.jsonl").write_text('{"kind": "train", "step": 7, "total": 0.5}\n')
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = study.ensure_run("smoke", "student_baseline")  # read where it is, not trained
    assert out == committed and json.loads((out / "summary.json").read_text()) == {"steps": 1}
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    restored = study.load_run_model("smoke", "student_baseline")
    for k, v in model.state_dict().items():
        assert (restored.state_dict()[k] == v).all()
    # committed="cpu" in a notebook: committed runs only, a missing one is an error, not training
    assert study.committed_runs("smoke") == ["student_baseline"]
    monkeypatch.setitem(study._TRAINING, "allowed", True)
    assert study.use_committed("smoke") == "smoke"
    assert study.ensure_run("smoke", "student_baseline") == committed
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    with pytest.raises(RuntimeError, match="student_kd_only .*not committed.*student_baseline"):
        study.ensure_run("smoke", "student_kd_only")
    assert not (tmp_path / "runs" / "smoke" / "student_kd_only" / "last.pt").exists()
    with pytest.raises(ValueError, match="nope"):
        study.use_committed("nope")


def test_a_student_committed_from_a_replaced_teacher_is_not_current(
    monkeypatch, tmp_path, capsys, tmp_study_paths
):
    import shutil
    from dataclasses import replace

    import sekd.study.queue as queue
    import sekd.study.runs as runs
    from sekd.models import build, fingerprint, load_model, save_model

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(runs, "paths", tmp_study_paths)
    teacher = tmp_path / "runs" / "smoke" / "teacher" / "best.pt"
    real_config = runs.run_config

    def run_config(profile, name, seed=None):  # the profile's config, teacher under tmp_path
        cfg = real_config(profile, name, seed)
        return replace(cfg, teacher=replace(cfg.teacher, checkpoints=(str(teacher),)))

    monkeypatch.setattr(runs, "run_config", run_config)
    torch.manual_seed(0)
    save_model(build("tiny_teacher"), teacher)
    student = runs.run_dir("smoke", "student_kd_only", 3)
    student.mkdir(parents=True)
    save_model(build("tiny_student"), student / "best.pt")
    (student / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "total": 1.0}\n')
    (student / "config.json").write_text(
        json.dumps(run_config("smoke", "student_kd_only", 3).to_dict())
    )
    (student / "summary.json").write_text('{"steps": 1}')  # written before teachers were recorded
    summary = json.loads(
        (runs.commit_run("smoke", "student_kd_only", 3) / "summary.json").read_text()
    )
    assert summary["teachers"] == [fingerprint(load_model(teacher))]  # added when committed
    assert runs.committed_current("smoke", "student_kd_only", 3)
    save_model(build("tiny_teacher"), teacher)  # the teacher retrained: other weights
    assert not runs.committed_current("smoke", "student_kd_only", 3)
    teacher.unlink()  # no teacher at all
    assert not runs.committed_current("smoke", "student_kd_only", 3)
    # a queue skips a student whose teacher run is still going, and goes on with the rest
    save_model(build("tiny_teacher"), teacher)  # best.pt so far, no summary.json
    shutil.rmtree(student)
    capsys.readouterr()
    assert queue.run_queue("smoke", ["student_kd_only:3"]) == []
    assert f"skipped, its teacher run {teacher.parent} has not finished" in capsys.readouterr().out
    assert not student.exists()


def test_a_stale_committed_run_is_read_with_a_warning(monkeypatch, tmp_path, tmp_study_paths):
    import warnings

    import sekd.study.runs as runs
    from sekd.models import build, save_model

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(runs, "paths", tmp_study_paths)
    folder = runs.committed_dir("smoke", "student_baseline", 3)
    folder.mkdir(parents=True)
    save_model(build("tiny_student"), folder / "model.pt")
    (folder / "summary.json").write_text('{"steps": 1}')
    config = runs.run_config("smoke", "student_baseline", 3).to_dict()
    (folder / "config.json").write_text(json.dumps(config))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the current one: read in silence
        assert runs.find_run("smoke", "student_baseline", 3) == folder
    config["optim"]["lr"] *= 2  # committed with an older recipe: read, and said so
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.warns(
        runs.StaleRunWarning, match="student_baseline_seed3 was trained with another"
    ):
        assert runs.find_run("smoke", "student_baseline", 3) == folder


def test_students_of_a_fresh_checkout_read_the_committed_teachers(
    monkeypatch, tmp_path, tmp_study_paths
):
    import sekd.study.runs as runs
    from sekd.config import load_config
    from sekd.models import build, save_model

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    missing = [str(tmp_path / "runs" / "smoke" / f"snr_teacher{i}" / "best.pt") for i in (1, 2)]
    elsewhere = str(tmp_path / "mine.pt")  # a user's own path: never replaced
    cfg = load_config(
        ROOT / "configs" / "smoke" / "snr_s2.toml",
        teacher={"checkpoints": [*missing, elsewhere], "bands": [[-20.0], [0.0], [10.0]]},
    )
    assert runs.committed_teachers("smoke", cfg) == cfg  # nothing committed: as it was
    committed = runs.committed_dir("smoke", "snr_teacher1") / "model.pt"
    committed.parent.mkdir(parents=True)
    save_model(build("waveunet_tiny"), committed)
    got = runs.committed_teachers("smoke", cfg).teacher.checkpoints
    assert got == (str(committed), missing[1], elsewhere)
    # a teacher trained on this machine is used before the committed one
    Path(missing[0]).parent.mkdir(parents=True)
    Path(missing[0]).write_bytes(b"")
    assert runs.committed_teachers("smoke", cfg) == cfg
    # ... once it has finished: a student never distils from the best.pt of a run in progress
    assert runs.unfinished_teachers("smoke", cfg) == [Path(missing[0]).parent]
    monkeypatch.setattr(runs, "paths", tmp_study_paths)
    monkeypatch.setattr(runs, "run_config", lambda *a: cfg)
    with pytest.raises(RuntimeError, match="snr_teacher1 has not finished"):
        runs.train_run("smoke", "snr_s2")
    assert not (tmp_path / "runs" / "smoke" / "snr_s2").exists()  # nothing started
    (Path(missing[0]).parent / "summary.json").write_text("{}")
    assert runs.unfinished_teachers("smoke", cfg) == []
    assert runs.committed_teachers("quick", cfg) == cfg  # another profile's runs: untouched


def test_committed_models_stay_within_the_checkpoint_budget(monkeypatch, tmp_path):
    """The repository's committed finished models total under CHECKPOINT_BUDGET_BYTES, and the
    budget line says OVER once they would not."""
    import sekd.study.runs as runs

    sizes = runs.committed_model_bytes()
    assert sizes, "no committed model found under checkpoints/"
    total = sum(sizes.values())
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    assert total < runs.CHECKPOINT_BUDGET_BYTES, f"{total:,} bytes; largest: {largest}"
    assert "within" in runs.budget_line()
    folder = tmp_path / "checkpoints" / "cpu" / "big"
    folder.mkdir(parents=True)
    with open(folder / "model.pt", "wb") as f:  # a sparse file of the budget's size
        f.truncate(runs.CHECKPOINT_BUDGET_BYTES)
    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    assert runs.committed_model_bytes() == {"cpu/big": runs.CHECKPOINT_BUDGET_BYTES}
    assert " OVER the budget" in runs.budget_line()


def test_committed_models_are_stored_at_their_configs_export_dtype():
    """Every committed finished model holds its floating-point weights at the precision its
    run's config names ([export] dtype): the SNR study of the cpu profile at float16."""

    import sekd.study.runs as runs
    from sekd.models import load_checkpoint

    seen = set()
    for f in sorted(runs.COMMITTED.glob("*/*/model.pt")):
        if not (f.parent / "config.json").is_file():
            continue  # committed before configs were: stale, and said so where it is read
        name, seed = re.fullmatch(r"(.*?)(?:_seed(\d+))?", f.parent.name).groups()
        want = runs.run_config(f.parent.parent.name, name, seed and int(seed)).export.dtype
        dtypes = {str(v.dtype) for v in load_checkpoint(f)["state_dict"].values()
                  if v.is_floating_point()}  # fmt: skip
        assert dtypes == {f"torch.{want}"}, (f, dtypes)
        seen.add(want)
    assert seen == {"float32", "float16"}


def test_a_committed_config_names_the_checkouts_files_relative_to_it():
    """commit_run writes the paths of a config that lie in the checkout relative to its root
    (others as they are), so a committed run trained from a file of the repository (a teacher
    trained on from another one's weights) is current in every checkout, this one included."""

    import sekd.study.runs as runs
    from sekd.data.corpus import REPO_ROOT

    raw = {"model": {"checkpoint": str(REPO_ROOT / "checkpoints/cpu/x/model.pt")},
           "teacher": {"checkpoints": [str(REPO_ROOT / "runs/cpu/t/best.pt"), "/else/t.pt"]},
           "data": {"noisy_dir": "", "clean_dir": "rel/dir"}, "seed": 3}  # fmt: skip
    out = runs._portable(raw)
    assert out["model"]["checkpoint"] == "checkpoints/cpu/x/model.pt"
    assert out["teacher"]["checkpoints"] == ["runs/cpu/t/best.pt", "/else/t.pt"]
    assert out["data"] == raw["data"] and out["seed"] == 3
    assert raw["model"]["checkpoint"].startswith(str(REPO_ROOT))  # the input is left as it is
    initialised = 0
    for f in sorted(runs.COMMITTED.glob("*/*/config.json")):
        if json.loads(f.read_text())["model"]["init"] != "checkpoint":
            continue
        name, seed = re.fullmatch(r"(.*?)(?:_seed(\d+))?", f.parent.name).groups()
        assert runs.committed_current(f.parent.parent.name, name, seed and int(seed)), f
        initialised += 1
    assert initialised >= 1


def test_runs_that_do_not_depend_on_each_other_train_side_by_side(monkeypatch):
    """Two smoke runs of seeds no other test uses, trained in two 1-thread queue processes."""
    import shutil

    from sekd.study import runs

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runs.os, "cpu_count", lambda: 2)
    assert runs.parallel_workers() == 2
    wanted = [("student_baseline", 901), ("student_baseline", 902)]
    folders = [runs.run_dir("smoke", n, s) for n, s in wanted]
    try:
        got = runs.ensure_runs("smoke", wanted)
        assert got == folders and all((f / "summary.json").is_file() for f in folders)
        logs = [runs.paths("smoke").runs / f"parallel_queue_{i}.log" for i in (0, 1)]
        for log, folder in zip(logs, folders):  # each queue trained one of them
            assert f"{folder}: start" in log.read_text()
        assert runs.ensure_runs("smoke", wanted) == folders  # finished: nothing trains again
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert runs.parallel_workers() == 1
    finally:
        for f in folders:
            shutil.rmtree(f, ignore_errors=True)
