import json

from sekd.readme import results_block


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_results_block_reads_the_files_with_seed_spread_and_verdicts(tmp_path):
    res = tmp_path / "results" / "cpu"
    assert "No `cpu` results" in results_block("cpu", root=tmp_path)
    metrics = {"pesq": 2.0, "stoi": 0.9, "csig": 3.0, "cbak": 2.5, "covl": 2.4}
    _write(
        res / "mvat_table1_voicebank.json",
        [
            {"model": "noisy", "seeds": 1, **metrics, "pesq": 1.9},
            {"model": "teacher", "seeds": 1, **metrics, "pesq": 2.5},
            {"model": "student_baseline", "seeds": 3, **metrics, "pesq_std_over_seeds": 0.0421},
        ],
    )
    eff = {"metric": "pesq", "diff": 0.05, "ci_low": 0.01, "ci_high": 0.09, "pairs": 31}
    _write(
        res / "mvat_effect_voicebank.json",
        [
            {"method": "mvat_dual_q1", **eff, "seeds": 3, "diff_per_seed": [0.04, 0.05, 0.06]},
            {"method": "mvat_dual_kd", **eff, "ci_low": -0.2, "ci_high": -0.1, "seeds": 1},
        ],
    )
    text = results_block("cpu", root=tmp_path)
    assert "| student_baseline | 3 |" in text and "2.000 ± 0.042" in text
    assert "| noisy | 1 |" in text and "1.900 |" in text
    assert "per seed: +0.040, +0.050, +0.060" in text and "agrees with the paper's +0.06" in text
    assert "contradicts the paper's +0.07" in text
    assert "above the noisy input" in text  # teacher 2.5 vs noisy 1.9


def test_results_block_has_the_snr_study_when_its_files_exist(tmp_path):
    res = tmp_path / "results" / "cpu"
    _write(res / "mvat_table1_voicebank.json", [])
    assert "SNR-based" not in results_block("cpu", root=tmp_path)
    _write(
        res / "snr_table3.json",
        [{"model": "S2 (SNR teachers)", "pesq": 1.25, "stoi": 0.66, "files": 810, "failed": 0}],
    )
    _write(
        res / "snr_effect.json",
        [
            {"metric": "pesq", "snr": "all", "diff": 0.014, "ci_low": -0.008, "ci_high": 0.035,
             "pairs": 810},
            {"metric": "stoi", "snr": "all", "diff": 0.0056, "ci_low": 0.0042, "ci_high": 0.0071,
             "pairs": 810},
            {"metric": "stoi", "snr": "-5 dB", "diff": 9.0, "ci_low": 8.0, "ci_high": 10.0,
             "pairs": 90},
        ],
    )  # fmt: skip
    text = results_block("cpu", root=tmp_path)
    assert "| S2 (SNR teachers) | 1.250 | 0.660 | 810 | 0 |" in text
    assert "PESQ: +0.014 [-0.008, +0.035] over 810 files (S2 not apart from S1" in text
    assert "STOI: +0.0056 [+0.0042, +0.0071] over 810 files (S2 above S1" in text
    assert "+9.0" not in text  # per-SNR rows stay in the file
