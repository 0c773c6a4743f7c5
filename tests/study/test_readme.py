import json

from sekd.metrics import MEASURE, QUALITY
from sekd.study.readme import header, results_block


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_header_comes_from_the_metric_registry():
    head = header()[0]
    for k in QUALITY:
        assert f"| {MEASURE[k].title} |" in head
    assert head.startswith("| model | seeds |") and head.endswith("| enhances |")


def test_results_block_reads_the_files_with_seed_spread_and_verdicts(tmp_path):
    res = tmp_path / "results" / "cpu"
    assert "No `cpu` results" in results_block("cpu", root=tmp_path)
    metrics = {k: 1.0 for k in QUALITY}
    _write(
        res / "mvat_table1_voicebank.json",
        [
            {"model": "noisy", "seeds": 1, **metrics, "pesq": 1.9, "enhances": False},
            {"model": "teacher", "seeds": 1, **metrics, "pesq": 2.5, "enhances": True},
            {"model": "student_baseline", "seeds": 3, **metrics, "pesq": 2.0,
             "pesq_std_over_seeds": 0.0421, "enhances": True},
        ],
    )  # fmt: skip
    eff = {"metric": "pesq", "diff": 0.05, "ci_low": 0.01, "ci_high": 0.09, "pairs": 31}
    _write(
        res / "mvat_effect_voicebank.json",
        [
            {
                "method": "mvat_dual_q1",
                **eff,
                "seeds": 3,
                "diff_per_seed": [0.04, 0.05, 0.06],
                "paper": 0.06,
            },
            {
                "method": "mvat_dual_kd",
                **eff,
                "ci_low": -0.2,
                "ci_high": -0.1,
                "seeds": 1,
                "paper": 0.07,
            },
            {"method": "mvat_dual_mean", **eff, "seeds": 1},
        ],
    )
    _write(
        res / "mvat_preconditions.json",
        [
            {"check": "teacher - noisy, PESQ", "set": "voicebank", "diff": 0.6, "ci_low": 0.4,
             "ci_high": 0.8, "pairs": 31, "margin": 0.3, "holds": True},
            {"check": "teacher output gain on clean", "set": "voicebank", "diff": -0.5,
             "margin": 0.0, "holds": False},
        ],
    )  # fmt: skip
    text = results_block("cpu", root=tmp_path)
    assert "| student_baseline | 3 |" in text and "2.000 ± 0.042" in text
    assert "| noisy | 1 |" in text and "1.900 |" in text and "| **no** |" in text
    assert (
        "per seed +0.040, +0.050, +0.060" in text and "reports +0.06: this agrees with it" in text
    )
    assert "reports +0.07: this contradicts it" in text
    assert "At 10,000 steps of 4 x 1 s (about 11 h of audio)" in text  # every verdict's budget
    assert "per-frame mean is +0.050 [+0.010, +0.090] PESQ above the baseline" in text
    assert "teacher - noisy, PESQ = +0.600 [+0.400, +0.800] over 31 files" in text
    assert "teacher output gain on clean = -0.500 (needs > 0): **fails**" in text
    assert "does not meet every precondition" in text
    # the preconditions come before the tables
    assert text.index("Preconditions") < text.index("Table 1")


def test_results_block_has_the_snr_study_when_its_files_exist(tmp_path):
    res = tmp_path / "results" / "cpu"
    _write(res / "mvat_table1_voicebank.json", [])
    assert "SNR-based" not in results_block("cpu", root=tmp_path)
    _write(
        res / "snr_table3.json",
        [{"model": "S2 (SNR teachers)", "seeds": 3, "pesq": 1.25, "stoi": 0.66, "files": 810,
          "failed": 0}],
    )  # fmt: skip
    _write(
        res / "snr_effect.json",
        [
            {"metric": "pesq", "group": "all", "diff": 0.014, "ci_low": -0.008, "ci_high": 0.035,
             "pairs": 810, "seeds": 3, "diff_per_seed": [0.01, 0.02, 0.012]},
            {"metric": "stoi", "group": "all", "diff": 0.0056, "ci_low": 0.0042,
             "ci_high": 0.0071, "pairs": 810, "seeds": 3, "diff_per_seed": [0.1, 0.2, 0.3]},
            {"metric": "stoi", "group": "-5 dB", "diff": 9.0, "ci_low": 8.0, "ci_high": 10.0,
             "pairs": 90},
        ],
    )  # fmt: skip
    _write(
        res / "snr_preconditions.json",
        [{"teacher": "snr_teacher1", "snrs": [-20.0, -15.0], "files": 180, "pesq_diff": 0.01,
          "pesq_ci_low": -0.01, "pesq_ci_high": 0.03, "si_sdri_diff": 5.0,
          "si_sdri_ci_low": 4.0, "si_sdri_ci_high": 6.0, "si_sdri_diff_seen": 7.5,
          "si_sdri_diff_unseen": -1.25, "holds": False}],
    )  # fmt: skip
    text = results_block("cpu", root=tmp_path)
    assert "[+4.00, +6.00] (seen noises +7.50, unseen -1.25): **does not beat" in text
    assert "| S2 (SNR teachers) | 3 | 1.250 | 0.660 |" in text
    assert "PESQ: +0.014 [-0.008, +0.035] over 810 files, 3 seed(s)" in text
    assert "(S2 not apart from S1" in text
    assert "STOI: +0.0056 [+0.0042, +0.0071] over 810 files" in text and "(S2 above S1" in text
    assert "+9.0" not in text  # per-SNR rows stay in the file
    assert "snr_teacher1 (-20, -15 dB, 180 files)" in text
    assert "**does not beat the noisy input**" in text
    assert "below the noisy input in STOI" not in text
    _write(
        res / "snr_stoi_by_snr.json",
        [{"model": "snr_s1", "snr": -20.0, "diff": -0.05, "ci_low": -0.06, "ci_high": -0.04,
          "gain": 0.152},
         {"model": "snr_s1", "snr": 20.0, "diff": -0.02, "ci_low": -0.04, "ci_high": -0.001,
          "gain": 0.936},
         {"model": "snr_s2", "snr": 20.0, "diff": -0.01, "ci_low": -0.02, "ci_high": 0.01,
          "gain": 0.97}],
    )  # fmt: skip
    text = results_block("cpu", root=tmp_path)
    assert "snr_s1 at -20 dB (gain 0.15), +20 dB (gain 0.94)" in text
    assert "snr_s2 at" not in text  # its interval straddles 0
    assert "snr_band_search" not in text and "confirmation grid" not in text
    _write(
        res / "snr_band_search.json",
        [{"band": 0, "model": "t1_a", "holds": False}, {"band": 0, "model": "t1_b", "holds": True},
         {"band": 0, "model": "t1_c", "holds": False}, {"band": 1, "model": "t2", "holds": True}],
    )  # fmt: skip
    _write(
        res / "snr_band_confirmation.json",
        [{"teacher": "snr_teacher1", "snrs": [-20.0, -15.0], "files": 160, "pesq_diff": 0.02,
          "pesq_ci_low": 0.005, "pesq_ci_high": 0.04, "si_sdri_diff": 3.0,
          "si_sdri_ci_low": 2.0, "si_sdri_ci_high": 4.0, "holds": True}],
    )  # fmt: skip
    text = results_block("cpu", root=tmp_path)
    # band 1 of the preconditions is snr_teacher1's; band 2 has no precondition row here
    assert (
        "(`results/cpu/snr_band_search.json`): band 1 (kept: snr_teacher1), 3 weights, "
        "1 held (t1_b)." in text
    )
    confirmation = text[text.index("confirmation grid (") :]
    assert "- snr_teacher1 (-20, -15 dB, 160 files): PESQ +0.020 [+0.005, +0.040]" in confirmation
    assert confirmation.index("beats the noisy input") < confirmation.index("Test grid")


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
