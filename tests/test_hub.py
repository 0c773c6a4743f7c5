"""torch.hub and sekd.pretrained: the committed models in one line; enhancing at any rate."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import sekd
from sekd.data import read_audio
from sekd.enhance import enhance_signal
from sekd.models import fingerprint, load_model

ROOT = Path(__file__).resolve().parents[1]
HUB_NAMES = ["teacher", "baseline_student", "mvat_student", "mvat_kd_student", "snr_s2"]


@pytest.mark.parametrize("name", HUB_NAMES)
def test_torch_hub_loads_each_committed_model_in_eval_mode(name):
    model = torch.hub.load(str(ROOT), name, source="local")
    assert isinstance(model, torch.nn.Module) and not model.training
    run = sekd.PRETRAINED[name].run
    assert fingerprint(model) == fingerprint(
        load_model(ROOT / "checkpoints/cpu" / run / "model.pt")
    )
    assert fingerprint(sekd.pretrained(name)) == fingerprint(model)


def test_hub_entries_and_pretrained_names_are_the_same_set():
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    entries = [n for n, f in vars(hubconf).items() if callable(f) and f.__module__ == "hubconf"]
    assert sorted(n for n in entries if not n.startswith("_")) == sorted(HUB_NAMES)
    assert sorted(sekd.PRETRAINED) == sorted(HUB_NAMES)
    doc = hubconf.mvat_kd_student.__doc__
    mean = json.loads((ROOT / "results/cpu/voicebank/student_mvat_dual_kd.json").read_text())[
        "mean"
    ]
    assert f"PESQ {mean['pesq']:.2f}" in doc and "10,000 steps of 4 x 1 s" in doc


def test_a_wrong_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="available: teacher, baseline_student"):
        sekd.pretrained("mvat")


@pytest.mark.parametrize("rate", [16_000, 44_100, 8_000])
def test_enhance_array_returns_the_input_rate_and_length(corpus, rate):
    from sekd.data import resample

    model = sekd.pretrained("mvat_kd_student")
    f = corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="noisy")[0]
    x16 = read_audio(f.path)
    x = resample(x16, 16_000, rate)
    y = sekd.enhance_array(model, x, rate)
    assert y.shape == x.shape and y.dtype == np.float32
    if rate == 16_000:
        assert np.array_equal(y, enhance_signal(model, x16))
    else:  # back at 16 kHz it is the 16 kHz enhancement of the resampled input, up to resampling
        back = resample(y, rate, 16_000)
        want = enhance_signal(model, resample(x, rate, 16_000))
        n = min(len(back), len(want))
        assert np.corrcoef(back[:n], want[:n])[0, 1] > 0.99


def test_enhance_file_keeps_rate_and_format_and_refuses_to_overwrite(corpus, tmp_path):
    f = corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="noisy")[0]
    src = tmp_path / "in.flac"
    sf.write(src, read_audio(f.path, sr=44_100), 44_100, subtype="PCM_24")
    model = sekd.pretrained("snr_s2")
    out = sekd.enhance_file(model, src, tmp_path / "out.flac")
    info = sf.info(str(out))
    assert (info.samplerate, info.subtype, info.frames) == (
        44_100,
        "PCM_24",
        sf.info(str(src)).frames,
    )
    with pytest.raises(FileExistsError):
        sekd.enhance_file(model, src, out)
    with pytest.raises(FileExistsError, match="input files"):
        sekd.enhance_file(model, src, src, overwrite=True)
