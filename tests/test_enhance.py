import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from sekd.data import read_audio
from sekd.enhance import chunk_plan, enhance_signal
from sekd.models import Manner, MannerConfig, build, save_model


def _finite_rf_model():
    """MANNER without MA blocks: convolutions only, so its receptive field is finite."""
    torch.manual_seed(0)
    m = Manner(MannerConfig(depth=3, hidden=4, ma_layers=()))
    # non-trivial BN statistics, so eval-mode chunking is checked on a realistic model
    m.train()
    with torch.no_grad():
        m(torch.randn(4, 1, 8000))
    return m.eval()


def test_chunk_plan_aligned_and_covering():
    plan = chunk_plan(200_000, 60_000)
    assert plan[0][0] == 0 and plan[-1][1] == 200_000
    assert all(a % 4096 == 0 for a, _ in plan)
    assert all(b2 > a1 for (a1, b1), (a2, b2) in zip(plan, plan[1:]))
    with pytest.raises(ValueError, match="too short"):
        chunk_plan(200_000, 10_000)


def test_chunked_equals_whole_file(corpus):
    m = _finite_rf_model()
    x = np.concatenate(
        [
            read_audio(f.path)
            for f in corpus.select(kind="speech", dataset="ljspeech", split="test")[:3]
        ]
    )[:150_001]
    whole = enhance_signal(m, x)
    chunked = enhance_signal(m, x, chunk=48_000)
    assert len(chunk_plan(len(x), 48_000)) >= 4
    assert chunked.shape == whole.shape == x.shape
    assert np.max(np.abs(chunked - whole)) < 1e-4
    assert np.max(np.abs(whole)) > 1e-3  # a real signal, not zeros


def test_enhance_cli_reports_corrupt_and_writes_others(tmp_path, corpus):
    m = build("tiny_student")
    ckpt = save_model(m, tmp_path / "m.pt")
    inp = tmp_path / "in"
    inp.mkdir()
    src = corpus.select(kind="pair", dataset="dns-challenge-2020", role="noisy")
    for f in src:
        x = read_audio(f.path)[:24_000]
        sf.write(inp / (f.path.stem + ".wav"), np.stack([x, x], 1), 44_100)  # stereo, 44.1 kHz
    (inp / "broken.wav").write_bytes(b"RIFF....garbage")
    out = tmp_path / "out"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sekd",
            "enhance",
            "--checkpoint",
            str(ckpt),
            "--input",
            str(inp),
            "--output",
            str(out),
            "--chunk-seconds",
            "3",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert "broken.wav" in r.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f.path.stem + ".wav" for f in src)
    for p in out.iterdir():
        info = sf.info(str(p))
        assert info.samplerate == 16_000 and info.channels == 1
        assert info.frames == int(np.ceil(24_000 * 160 / 441))  # 44.1 kHz -> 16 kHz
