import numpy as np
import pytest

from sekd.data import (
    MixingError,
    mix,
    read_audio,
    snr_db,
)


@pytest.mark.parametrize("snr", [-20.0, -5.0, 0.0, 7.5, 20.0])
def test_mix_hits_target_snr(speech, corpus, snr):
    noise = read_audio(corpus.select(kind="noise", noise_type="babble", split="test")[0].path)
    m = mix(speech, noise, snr, np.random.default_rng(0), "babble")
    assert abs(snr_db(m.clean, m.noise) - snr) < 1e-6
    np.testing.assert_allclose(m.mixture, m.clean + m.noise, atol=1e-6)
    assert m.snr == snr and m.noise_type == "babble" and np.abs(m.mixture).max() <= 1.0


def test_mix_clipping_scales_jointly_and_keeps_snr():
    rng = np.random.default_rng(1)
    clean = np.clip(rng.normal(0, 0.6, 8000), -0.99, 0.99)
    m = mix(clean, rng.normal(0, 1, 4000), -5.0, rng)
    assert np.abs(m.mixture).max() <= 1.0 + 1e-6
    assert abs(snr_db(m.clean, m.noise) - (-5.0)) < 1e-6
    ratio = m.clean / clean
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)  # one common scale
    assert ratio[0] < 1


def test_mix_seeded_segment_and_loop():
    noise = np.arange(1, 101, dtype=np.float64)  # shorter than the speech: looped
    clean = np.ones(250) * 0.1
    a = mix(clean, noise, 0.0, np.random.default_rng(3))
    b = mix(clean, noise, 0.0, np.random.default_rng(3))
    np.testing.assert_array_equal(a.noise, b.noise)
    n = a.noise / a.noise[0] * noise[int(round(a.noise[0] / (a.noise[1] - a.noise[0])) - 1)]
    # the looped segment repeats with period 100
    np.testing.assert_allclose(a.noise[:150], a.noise[100:250], rtol=1e-6)
    assert n.shape == (250,)
    c = mix(clean, np.arange(1, 10_001, dtype=np.float64), 0.0, np.random.default_rng(4))
    d = mix(clean, np.arange(1, 10_001, dtype=np.float64), 0.0, np.random.default_rng(5))
    assert not np.allclose(c.noise, d.noise)


def test_mix_silent_inputs_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(MixingError, match="speech is silent"):
        mix(np.zeros(100), np.ones(100), 0.0, rng)
    with pytest.raises(MixingError, match="noise segment is silent"):
        mix(np.ones(100) * 0.1, np.zeros(100), 0.0, rng)
    with pytest.raises(MixingError, match="finite"):
        mix(np.ones(100) * 0.1, np.ones(100), float("nan"), rng)
