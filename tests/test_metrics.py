import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sekd.data import read_audio
from sekd.metrics import (
    METRICS,
    MetricError,
    composite,
    evaluate_model,
    evaluate_pairs,
    ls_gain,
    pesq_nb_raw,
    score,
    si_sdr,
)
from sekd.models import build

# test vectors of Loizou's MATLAB composite.m (its own output), kept with the tests
REF = Path(__file__).parent / "fixtures" / "loizou_composite"


def _ref(name):
    x, sr = sf.read(REF / name)
    return x, sr


def test_composite_reproduces_matlab_reference():
    c, sr = _ref("sp09.wav")
    e, _ = _ref("enhanced_logmmse.wav")
    r = composite(c, e, sr, pesq_score=2.255732)
    assert round(r["llr"], 6) == 0.681368
    assert round(r["segsnr"], 6) == 3.991727
    assert round(r["wss"], 6) == 49.671978
    assert round(r["csig"], 4) == 3.3050
    assert round(r["cbak"], 4) == 2.6160
    assert round(r["covl"], 4) == 2.7133


def test_raw_narrowband_pesq_option_close_to_matlab():
    c, sr = _ref("sp09.wav")
    e, _ = _ref("enhanced_logmmse.wav")
    n = min(len(c), len(e))
    # the C implementation of P.862 and Loizou's MATLAB port differ in the third decimal
    assert abs(pesq_nb_raw(c[:n], e[:n], sr) - 2.255732) < 0.01
    r = composite(c, e, sr, pesq_mode="nb_raw")
    assert abs(r["pesq"] - 2.255732) < 0.01
    with pytest.raises(ValueError, match="pesq_mode"):
        composite(c, e, sr, pesq_mode="mos")


def test_clean_vs_clean_is_perfect(corpus):
    nd, cd = corpus.pair_dirs("voicebank_demand", "test")
    x = read_audio(cd / "p232_005.flac")
    r = score(x, x)
    assert r["pesq"] == pytest.approx(4.64, abs=0.01)
    assert r["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert r["csig"] == r["cbak"] == r["covl"] == 5.0


def _vb_pairs(corpus):
    nd, cd = corpus.pair_dirs("voicebank_demand", "test")
    return [(p.stem, p, nd / p.name) for p in sorted(cd.iterdir())]


def test_voicebank_noisy_means_plausible(corpus):
    rows, summary = evaluate_pairs(_vb_pairs(corpus), workers=2, progress=False)
    m = summary["mean"]
    assert summary == {**summary, "count": 31, "failed": 0}
    # published full-set noisy means: PESQ 1.97, STOI 0.92, CSIG 3.35, CBAK 2.44, COVL 2.63
    assert 1.7 < m["pesq"] < 2.3 and 0.88 < m["stoi"] < 0.95
    assert 2.8 < m["csig"] < 3.7 and 2.1 < m["cbak"] < 2.8 and 2.2 < m["covl"] < 3.0
    # 1 worker gives the same numbers
    rows1, s1 = evaluate_pairs(_vb_pairs(corpus)[:3], workers=1, progress=False)
    for a, b in zip(rows1, rows[:3]):
        for k in METRICS:
            assert a[k] == pytest.approx(b[k], abs=1e-9, nan_ok=True)


def test_failures_are_reported_per_file_not_dropped(corpus, tmp_path):
    nd, cd = corpus.pair_dirs("voicebank_demand", "test")
    x = read_audio(cd / "p232_005.flac")
    noise = np.random.default_rng(0).normal(0, 0.1, 32_000)
    pairs = [
        ("good", x, read_audio(nd / "p232_005.flac")),
        ("silent_ref", np.zeros(32_000), noise),  # PESQ: no utterances detected
        ("quarter_second", noise[:2000], noise[:2000]),  # PESQ: buffer too short
        ("too_short", x, x[:-1000]),
        ("missing", tmp_path / "nope.wav", tmp_path / "nope.wav"),
    ]
    rows, summary = evaluate_pairs(pairs, workers=1, progress=False)
    by = {r["name"]: r for r in rows}
    assert [r["name"] for r in rows] == [p[0] for p in pairs]
    assert by["good"]["error"] == "" and by["good"]["pesq"] > 1
    assert (
        "PESQ failed" in by["silent_ref"]["error"] and "No utterances" in by["silent_ref"]["error"]
    )
    assert "PESQ failed" in by["quarter_second"]["error"]
    assert np.isnan(by["silent_ref"]["pesq"])
    assert "length mismatch" in by["too_short"]["error"]
    assert "nope.wav" in by["missing"]["error"]
    assert summary["count"] == 5 and summary["failed"] == 4
    assert summary["mean"]["pesq"] == pytest.approx(by["good"]["pesq"])


def test_small_length_mismatch_is_trimmed(corpus):
    nd, cd = corpus.pair_dirs("voicebank_demand", "test")
    x, y = read_audio(cd / "p232_005.flac"), read_audio(nd / "p232_005.flac")
    assert score(x, y[:-50])["pesq"] == pytest.approx(score(x[:-50], y[:-50])["pesq"])


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "sekd", "evaluate", *args], capture_output=True, text=True
    )


def test_evaluate_cli_json_layout_and_mixed_formats(corpus, tmp_path):
    nd, cd = corpus.pair_dirs("voicebank_demand", "test")
    (tmp_path / "clean").mkdir()
    (tmp_path / "enh").mkdir()
    for p in sorted(cd.iterdir())[:3]:
        shutil.copy(p, tmp_path / "clean" / p.name)  # FLAC
        sf.write(tmp_path / "enh" / (p.stem + ".wav"), read_audio(nd / p.name), 16_000)  # WAV
    r = _cli(
        "--clean",
        str(tmp_path / "clean"),
        "--enhanced",
        str(tmp_path / "enh"),
        "--json",
        str(tmp_path / "r.json"),
        "--csv",
        str(tmp_path / "r.csv"),
    )
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "r.json").read_text())
    assert set(out) == {"files", "mean", "count", "scored", "failed"}
    assert out["count"] == 3 and out["failed"] == 0
    assert set(out["files"][0]) == {"name", *METRICS, "error"}
    assert "PESQ" in r.stdout and (tmp_path / "r.csv").read_text().count("\n") == 4


def test_evaluate_cli_refuses_unmatched_names(corpus, tmp_path):
    nd, cd = corpus.pair_dirs("dns")
    shutil.copytree(cd, tmp_path / "clean")
    shutil.copytree(nd, tmp_path / "enh")
    victim = sorted((tmp_path / "enh").iterdir())[0]
    victim.rename(victim.with_name("extra_file.flac"))
    r = _cli("--clean", str(tmp_path / "clean"), "--enhanced", str(tmp_path / "enh"))
    assert r.returncode == 2
    assert "extra_file" in r.stderr and victim.stem in r.stderr


def test_evaluate_model_runs_whole_utterances(corpus):
    pairs = [(n, noisy, clean) for n, clean, noisy in _vb_pairs(corpus)[:2]]
    rows, summary = evaluate_model(build("tiny_student"), pairs, progress=False)
    assert summary["count"] == 2 and summary["failed"] == 0
    assert all(np.isfinite(r["pesq"]) for r in rows)


def test_llr_autocorrelation_equals_direct_lagged_sums():
    """The LLR's lags come from the power spectrum by one matrix product; they must equal
    composite.m's direct sums sum_t x[t] x[t + k] (no circular wrap at n_fft >= 2 win)."""
    from sekd.metrics import _cosines, _frame_measures

    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 4000))
    power, _, energy, noise = _frame_measures(x, y, 16_000)  # 30 ms frames, 7.5 ms hop
    window = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, 481) / 481))
    f = np.stack([x[i : i + 480] for i in range(0, 4000 - 480 + 1, 120)])[: len(power)] * window
    g = np.stack([y[i : i + 480] for i in range(0, 4000 - 480 + 1, 120)])[: len(power)] * window
    assert len(power) == 29 and power.shape[1] == 513
    direct = np.stack([(f[:, : 480 - k] * f[:, k:]).sum(1) for k in range(17)], 1)
    np.testing.assert_allclose(power @ _cosines(1024, 16), direct, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(energy, (f**2).sum(1), rtol=1e-12)
    np.testing.assert_allclose(noise, ((f - g) ** 2).sum(1), rtol=1e-12)


def test_stoi_equals_pystoi_on_every_bundled_pair(corpus):
    """sekd's array version of STOI against the maintained reference, file by file."""
    from pystoi import stoi as reference

    from sekd.metrics import stoi

    pairs = [corpus.pair_dirs("voicebank_demand", "test"), corpus.pair_dirs("dns")]
    n = 0
    for nd, cd in pairs:
        for c in sorted(cd.iterdir()):
            x, y = read_audio(c).astype(np.float64), read_audio(nd / c.name).astype(np.float64)
            assert stoi(x, y) == pytest.approx(reference(x, y, 16_000), abs=1e-12), c.name
            n += 1
    rng = np.random.default_rng(1)
    x = rng.standard_normal(24_000) * np.repeat(rng.uniform(0, 1, 24), 1000)  # silent parts
    y = x + 0.3 * rng.standard_normal(24_000)
    for sr in (16_000, 10_000, 8_000, 22_050, 44_100):
        assert stoi(x, y, sr) == pytest.approx(reference(x, y, sr), abs=1e-12)
    assert n >= 34


@pytest.mark.parametrize("fs, sr", [(10_000, 16_000), (10_000, 8_000), (10_000, 44_100), (3, 7)])
@pytest.mark.parametrize("n", [1, 57, 16_001])
def test_resample_poly_equals_scipy(fs, sr, n):
    """The matrix-product polyphase resampler against scipy's, on 1-D and stacked signals."""
    from pystoi.utils import _resample_window_oct
    from scipy.signal import resample_poly as reference

    from sekd.metrics import resample_poly

    h = _resample_window_oct(fs, sr)
    h /= h.sum()
    x = np.random.default_rng(n).standard_normal((2, n))
    want = reference(x, fs, sr, axis=-1, window=h)
    got = resample_poly(x, fs, sr, h)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * np.abs(want).max())
    np.testing.assert_allclose(resample_poly(x[0], fs, sr, h), want[0], rtol=0, atol=1e-13)


@pytest.mark.parametrize("n", [0, 100, 479, 480, 500])
def test_composite_too_short_is_a_metric_error(n):
    from sekd.metrics import MetricError, composite

    x = np.random.default_rng(n).standard_normal(n)
    with pytest.raises(MetricError, match=f"too short for composite measures \\({n} samples"):
        composite(x, x, pesq_score=2.0)


def test_stoi_too_short_or_silent_is_an_error_not_1e5():
    from sekd.metrics import MetricError, stoi

    x = np.random.default_rng(2).standard_normal(4_000)
    with pytest.raises(MetricError, match="not enough non-silent frames"):
        stoi(x, x)
    with pytest.raises(MetricError, match="not enough non-silent frames"):
        stoi(np.zeros(100), np.zeros(100))
    with pytest.raises(MetricError, match="lengths differ"):
        stoi(x, x[:-1])


# ------------------------------------------------------------------------ SI-SDR and gain
def test_si_sdr_equals_torchmetrics(corpus):
    import torch
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as ref

    nd, cd = corpus.pair_dirs("voicebank_demand", "test")
    rng = np.random.default_rng(0)
    for name in ("p232_001", "p232_373"):
        c, n = read_audio(cd / f"{name}.flac"), read_audio(nd / f"{name}.flac")
        for y in (n, 0.3 * c + 0.01 * rng.standard_normal(len(c)), n - 0.5 * c):
            want = float(
                ref(
                    torch.from_numpy(np.asarray(y, np.float64)),
                    torch.from_numpy(c.astype(float)),
                    zero_mean=True,
                )
            )
            assert si_sdr(c, y) == pytest.approx(want, abs=1e-6)


def test_negated_and_attenuated_clean_only_the_gain_tells(corpus):
    """PESQ, STOI and SI-SDR are blind to the sign and the level of the output; the
    least-squares gain on the clean reference is what shows an inverted or quiet model."""
    x = read_audio(corpus.pair_dirs("voicebank_demand", "test")[1] / "p232_005.flac")
    noise = 0.005 * np.random.default_rng(1).standard_normal(len(x))
    y = x + noise
    same, neg, half = score(x, y), score(x, -y), score(x, 0.5 * y)
    assert neg["pesq"] == pytest.approx(same["pesq"], abs=1e-6)
    assert neg["stoi"] == pytest.approx(same["stoi"], abs=1e-9)
    assert si_sdr(x, -y) == pytest.approx(si_sdr(x, y), abs=1e-9)
    assert si_sdr(x, 0.5 * y) == pytest.approx(si_sdr(x, y), abs=1e-9)
    assert half["pesq"] == pytest.approx(same["pesq"], abs=1e-6)
    assert ls_gain(x, y) == pytest.approx(1.0, abs=0.01)
    assert ls_gain(x, -y) == pytest.approx(-1.0, abs=0.01)
    assert ls_gain(x, 0.5 * y) == pytest.approx(0.5, abs=0.01)
    assert same["gain"] == pytest.approx(ls_gain(x, y)) and neg["gain"] < 0
    assert same["si_sdr"] == pytest.approx(si_sdr(x, y))


def test_si_sdr_and_gain_edge_cases():
    s = np.sin(np.linspace(0, 100, 4000))
    assert si_sdr(s, 2 * s) == np.inf
    assert si_sdr(s, np.zeros_like(s)) == -np.inf
    with pytest.raises(MetricError, match="silent"):
        si_sdr(np.zeros(100), s[:100])
    with pytest.raises(MetricError, match="silent"):
        ls_gain(np.zeros(100), s[:100])


def test_clean_passthrough_gain_of_each_corpus(corpus):
    """Clean speech in, per dataset: gain 1 for the identity, the scale for a scaled output,
    negative for an inverted one; SI-SDR is blind to both (so the gain is reported)."""
    from sekd.baselines import NoisyInput
    from sekd.study.scoring import clean_passthrough

    class Scale(torch.nn.Module):
        def __init__(self, k):
            super().__init__()
            self.k = k

        def forward(self, x):
            return self.k * x

    ds = ("grid", "emodb")
    for model, want in ((NoisyInput(), 1.0), (Scale(0.25), 0.25), (Scale(-1.0), -1.0)):
        r = clean_passthrough(model, ds, split="valid", utterances=2, seconds=1.0, corpus=corpus)
        assert sorted(r) == sorted(ds)
        for d in ds:
            names = [f.path.name for f in corpus.select(kind="speech", dataset=d, split="valid")]
            assert [f["file"] for f in r[d]["files"]] == names[:2]
            assert r[d]["gain"] == pytest.approx(want, abs=1e-5)
            assert r[d]["si_sdr"] > 60
    with pytest.raises(ValueError, match="'no-such-corpus'"):
        clean_passthrough(NoisyInput(), ["no-such-corpus"], corpus=corpus)


def test_ideal_ratio_mask_is_a_ceiling_that_needs_the_clean_signal(corpus):
    """The oracle mask passes clean speech through unchanged, leaves pure noise near silence,
    never amplifies a bin (so the output has no more energy than the mixture), and on a real
    mixture at -15 dB raises SI-SDR far above the input's; bad shapes are named."""
    from sekd.baselines import ideal_ratio_mask

    x = read_audio(corpus.pair_dirs("voicebank_demand", "test")[1] / "p232_005.flac")
    noise = read_audio(corpus.select(kind="noise", dataset="noisex-92")[0].path)[: len(x)]
    noise = noise * np.sqrt(np.sum(x**2) / np.sum(noise**2) * 10 ** (15 / 10))  # -15 dB
    assert np.max(np.abs(ideal_ratio_mask(x, x) - x)) < 1e-5
    quiet = ideal_ratio_mask(noise, np.zeros_like(noise))
    assert np.sum(quiet**2) < 1e-10 * np.sum(noise**2)
    mix = x + noise
    y = ideal_ratio_mask(mix, x)
    assert np.sum(y**2) <= np.sum(mix**2)
    assert si_sdr(x, mix) == pytest.approx(-15.0, abs=0.5)
    assert si_sdr(x, y) > si_sdr(x, mix) + 10.0
    assert 0 < ls_gain(x, y) <= 1.01
    with pytest.raises(ValueError, match="one length"):
        ideal_ratio_mask(mix, x[:-1])
