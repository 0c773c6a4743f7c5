"""sekd.export: ONNX export checked against PyTorch, enhancement through ONNX Runtime."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
import torch

from sekd import export
from sekd.data import read_audio
from sekd.enhance import enhance_files, enhance_signal
from sekd.export import ExportError, OnnxModel, export_onnx, length_rule, valid_length
from sekd.models import build, load_model

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "checkpoints" / "cpu"
# one of each family the study deploys: a MANNER student, the MANNER teacher, the U-Net
MODELS = ("student_mvat_dual_kd", "teacher", "snr_s2")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{run: .onnx} of the committed models, the student through the command line."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for run in MODELS:
        path = folder / f"{run}.onnx"
        if run == MODELS[0]:
            r = subprocess.run(
                [sys.executable, "-m", "sekd", "export", "--checkpoint",
                 str(COMMITTED / run / "model.pt"), "--out", str(path)],
                capture_output=True, text=True,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
            assert "max abs difference: 1.30 s:" in r.stdout and "3.70 s:" in r.stdout
        else:
            export_onnx(load_model(COMMITTED / run / "model.pt"), path, run)
        out[run] = path
    return out


@pytest.fixture(scope="module")
def bundled(tmp_path_factory, corpus):
    """The 31 bundled VoiceBank-DEMAND noisy test files, as float WAV (no output rounding)."""
    folder = tmp_path_factory.mktemp("vb")
    for f in corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="noisy"):
        sf.write(folder / f"{f.path.stem}.wav", read_audio(f.path), 16_000, subtype="FLOAT")
    return folder


def _files(bundled, run) -> list:
    """All 31 files for the student (the model to deploy); the first 6 for the others."""
    files = sorted(bundled.iterdir())
    return files if run == MODELS[0] else files[:6]


def test_the_export_is_opset_18_with_a_dynamic_length_and_sekd_metadata(exported):
    proto = onnx.load(str(exported["teacher"]))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
    (noisy, *rest) = proto.graph.input
    dims = noisy.type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[:2]] == [1, 1] and dims[2].dim_param  # T is symbolic
    assert [i.name for i in rest] == ["std"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["sekd.preset"] == "teacher" and meta["sekd.family"] == "manner"
    assert [i.name for i in onnx.load(str(exported["snr_s2"])).graph.input] == ["noisy"]


# every model whole-file; the chunked path (the same code for every model) with the students
ONNX_CASES = [(run, None) for run in MODELS] + [(run, 2.6) for run in MODELS if run != "teacher"]


@pytest.mark.parametrize(("run", "chunk"), ONNX_CASES)
def test_onnx_runtime_enhances_the_bundled_files_like_pytorch(exported, bundled, tmp_path, run,
                                                              chunk):  # fmt: skip
    pt, ox = tmp_path / "pt", tmp_path / "onnx"
    a, errs_a = enhance_files(
        load_model(COMMITTED / run / "model.pt"), bundled, pt, chunk, progress=False
    )
    b, errs_b = enhance_files(OnnxModel(exported[run]), bundled, ox, chunk, progress=False)
    assert not errs_a and not errs_b and len(a) == len(b) == 31
    worst = max(np.max(np.abs(read_audio(p) - read_audio(ox / p.name))) for p in a)
    assert worst < 1e-4


def test_enhance_takes_an_onnx_checkpoint_at_the_command_line(exported, bundled, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "sekd", "enhance", "--checkpoint", str(exported[MODELS[0]]),
         "--input", str(bundled), "--output", str(tmp_path / "o"), "--chunk-seconds", "3"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "wrote 31 of 31 file(s)" in r.stdout and "files:" in r.stderr  # the progress bar
    model = load_model(COMMITTED / MODELS[0] / "model.pt")
    for p in sorted((tmp_path / "o").iterdir())[:3]:
        want = enhance_signal(model, read_audio(bundled / p.name), chunk=48_000)
        assert np.max(np.abs(read_audio(p) - want)) < 1e-4


@pytest.mark.parametrize("preset", ["tiny_student", "tiny_teacher", "waveunet_tiny", "manner_b"])
def test_the_length_rule_is_the_models_own_valid_length(preset):
    model = build(preset)
    rule = length_rule(model)
    for n in [1, 2, 63, 64, 85, 1000, 16_000, 48_001, 123_457]:
        assert valid_length(n, rule) == model.valid_length(n), n


def test_a_model_sekd_cannot_export_says_why(tmp_path):
    with pytest.raises(ExportError, match="cannot export a Identity"):
        export_onnx(torch.nn.Identity(), tmp_path / "x.onnx")
    with pytest.raises(ExportError, match="ends in .onnx"):
        export_onnx(build("tiny_student"), tmp_path / "x.pt")


def test_an_export_that_does_not_match_pytorch_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "MAX_EXPORT_ERROR", 0.0)  # any rounding is now too much
    with pytest.raises(ExportError, match="differs from the PyTorch model"):
        export_onnx(build("waveunet_tiny").eval(), tmp_path / "w.onnx")
    assert not list(tmp_path.iterdir())


def test_export_refuses_to_replace_a_file_without_overwrite(tmp_path):
    out = tmp_path / "m.onnx"
    out.write_text("mine")
    r = subprocess.run(
        [sys.executable, "-m", "sekd", "export", "--checkpoint",
         str(COMMITTED / "snr_s2" / "model.pt"), "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "--overwrite" in r.stderr and out.read_text() == "mine"


def test_an_onnx_model_runs_on_the_cpu_only(exported, bundled, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to check the error")
    with pytest.raises(ValueError):
        enhance_files(OnnxModel(exported["snr_s2"]), bundled, tmp_path / "o", device="cuda")
