import numpy as np
import pytest
import torch

from sekd.data import Corpus


@pytest.fixture(scope="session")
def corpus():
    return Corpus()


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    np.random.seed(0)


@pytest.fixture
def speech(corpus):
    from sekd.data import read_audio

    return read_audio(corpus.select(kind="speech", dataset="grid", split="test")[0].path)


@pytest.fixture
def fake_voicebank(tmp_path, corpus):
    """A 48 kHz VoiceBank-DEMAND tree in the official layout, made from the bundled pairs."""
    import soundfile as sf

    from sekd.data import read_audio, voicebank_dirs

    root = tmp_path / "raw"
    for split in ("train", "test"):
        n_src, c_src = corpus.pair_dirs("voicebank_demand", split)
        n_dst, c_dst = voicebank_dirs(root, split)
        for src, dst in ((n_src, n_dst), (c_src, c_dst)):
            dst.mkdir(parents=True)
            for f in sorted(src.iterdir())[:3]:
                x = read_audio(f, sr=48_000)
                sf.write(dst / (f.stem + ".wav"), x, 48_000, subtype="PCM_16")
    # a training speaker besides p287 (a validation speaker), so the split has both sides
    for d in voicebank_dirs(root, "train"):
        (d / "p226_001.wav").write_bytes(sorted(d.iterdir())[0].read_bytes())
    return root


@pytest.fixture
def tmp_study_paths(tmp_path):
    """A stand-in for sekd.study.paths with runs, results and cache under tmp_path (configs:
    the repository's), to monkeypatch where a study module reads it."""
    from pathlib import Path

    from sekd.study.runs import Paths

    repo = Path(__file__).resolve().parents[1]

    def paths(p, root=None):
        r = tmp_path / "results" / p
        return Paths(p, repo / "configs" / p, tmp_path / "runs" / p, r, r / "figures",
                     tmp_path / "cache")  # fmt: skip

    return paths


@pytest.fixture
def sekd_cli():
    """Run `python -m sekd ARGS...` as a user would; returns the CompletedProcess (text)."""
    import subprocess
    import sys

    def run(*args, **kwargs):
        return subprocess.run(
            [sys.executable, "-m", "sekd", *map(str, args)],
            capture_output=True,
            text=True,
            **kwargs,
        )

    return run
