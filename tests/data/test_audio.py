import numpy as np
import pytest
import soundfile as sf

from sekd.data import (
    AudioError,
    read_audio,
)


def test_read_audio_resamples_downmixes_and_scales(tmp_path):
    t = np.arange(48_000) / 48_000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone], 1)
    sf.write(tmp_path / "s.wav", stereo, 48_000, subtype="PCM_16")
    x = read_audio(tmp_path / "s.wav")
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) == 16_000
    assert abs(np.abs(x[100:-100]).max() - 0.5) < 0.01
    # integer PCM is scaled to [-1, 1)
    sf.write(tmp_path / "i.wav", (tone * 32767).astype(np.int16), 16_000, subtype="PCM_16")
    assert abs(np.abs(read_audio(tmp_path / "i.wav")).max() - 0.5) < 1e-3
    # left/right different: the mean is taken
    sf.write(tmp_path / "lr.wav", np.stack([tone, np.zeros_like(tone)], 1), 16_000)
    np.testing.assert_allclose(
        read_audio(tmp_path / "lr.wav"), tone / 2, atol=2**-15
    )  # PCM_16 step


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: p.write_bytes(b"not audio at all"), "unreadable"),
        (lambda p: sf.write(p, np.zeros(0), 16_000), "empty"),
        (lambda p: sf.write(p, np.zeros(1600), 16_000), "all samples are zero"),
        (lambda p: sf.write(p, np.r_[np.ones(10), np.nan], 16_000, subtype="FLOAT"), "NaN"),
        (lambda p: sf.write(p, np.r_[np.ones(10), np.inf], 16_000, subtype="FLOAT"), "NaN or Inf"),
    ],
)
def test_read_audio_bad_files(tmp_path, make, problem):
    p = tmp_path / "bad.wav"
    make(p)
    with pytest.raises(AudioError, match=problem) as exc:
        read_audio(p)
    assert str(p) in str(exc.value)


def test_read_audio_missing_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav"):
        read_audio(tmp_path / "missing.wav")
