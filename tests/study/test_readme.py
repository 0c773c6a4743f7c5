import json
from pathlib import Path

from sekd.metrics import QUALITY
from sekd.study.readme import glance_block, results_block


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _mvat_files(res):
    metrics = {k: 1.0 for k in QUALITY}
    _write(
        res / "mvat_table1_voicebank.json",
        [
            {"model": "noisy", "seeds": 1, **metrics, "pesq": 1.9, "enhances": None},
            {"model": "teacher", "seeds": 1, **metrics, "pesq": 2.5, "enhances": True},
            {"model": "student_baseline", "seeds": 3, **metrics, "pesq": 2.0,
             "pesq_std_over_seeds": 0.0421, "enhances": True},
            {"model": "student_mvat_dual_q1", "seeds": 3, **metrics, "pesq": 1.9,
             "enhances": False},
        ],
    )  # fmt: skip
    eff = {"metric": "pesq", "diff": 0.05, "ci_low": 0.01, "ci_high": 0.09, "pairs": 31}
    _write(
        res / "mvat_effect_voicebank.json",
        [
            {"method": "mvat_dual_q1", **eff, "seeds": 3, "diff_per_seed": [0.04, 0.05, 0.06],
             "paper": 0.06},
            {"method": "mvat_dual_kd", **eff, "ci_low": -0.2, "ci_high": -0.1, "seeds": 1,
             "paper": 0.07},
            {"method": "mvat_dual_mean", **eff, "seeds": 1},
            {"method": "mvat_dual_kd_at50", **eff, "seeds": 1},
        ],
    )  # fmt: skip
    _write(
        res / "mvat_preconditions.json",
        [
            {"check": "teacher - noisy, PESQ", "set": "voicebank", "diff": 0.6, "ci_low": 0.4,
             "ci_high": 0.8, "pairs": 31, "margin": 0.3, "holds": True},
            {"check": "teacher output gain on clean", "set": "voicebank", "diff": -0.5,
             "margin": 0.0, "holds": False},
        ],
    )  # fmt: skip


def _snr_files(res):
    _write(
        res / "snr_table3.json",
        [{"model": "S1 (no teacher)", "seeds": 3, "pesq": 1.2, "stoi": 0.65, "si_sdri": 1.0,
          "files": 810, "failed": 0},
         {"model": "S2 (SNR teachers)", "seeds": 3, "pesq": 1.25, "stoi": 0.66, "si_sdri": 1.5,
          "files": 810, "failed": 0}],
    )  # fmt: skip
    _write(
        res / "snr_effect.json",
        [{"metric": "pesq", "group": "all", "diff": 0.014, "ci_low": -0.008, "ci_high": 0.035,
          "pairs": 810, "seeds": 3, "diff_per_seed": [0.01, 0.02, 0.012],
          "direction": "not apart from"},
         {"metric": "stoi", "group": "-5 dB", "diff": 9.0, "ci_low": 8.0, "ci_high": 10.0,
          "pairs": 90, "direction": "above"}],
    )  # fmt: skip
    _write(
        res / "snr_preconditions.json",
        [{"teacher": "snr_teacher1", "snrs": [-20.0, -15.0], "files": 180, "pesq_diff": 0.01,
          "pesq_ci_low": -0.01, "pesq_ci_high": 0.03, "si_sdri_diff": 5.0, "holds": False}],
    )  # fmt: skip


def test_the_glance_block_has_each_model_its_effect_the_budgets_and_the_three_questions(tmp_path):
    res = tmp_path / "results" / "cpu"
    assert "No `cpu` results" in glance_block("cpu", root=tmp_path)
    _mvat_files(res)
    _snr_files(res)
    text = glance_block("cpu", root=tmp_path)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    snr_rows = {"S1, the U-Net student alone", "S2, taught by the SNR band teachers"}
    assert set(rows) == {"model", "teacher", "baseline student", "MV-AT", *snr_rows}
    assert "| 2.500 |" in rows["teacher"] and "2.000 ± 0.042" in rows["baseline student"]
    assert "+0.050 [+0.010, +0.090] (paper +0.06)" in rows["MV-AT"]
    assert "| SNR test grid |" in rows["S1, the U-Net student alone"]
    assert "+0.014 [-0.008, +0.035]" in rows["S2, taught by the SNR band teachers"]
    assert (
        "- MV-AT: 10,000 steps of 4 x 1 s (about 11 h of audio), a 2.8M-parameter teacher; " in text
    )
    assert "the paper: 350 epochs at batch 4, a MANNER-B teacher of 24.07M parameters." in text
    assert "- SNR teachers: 3,000 steps of 16 x 1.024 s (about 14 h of audio), 4 teachers" in text
    # the glance is brief: each answer's grouped figures, the sentences are in docs/results.md
    assert (
        "1. **The AT weight.** *PESQ:* Above the baseline: MV-AT + KD, AT weighted to ~50 % "
        "+0.050 [+0.010, +0.090] (1 seed)." in text
    )
    assert "MV-AT + KD, AT weighted to ~50 % is +0.050" not in text
    assert "2. **The student's size.** The paper's 5.3GF student is not finished yet" in text
    assert "(the paper: 350 epochs at batch 4): No paired validation trend is recorded yet" in text


def test_the_results_block_holds_every_table_and_verdict_in_order(tmp_path):
    res = tmp_path / "results" / "cpu"
    _mvat_files(res)
    text = results_block("cpu", root=tmp_path)
    assert "SNR-based" not in text and "## Figures" not in text
    assert (
        "| teacher - noisy, PESQ | voicebank | 0.600 | 0.400 | 0.800 | 31 | 0.300 | yes |" in text
    )
    assert "| teacher output gain on clean | voicebank | -0.500 |  |  |  | 0 | **no** |" in text
    assert "does not meet every precondition" in text
    assert "| *paper: MANNER-S-1.5GF (Baseline)* |  | 2.88 | 0.94 |" in text
    assert "| MV-AT with eq. 2 as a per-frame mean | +0.050 [+0.010, +0.090] |" in text
    assert (
        "per seed +0.040, +0.050, +0.060" in text and "reports +0.06: this agrees with it" in text
    )
    assert "reports +0.07: this contradicts it" in text
    assert text.index("Preconditions") < text.index("Table 1") < text.index("distillation effect")
    _snr_files(res)
    (res / "figures").mkdir()
    (res / "figures" / "06_forest.png").write_bytes(b"png")
    text = results_block("cpu", root=tmp_path)
    snr = text[text.index("## SNR-based") :]
    said = [
        "**snr_teacher1 does not beat the noisy input in its band**",
        "| snr_teacher1 | 180 | -20, -15 | 0.010 | -0.010 | 0.030 | 5.00 |",
        "| S2 (SNR teachers) | 3 | **1.250** | **0.660** | **1.50** |",
        "- S2 - S1 = +0.014 [-0.008, +0.035] PESQ over 810 files, 3 seeds; per seed",
        "Teachers that miss their precondition: snr_teacher1.",
    ]
    assert [s for s in said if s not in snr] == []
    assert (
        "![every distillation effect" in text and "(../results/cpu/figures/06_forest.png)" in text
    )
    assert "07_forest" not in text  # a figure that is not there is not linked


def test_the_size_line_adds_up_the_committed_files(tmp_path):
    import subprocess

    from sekd.study.readme import size_line, tree_megabytes

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.bin").write_bytes(b"x" * 1_500_000)
    (tmp_path / "ignored.bin").write_bytes(b"x" * 9_000_000)
    subprocess.run(["git", "-C", str(tmp_path), "add", "a.bin"], check=True)
    assert tree_megabytes(tmp_path) == 1.5
    assert size_line(tmp_path).startswith("The files of a shallow clone total about 2 MB")


def _deploy_report():
    rows = [
        {"preset": p, "runtime": n, "threads": t, "rtf": rtf, "rtf_min": rtf, "rounds": 3}
        for p, base in (("student_1p5gf", 0.01), ("cpu_teacher", 0.1))
        for n, k in (("eager", 2.0), ("onnxruntime", 1.0))
        for t in (1, 2)
        for rtf in [base * k / t]
    ]
    keys = [f"{p}/{n}" for p in ("student_1p5gf", "cpu_teacher") for n in ("eager", "onnxruntime")]
    mem = {k: 300.0 + i for i, k in enumerate(keys)}
    return {"rows": rows, "peak_memory_mb": mem, "unavailable": {}, "cpus": 2, "torch": "2.13.0",
            "args": {"seconds": 10.0, "rounds": 3}}  # fmt: skip


def test_deploy_table_and_the_students_speed_line_come_from_the_benchmark_file(tmp_path):
    from sekd.study.readme import deploy_block, student_speed_line

    assert "Not measured yet" in deploy_block(root=tmp_path)
    assert student_speed_line(root=tmp_path) == ""
    _write(tmp_path / "results" / "benchmarks" / "deploy_speed.json", _deploy_report())
    block = deploy_block(root=tmp_path)
    assert (
        "| model | PyTorch eager, 1 thread | ONNX Runtime, 1 thread | PyTorch eager, 2 threads"
        in block
    )
    assert "| student_1p5gf | 0.0200 | 0.0100 | 0.0100 | 0.0050 | 300 / 301 |" in block
    assert "peak memory (MB), PyTorch eager / ONNX Runtime |" in block
    assert "median of 3 interleaved rounds" in block
    line = student_speed_line(root=tmp_path)
    assert "0.0200 in PyTorch and 0.0100 in ONNX Runtime on one CPU thread" in line
    assert "0.26M parameters and 1.46 GFLOPs" in line  # the paper's Table 1


def test_replace_block_refuses_a_file_without_its_markers(tmp_path):
    import pytest

    from sekd.study.readme import replace_block

    f = tmp_path / "x.md"
    f.write_text("a\n<!-- speed:start -->\nold\n<!-- speed:end -->\nb\n")
    replace_block(f, "speed", "new")
    assert f.read_text() == "a\n<!-- speed:start -->\nnew\n<!-- speed:end -->\nb\n"
    with pytest.raises(SystemExit, match="lacks the markers"):
        replace_block(f, "deploy", "x")


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_is_short_and_leads_with_the_answer_and_the_snippet():
    lines = README.read_text().splitlines()
    assert len(lines) <= 180
    head = "\n".join(lines[:80])
    assert "<!-- glance:start -->\n| model | test set | PESQ |" in head  # the generated answer
    assert "```python\nimport sekd\n" in head and "DistillationObjective(" in head
    assert "git clone --depth 1" in head and "make study" in head and "make test" in head


def test_the_readmes_python_snippet_runs(tmp_path, monkeypatch):
    """The snippet as printed: a committed model enhances a real file, and a student takes a
    distillation step from the teacher on a batch."""
    import shutil

    import torch

    from sekd.data import Corpus, read_audio

    noisy_dir, clean_dir = Corpus().pair_dirs("voicebank_demand", "test")
    shutil.copy(noisy_dir / "p232_005.flac", tmp_path / "noisy.flac")
    import soundfile as sf

    sf.write(tmp_path / "noisy.wav", read_audio(tmp_path / "noisy.flac"), 16_000)
    snippet = README.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    x = torch.from_numpy(read_audio(noisy_dir / "p232_005.flac")[:16_000])
    y = torch.from_numpy(read_audio(clean_dir / "p232_005.flac")[:16_000])
    scope = {"noisy_batch": x.repeat(2, 1, 1), "clean_batch": y.repeat(2, 1, 1)}
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), scope)
    assert (tmp_path / "enhanced.wav").is_file()
    assert torch.isfinite(scope["total"]) and {"supervised", "at", "kd"} <= set(scope["terms"])
    grads = [p.grad for p in scope["student"].parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in scope["teacher"].parameters())  # the teacher is frozen
