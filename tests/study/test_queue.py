"""sekd.study.queue."""

import json

import pytest
import torch


def test_queue_trains_resumes_and_skips(monkeypatch, tmp_path, tmp_study_paths):
    import sekd.study.runs as runs
    from sekd.study.queue import run_queue

    monkeypatch.setattr(runs, "paths", tmp_study_paths)
    done = run_queue("smoke", ["student_baseline:3", "student_baseline:4"])
    assert [d["name"] for d in done] == ["student_baseline", "student_baseline"]
    out = tmp_path / "runs" / "smoke" / "student_baseline_seed3"
    assert (out / "summary.json").is_file()
    assert json.loads((out / "config.json").read_text())["seed"] == 3
    # a run stopped before its first checkpoint (logs, no last.pt) starts again
    early = tmp_path / "runs" / "smoke" / "student_baseline_seed5"
    early.mkdir()
    (early / "config.json").write_text("{}")
    (early / "metrics.jsonl").write_text('{"kind": "init", "step": 0}\n')
    (done5,) = run_queue("smoke", ["student_baseline:5"])
    assert done5["steps"] == done5["total_steps"] and (early / "summary.json").is_file()
    # a finished run is skipped; an interrupted one (no summary) is resumed, not restarted
    (tmp_path / "runs" / "smoke" / "student_baseline_seed4" / "summary.json").unlink()
    done = run_queue("smoke", ["student_baseline:3", "student_baseline:4"])
    assert len(done) == 1 and done[0]["steps"] == done[0]["total_steps"]


def test_queue_save_commits_finished_runs_and_resumes_saved_ones_elsewhere(
    monkeypatch, tmp_path, capsys, tmp_study_paths
):
    import shutil

    import sekd.study.runs as runs
    from sekd.study.queue import main, run_queue

    monkeypatch.setattr(runs, "COMMITTED", tmp_path / "checkpoints")
    monkeypatch.setattr(runs, "paths", tmp_study_paths)
    items = ["student_baseline:3", "student_baseline:4", "student_kd_only:5"]
    run_queue("smoke", items[:2])
    cut = tmp_path / "runs" / "smoke" / "student_baseline_seed4"
    (cut / "summary.json").unlink()  # seed 4 as if the machine went away before it finished
    capsys.readouterr()
    assert main(["--profile", "smoke", "--save", *items]) == 0
    said = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1].strip().split(",")[0] for line in said[:3]] == [
        "finished",
        "in progress",
        "not started",
    ]
    saved = tmp_path / "checkpoints" / "smoke" / "student_baseline_seed4" / "in_progress"
    # the budget counts the one committed model, not the saved in-progress state beside it
    model = tmp_path / "checkpoints" / "smoke" / "student_baseline_seed3" / "model.pt"
    assert runs.committed_model_bytes() == {"smoke/student_baseline_seed3": model.stat().st_size}
    assert said[3].startswith(f"committed models: {model.stat().st_size:,} bytes, within")
    assert sorted(p.name for p in saved.iterdir()) == [
        "best.pt",
        "config.json",
        "last.pt",
        "metrics.jsonl",
    ]
    assert (tmp_path / "checkpoints" / "smoke" / "student_baseline_seed3" / "model.pt").is_file()
    # saved again, a run committed already is left as it is (no new bytes for git)
    model.write_bytes(b"as committed")
    assert main(["--profile", "smoke", "--save", items[0]]) == 0
    assert "student_baseline_seed3: finished, committed already" in capsys.readouterr().out
    assert model.read_bytes() == b"as committed"
    assert not (tmp_path / "runs" / "smoke" / "student_kd_only_seed5").exists()
    with pytest.raises(ValueError, match="finished"):
        runs.save_progress("smoke", "student_baseline", 3)
    # a run folder with state of its own is never written over by the committed state
    last = torch.load(cut / "last.pt", weights_only=True)["model"]["state_dict"]
    (cut / "last.pt").write_bytes(b"newer")
    assert not runs.restore_progress("smoke", "student_baseline", 4)
    assert (cut / "last.pt").read_bytes() == b"newer"
    # on a fresh machine (runs/ gone) the queue resumes from the committed state, not anew
    shutil.rmtree(tmp_path / "runs")
    done = run_queue("smoke", items[1:2])
    assert capsys.readouterr().out.count("restored the committed state") == 1
    assert len(done) == 1 and done[0]["steps"] == done[0]["total_steps"]
    resumed = torch.load(cut / "last.pt", weights_only=True)["model"]["state_dict"]
    assert all(torch.equal(v, resumed[k]) for k, v in last.items())
    assert (cut / "metrics.jsonl").read_text() == (saved / "metrics.jsonl").read_text()
    # committing the finished run removes its state in progress
    runs.commit_run("smoke", "student_baseline", 4)
    assert not saved.exists()
    # on a fresh machine a run committed with today's config is skipped, not trained again...
    shutil.rmtree(tmp_path / "runs")
    assert runs.committed_current("smoke", "student_baseline", 4)
    # how a model is stored ([export]) is not its recipe: differing only there, it is current
    stored = runs.committed_dir("smoke", "student_baseline", 4) / "config.json"
    as_half = {**json.loads(stored.read_text()), "export": {"dtype": "float16"}}
    stored.write_text(json.dumps(as_half))
    assert runs.committed_current("smoke", "student_baseline", 4)
    # nor is the checkout it was read in: committed elsewhere, it is current here
    elsewhere = {**as_half, "source": "/elsewhere/configs/smoke/student_baseline.toml"}
    stored.write_text(json.dumps(elsewhere))
    assert runs.committed_current("smoke", "student_baseline", 4)
    assert run_queue("smoke", items[:2]) == []
    assert "committed with this config already" in capsys.readouterr().out
    # ...but one committed with another recipe (or without its config) is trained anew
    cfg_file = runs.committed_dir("smoke", "student_baseline", 3) / "config.json"
    cfg_file.write_text(cfg_file.read_text().replace('"lr": ', '"lr": 0.5, "was": '))
    (runs.committed_dir("smoke", "student_baseline", 4) / "config.json").unlink()
    assert not runs.committed_current("smoke", "student_baseline", 3)
    assert len(run_queue("smoke", items[:2])) == 2


def test_queue_plan_is_steps_left_times_measured_speed_times_the_wall_ratio(
    monkeypatch, tmp_path, capsys, tmp_study_paths
):
    import sekd.study.queue as queue
    import sekd.study.runs as runs

    monkeypatch.setattr(runs, "paths", tmp_study_paths)
    monkeypatch.setattr(queue, "COMMITTED", tmp_path / "checkpoints")

    def log(folder, steps_per_s, steps):
        folder.mkdir(parents=True)
        rows = [{"kind": "train", "step": s, "steps_per_s": steps_per_s} for s in steps]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    # a finished committed student: 100 steps at 2 steps/s took 75 s on the wall (x1.5)
    done = tmp_path / "checkpoints" / "smoke" / "student_baseline_seed7"
    log(done, 2.0, (25, 50, 75, 100))
    (done / "summary.json").write_text(json.dumps({"steps": 100, "seconds": 75.0}))
    # a run in progress on this machine, logged up to step 3
    log(tmp_path / "runs" / "smoke" / "student_kd_only_seed8", 1.0, (1, 2, 3))
    speed = tmp_path / "speed.json"
    per_step = {"student alone": 0.2, "student + MV-AT + KD": 0.5}
    speed.write_text(json.dumps({"args": {"student": "x"}, "seconds_per_step": per_step}))
    out = tmp_path / "plan.json"
    items = ["student_baseline:9", "student_kd_only:8"]
    assert queue.main(["--profile", "smoke", "--plan", str(speed), "--json", str(out), *items]) == 0
    plan = json.loads(out.read_text())
    from sekd.data.training import build_train_set

    cfg = runs.run_config("smoke", "student_baseline")  # its length: epochs, as the trainer counts
    total = cfg.train.epochs * (len(build_train_set(cfg.data, cfg.seed)) // cfg.train.batch_size)
    assert queue.planned_steps(cfg) == total > 3
    assert plan["wall_over_training"] == pytest.approx(1.5)
    assert [(r["run"], r["arm"], r["steps_left"]) for r in plan["runs"]] == [
        ("student_baseline_seed9", "student alone", total),
        ("student_kd_only_seed8", "student + MV-AT + KD", total - 3),
    ]
    want = (total * 0.2 + (total - 3) * 0.5) * 1.5 / 3600
    assert plan["core_hours"] == pytest.approx(want)
    assert not (tmp_path / "runs" / "smoke" / "student_baseline_seed9").exists()  # none trained
    assert "core-hours" in capsys.readouterr().out
    # with no finished student to time the wall by, it says so
    monkeypatch.setattr(queue, "COMMITTED", tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="no finished student"):
        queue.plan_queue("smoke", items, json.loads(speed.read_text()))
    # a run on folders of pairs has no length before it is read: plan refuses it by name
    from dataclasses import replace

    folder = replace(cfg, data=replace(cfg.data, source="paired"))
    with pytest.raises(ValueError, match="student_baseline: set train.max_steps"):
        queue.planned_steps(folder)
