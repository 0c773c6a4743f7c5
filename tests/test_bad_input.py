"""Bad input, as a user meets it at the command line: every error names the file or value,
nothing the user has is overwritten, and one bad item never stops the batch."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from sekd.config import config_from_dict
from sekd.data import read_audio
from sekd.models import build, save_model


def sekd(*args):
    return subprocess.run(
        [sys.executable, "-m", "sekd", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(build("tiny_student"), tmp_path_factory.mktemp("ck") / "m.pt")


@pytest.fixture
def folder(tmp_path, corpus):
    """Three real noisy files, WAV and FLAC."""
    inp = tmp_path / "in"
    inp.mkdir()
    src = corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="noisy")
    for i, f in enumerate(sorted(src, key=lambda f: f.path.name)[:3]):
        x = read_audio(f.path)[:20_000]
        sf.write(inp / (f.path.stem + (".wav" if i else ".flac")), x, 16_000)
    return inp


def _bytes(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


# ----------------------------------------------------------------------------- enhance
def test_enhance_into_the_input_folder_is_refused_without_overwrite(ckpt, folder):
    before = _bytes(folder)
    r = sekd("enhance", "--checkpoint", ckpt, "--input", folder, "--output", folder)
    assert r.returncode == 2 and "holds input files" in r.stderr and "--overwrite" in r.stderr
    assert _bytes(folder) == before
    # one input file inside the output folder is enough
    r = sekd("enhance", "--checkpoint", ckpt, "--input", folder / "p232_002.wav",
             "--output", folder)  # fmt: skip
    assert r.returncode == 2 and "p232_002.wav" in r.stderr and _bytes(folder) == before
    r = sekd("enhance", "--checkpoint", ckpt, "--input", folder, "--output", folder, "--overwrite")
    assert r.returncode == 0 and _bytes(folder).keys() == before.keys()
    assert _bytes(folder) != before


def test_existing_outputs_and_name_clashes_are_errors_before_any_write(ckpt, folder, tmp_path):
    out = tmp_path / "out"
    assert sekd("enhance", "--checkpoint", ckpt, "--input", folder, "--output", out).returncode == 0
    before = _bytes(out)
    r = sekd("enhance", "--checkpoint", ckpt, "--input", folder, "--output", out)
    assert r.returncode == 2 and "exist already" in r.stderr and _bytes(out) == before
    # two inputs with one name: nothing is written
    other = tmp_path / "other"
    other.mkdir()
    (other / "p232_002.wav").write_bytes((folder / "p232_002.wav").read_bytes())
    fresh = tmp_path / "fresh"
    r = sekd("enhance", "--checkpoint", ckpt, "--input", folder, other / "p232_002.wav",
             "--output", fresh)  # fmt: skip
    assert r.returncode == 2 and "written twice" in r.stderr and "p232_002.wav" in r.stderr
    assert not fresh.exists() or not any(fresh.iterdir())


def test_one_bad_file_does_not_stop_the_batch(ckpt, folder, tmp_path):
    x = read_audio(folder / "p232_002.wav")
    sf.write(folder / "a_one_sample.wav", x[:1], 16_000)
    sf.write(folder / "b_vorbis.ogg", x, 16_000)  # readable, not written as OGG: becomes .wav
    sf.write(folder / "b_mpeg.mp3", x, 16_000)  # the same for MP3
    (folder / "c_broken.flac").write_bytes(b"fLaC not really")
    (folder / "notes.txt").write_text("not audio")
    out = tmp_path / "out"
    r = sekd("enhance", "--checkpoint", ckpt, "--input", folder, "--output", out,
             "--chunk-seconds", "3")  # fmt: skip
    assert r.returncode == 1
    for bad in ("a_one_sample.wav", "c_broken.flac"):
        assert r.stderr.count(bad) == 1, r.stderr  # each failure reported once, by name
    assert "notes.txt" in r.stderr  # skipped, and said so
    assert sorted(p.name for p in out.iterdir()) == [
        "b_mpeg.wav", "b_vorbis.wav", "p232_001.flac", "p232_002.wav", "p232_003.wav",
    ]  # fmt: skip
    assert "wrote 5 of 7 file(s)" in r.stdout


@pytest.mark.parametrize(
    "value, message",
    [("1", "too short: a chunk needs at least 2.52 s"), ("nan", "positive number"),
     ("inf", "positive number"), ("-2", "positive number")],
)  # fmt: skip
def test_chunk_seconds_errors_speak_in_seconds(ckpt, folder, tmp_path, value, message):
    r = sekd("enhance", "--checkpoint", ckpt, "--input", folder, "--output", tmp_path / "o",
             "--chunk-seconds", value)  # fmt: skip
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert "samples" not in r.stderr.split("error:")[1].split("(")[0]


def test_output_problems_are_named_before_the_model_runs(folder, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    # a checkpoint that does not exist proves the output is checked first
    r = sekd("enhance", "--checkpoint", tmp_path / "none.pt", "--input", folder,
             "--output", afile)  # fmt: skip
    assert r.returncode == 2 and f"--output {afile} is a file" in r.stderr
    r = sekd("enhance", "--checkpoint", tmp_path / "none.pt", "--input", folder,
             "--output", afile / "sub")  # fmt: skip
    assert r.returncode == 2 and f"--output {afile / 'sub'} cannot be written" in r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_enhance_on_cuda_without_cuda_is_a_clear_error(ckpt, folder, tmp_path):
    r = sekd("enhance", "--checkpoint", ckpt, "--input", folder, "--output", tmp_path / "o",
             "--device", "cuda")  # fmt: skip
    assert r.returncode == 2 and "CUDA is not available" in r.stderr
    assert "Traceback" not in r.stderr


def test_enhance_runs_files_one_by_one_like_batch_one(ckpt, folder, tmp_path):
    """Zero-padding a batch changes the padded item (per-example input scale): enhance never
    batches files, so each output equals the model run on that file alone."""
    from sekd.enhance import enhance_files, enhance_signal
    from sekd.models import load_model

    model = load_model(ckpt)
    written, errors = enhance_files(model, [folder], tmp_path / "o", progress=False)
    assert not errors and len(written) == 3
    for p in written:
        alone = enhance_signal(model, read_audio(folder / p.name))
        # the outputs keep the inputs' 16-bit format: one step is 3.1e-5
        assert np.max(np.abs(read_audio(p, allow_silent=True) - alone)) < 1e-4


# ---------------------------------------------------------------------------- checkpoints
def test_a_text_file_is_not_a_checkpoint_and_no_unsafe_advice(folder, tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    r = sekd("enhance", "--checkpoint", bad, "--input", folder, "--output", tmp_path / "o")
    assert r.returncode == 2 and "is not a sekd checkpoint" in r.stderr
    assert "weights_only=False" not in r.stderr and "Traceback" not in r.stderr


def test_a_partial_state_dict_is_summarised(folder, tmp_path):
    state = build("tiny_student").state_dict()
    from sekd.models import model_state

    full = model_state(build("tiny_student"), "tiny_student")
    full["state_dict"] = {k: v for i, (k, v) in enumerate(state.items()) if i % 3}
    torch.save(full, tmp_path / "partial.pt")
    r = sekd("enhance", "--checkpoint", tmp_path / "partial.pt", "--input", folder,
             "--output", tmp_path / "o")  # fmt: skip
    assert r.returncode == 2 and "missing key(s)" in r.stderr and "in all)" in r.stderr
    assert len(r.stderr) < 600


# ------------------------------------------------------------------------------ evaluate
def test_evaluate_says_which_files_the_means_leave_out(folder, tmp_path, corpus):
    clean, enh = tmp_path / "clean", tmp_path / "enh"
    clean.mkdir()
    enh.mkdir()
    src = corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="clean")[:5]
    for f in src:
        x = read_audio(f.path)
        sf.write(clean / f"{f.path.stem}.wav", x, 16_000)
        sf.write(
            enh / f"{f.path.stem}.wav",
            x + 0.01 * np.random.default_rng(0).standard_normal(len(x)),
            16_000,
        )  # noqa: E501
    names = [f.path.stem for f in src]
    (enh / f"{names[0]}.wav").write_bytes(b"")  # empty
    sf.write(enh / f"{names[1]}.wav", np.zeros(16_000), 16_000)  # all zero
    sf.write(enh / f"{names[2]}.wav", np.full(16_000, np.nan), 16_000, subtype="FLOAT")  # NaN
    r = sekd("evaluate", "--clean", clean, "--enhanced", enh, "--json", tmp_path / "r.json")
    assert r.returncode == 1
    assert "means over the 2 scored file(s) of 5; 3 failed and are NOT in the means" in r.stdout
    for n in names[:3]:
        assert n in r.stderr
    text = (tmp_path / "r.json").read_text()
    res = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert (res["count"], res["scored"], res["failed"]) == (5, 2, 3)
    assert res["files"][0]["pesq"] is None and res["files"][0]["error"]


# -------------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "over, message",
    [
        ({"optim": {"lr": "fast"}}, "[optim]: lr = 'fast' is not a number"),
        ({"train": {"batch_size": "4"}}, "[train]: batch_size = '4' is not a whole number"),
        ({"data": {"snrs": 5}}, "[data]: snrs = 5 is not a list of numbers"),
        ({"train": {"bf16": "yes"}}, "[train]: bf16 = 'yes' is not true or false"),
    ],
)
def test_config_values_of_the_wrong_type_name_key_value_and_type(over, message):
    with pytest.raises(ValueError) as err:
        config_from_dict(over)
    assert message in str(err.value)


def test_config_type_error_at_the_command_line(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[optim]\nlr = "fast"\n')
    r = sekd("train", "--config", cfg, "--out", tmp_path / "run")
    assert r.returncode == 2 and "lr = 'fast' is not a number" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


# ------------------------------------------------------------------- complexity, reproduce
@pytest.mark.parametrize("samples", ["0", "-5"])
def test_complexity_samples_below_one(samples):
    r = sekd("complexity", "--preset", "tiny_student", "--samples", samples)
    assert r.returncode == 2 and "--samples" in r.stderr and "Traceback" not in r.stderr


def test_reproduce_accepts_only_the_notebooks_parameters(tmp_path):
    r = sekd("reproduce", "--profile", "smoke", "--only", "03", "--param", "retrian=true",
             "--out", tmp_path)  # fmt: skip
    assert r.returncode == 2 and "unknown notebook parameter(s) ['retrian']" in r.stderr
    assert "retrain" in r.stderr.split("parameters of the selected notebooks:")[1]
    assert not list(tmp_path.iterdir())
