"""Nothing lost, at the command line: outputs are whole or absent (a full disk, SIGTERM),
nothing is replaced through a side door, quiet and offset input is enhanced at its level, and
the remaining silent-wrong and unclear cases name what is wrong."""

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sekd.data import AudioError, read_audio
from sekd.outputs import PARTIAL

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "checkpoints" / "cpu" / "student_mvat_dual_kd" / "model.pt"  # a trained model


def sekd(*args, limit_bytes=None):
    def limit():  # a disk that fills up after `limit_bytes` bytes of any one file
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "sekd", *map(str, args)],
        capture_output=True,
        text=True,
        preexec_fn=limit if limit_bytes else None,
    )


@pytest.fixture
def noisy(tmp_path, corpus):
    """Four real noisy VoiceBank-DEMAND files, 16-bit WAV as the corpus ships them."""
    inp = tmp_path / "in"
    inp.mkdir()
    src = corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="noisy")
    for f in sorted(src, key=lambda f: f.path.name)[:4]:
        sf.write(inp / f"{f.path.stem}.wav", read_audio(f.path), 16_000, subtype="PCM_16")
    return inp


def _frames(folder):
    return {p.name: sf.info(str(p)).frames for p in sorted(folder.iterdir())}


def _no_partials(*folders):
    return not [p for f in folders for p in f.iterdir() if PARTIAL in p.name]


# --------------------------------------------------------------------- whole or absent
def test_a_full_disk_leaves_no_output_under_a_final_name_and_a_rerun_finishes(noisy, tmp_path):
    out = tmp_path / "out"
    r = sekd("enhance", "--checkpoint", STUDENT, "--input", noisy, "--output", out,
             limit_bytes=60_000)  # fmt: skip
    assert r.returncode == 1 and "writing" in r.stderr
    whole = {n: f for n, f in _frames(noisy).items() if f * 2 + 44 <= 60_000}
    assert _frames(out) == whole and _no_partials(out)  # only the files that fit
    r = sekd("enhance", "--checkpoint", STUDENT, "--input", noisy, "--output", out,
             "--skip-existing")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _frames(out) == _frames(noisy)
    if whole:
        assert f"skipped {len(whole)} input(s) whose output exists" in r.stderr


def test_in_place_enhancement_keeps_the_input_when_the_write_fails(noisy):
    before = {p.name: p.read_bytes() for p in noisy.iterdir()}
    r = sekd("enhance", "--checkpoint", STUDENT, "--input", noisy, "--output", noisy,
             "--overwrite", limit_bytes=20_000)  # fmt: skip
    assert r.returncode == 1
    assert {p.name: p.read_bytes() for p in noisy.iterdir()} == before


def test_sigterm_mid_batch_leaves_only_whole_files_and_skip_existing_finishes(noisy, tmp_path):
    for k in range(4):  # more work, so that the signal lands mid-batch
        for p in sorted(noisy.glob("p*.wav"))[:4]:
            (noisy / f"copy{k}_{p.name}").write_bytes(p.read_bytes())
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sekd", "enhance", "--checkpoint", str(STUDENT), "--input",
         str(noisy), "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not (out.is_dir() and len(list(out.glob("*.wav"))) >= 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    assert proc.returncode in (143, 0)  # 0: it finished before the signal
    frames = _frames(noisy)
    assert all(frames[n] == f for n, f in _frames(out).items())  # each output is whole
    assert _no_partials(out)
    r = sekd("enhance", "--checkpoint", STUDENT, "--input", noisy, "--output", out,
             "--skip-existing")  # fmt: skip
    assert r.returncode == 0 and _frames(out) == frames


def test_skip_existing_and_overwrite_exclude_each_other(noisy, tmp_path):
    r = sekd("enhance", "--checkpoint", STUDENT, "--input", noisy, "--output", tmp_path / "o",
             "--skip-existing", "--overwrite")  # fmt: skip
    assert r.returncode == 2 and "not allowed with" in r.stderr


# ------------------------------------------------------------------- no side doors
def test_evaluate_never_writes_over_an_input_or_silently_over_a_file(noisy, tmp_path):
    clean = noisy  # the files scored against themselves: the point is where results go
    ref = sorted(clean.iterdir())[0]
    before = ref.read_bytes()
    for flag in ("--json", "--csv"):
        r = sekd("evaluate", "--clean", clean, "--enhanced", noisy, flag, ref, "--overwrite")
        assert r.returncode == 2 and "input files" in r.stderr and ref.read_bytes() == before
    same = tmp_path / "r.out"
    r = sekd("evaluate", "--clean", clean, "--enhanced", noisy, "--json", same, "--csv", same)
    assert r.returncode == 2 and "same file" in r.stderr and not same.exists()
    kept = tmp_path / "kept.json"
    kept.write_text("mine")
    r = sekd("evaluate", "--clean", clean, "--enhanced", noisy, "--json", kept)
    assert r.returncode == 2 and "--overwrite" in r.stderr and kept.read_text() == "mine"
    r = sekd("evaluate", "--clean", clean, "--enhanced", noisy, "--json", kept, "--overwrite")
    assert r.returncode == 0 and json.loads(kept.read_text())["count"] == 4


def test_evaluate_fails_on_an_unwritable_result_path_before_scoring(noisy, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    t = time.perf_counter()
    r = sekd("evaluate", "--clean", noisy, "--enhanced", noisy, "--json", afile / "r.json")
    assert r.returncode == 2 and "cannot be written" in r.stderr and "PESQ" not in r.stdout
    assert time.perf_counter() - t < 30


def test_enhance_refuses_a_link_in_the_output_folder_even_with_overwrite(noisy, tmp_path):
    outside = tmp_path / "precious.wav"
    outside.write_bytes(sorted(noisy.iterdir())[0].read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / sorted(noisy.iterdir())[1].name).symlink_to(outside)
    before = outside.read_bytes()
    r = sekd("enhance", "--checkpoint", STUDENT, "--input", noisy, "--output", out, "--overwrite")
    assert r.returncode == 2 and "symbolic link" in r.stderr and outside.read_bytes() == before


def test_a_file_another_run_writes_meanwhile_is_kept_and_reported(noisy, tmp_path, capsys):
    from sekd.enhance import enhance_files
    from sekd.models import load_model

    out = tmp_path / "out"
    model = load_model(STUDENT)
    first = sorted(noisy.iterdir())[0].name

    class OtherRunWritesFirst(torch.nn.Module):  # the real model; another run's file appears
        def __init__(self):
            super().__init__()
            self.model, self.normalizes_input = model, True

        def forward(self, x, std=None):
            if not (out / first).exists():
                (out / first).write_bytes(b"the other run's output")
            return self.model(x, std=std)

    written, errors = enhance_files(OtherRunWritesFirst(), noisy, out, progress=False)
    assert len(written) == 3 and len(errors) == 1 and first in str(errors[0])
    assert "exists already" in capsys.readouterr().err
    assert (out / first).read_bytes() == b"the other run's output"


# ---------------------------------------------------------------- enhanced at its level
def _level(x, dbfs):
    return x / np.sqrt(np.mean(x**2)) * 10 ** (dbfs / 20)


def test_enhancement_is_scale_equivariant_from_minus_20_to_minus_80_dbfs(corpus):
    from sekd.enhance import enhance_signal
    from sekd.models import load_model

    model = load_model(STUDENT)
    f = corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="noisy")[0]
    x = read_audio(f.path)
    loud, quiet = enhance_signal(model, _level(x, -20)), enhance_signal(model, _level(x, -80))
    gap = 10 ** (60 / 20)
    assert np.linalg.norm(quiet * gap - loud) / np.linalg.norm(loud) < 1e-3
    # without the nominal level the floor of MANNER's normalisation shows
    raw = enhance_signal(model, _level(x, -80), level=None)
    assert np.linalg.norm(raw * gap - loud) / np.linalg.norm(loud) > 0.1


def test_24_bit_files_at_minus_80_dbfs_come_out_24_bit_and_at_their_level(corpus, tmp_path):
    f = corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="noisy")[0]
    x = read_audio(f.path)
    for dbfs in (-20, -80):
        d = tmp_path / f"in{-dbfs}"
        d.mkdir()
        sf.write(d / "x.wav", _level(x, dbfs), 16_000, subtype="PCM_24")
        r = sekd(
            "enhance", "--checkpoint", STUDENT, "--input", d, "--output", tmp_path / f"o{-dbfs}"
        )  # noqa: E501
        assert r.returncode == 0, r.stderr
        assert sf.info(str(tmp_path / f"o{-dbfs}" / "x.wav")).subtype == "PCM_24"
    loud = read_audio(tmp_path / "o20" / "x.wav")
    quiet = read_audio(tmp_path / "o80" / "x.wav")
    assert np.linalg.norm(quiet * 1000 - loud) / np.linalg.norm(loud) < 1e-3


def test_a_dc_offset_does_not_change_the_enhancement(corpus):
    from sekd.enhance import enhance_signal
    from sekd.models import load_model

    model = load_model(STUDENT)
    f = corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="noisy")[0]
    x = read_audio(f.path)
    x = x - x.mean()
    plain, offset = enhance_signal(model, x), enhance_signal(model, x + 0.05)
    assert np.linalg.norm(offset - plain) / np.linalg.norm(plain) < 1e-4
    assert np.corrcoef(offset, plain)[0, 1] > 0.9999


def test_clipping_into_a_16_bit_output_is_reported(tmp_path, capsys):
    from sekd.enhance import enhance_files

    d = tmp_path / "in"
    d.mkdir()
    x = np.full(16_000, -0.2, dtype=np.float32)  # a large negative offset with peaks at 0.99:
    x[::400] = 0.99  # without the offset, those peaks are beyond full scale
    sf.write(d / "x.wav", x, 16_000, subtype="PCM_16")
    written, errors = enhance_files(torch.nn.Identity(), d, tmp_path / "o", progress=False)
    assert not errors and sf.info(str(written[0])).subtype == "PCM_16"
    err = capsys.readouterr().err
    assert "x.wav: the enhanced signal peaks at +" in err and "40 sample(s) were clipped" in err


# --------------------------------------------------------------- silently wrong, unclear
def test_evaluate_refuses_two_files_of_one_name(noisy, tmp_path):
    enh = tmp_path / "enh"
    enh.mkdir()
    for p in noisy.iterdir():
        (enh / p.name).write_bytes(p.read_bytes())
    name = sorted(noisy.iterdir())[0].stem
    sf.write(enh / f"{name}.flac", read_audio(noisy / f"{name}.wav"), 16_000)
    r = sekd("evaluate", "--clean", noisy, "--enhanced", enh)
    assert r.returncode == 2 and f"{name}.flac and {name}.wav" in r.stderr.replace(
        f"{name}.wav and {name}.flac", f"{name}.flac and {name}.wav"
    )


def test_prepare_voicebank_into_its_own_source_is_refused(fake_voicebank):
    r = sekd("prepare-voicebank", fake_voicebank, "--out", fake_voicebank)
    assert r.returncode == 2 and "folder of their own" in r.stderr
    r = sekd("prepare-voicebank", fake_voicebank, "--out", fake_voicebank / "sub")
    assert r.returncode == 2 and "inside it" in r.stderr


def test_prepare_voicebank_refuses_a_kept_file_at_another_rate(fake_voicebank, tmp_path):
    from sekd.data import voicebank_dirs

    out = tmp_path / "vb16"
    noisy_src, _ = voicebank_dirs(fake_voicebank, "test")
    kept = out / noisy_src.name / sorted(noisy_src.iterdir())[0].name
    kept.parent.mkdir(parents=True)
    kept.write_bytes(sorted(noisy_src.iterdir())[0].read_bytes())  # 48 kHz, under the 16 kHz name
    r = sekd("prepare-voicebank", fake_voicebank, "--out", out)
    assert r.returncode == 2 and "48000 Hz, not 16000 Hz" in r.stderr and kept.name in r.stderr


def test_a_sample_rate_of_1_hz_is_an_error_not_20_s_of_audio(tmp_path):
    f = tmp_path / "odd.wav"
    sf.write(f, np.random.default_rng(0).standard_normal(20) * 0.1, 1)
    with pytest.raises(AudioError, match="odd.wav: sample rate 1 Hz is below 8000 Hz"):
        read_audio(f)


def test_stereo_channels_that_cancel_are_named_as_such(tmp_path):
    x = np.random.default_rng(0).standard_normal(16_000) * 0.1
    f = tmp_path / "phase.wav"
    sf.write(f, np.stack([x, -x], axis=1), 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="2 channels cancel when averaged to mono"):
        read_audio(f)


def test_odd_entries_in_an_input_folder_are_noted_and_the_batch_goes_on(noisy, tmp_path):
    (noisy / "loop.wav").symlink_to(noisy / "loop.wav")
    os.mkfifo(noisy / "pipe.wav")
    (noisy / "folder.wav").mkdir()
    (noisy / "more").mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "sekd", "enhance", "--checkpoint", str(STUDENT), "--input",
         str(noisy), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "skipped 2 non-audio file(s)" in r.stderr and "loop.wav" in r.stderr
    assert "pipe.wav" in r.stderr
    assert "skipped 2 subfolder(s)" in r.stderr and "folder.wav" in r.stderr
    assert len(list((tmp_path / "out").iterdir())) == 4
    with pytest.raises(AudioError, match="is a folder"):
        read_audio(noisy / "folder.wav")


def test_enhance_files_takes_one_path_as_well_as_a_list(noisy, tmp_path):
    from sekd.enhance import enhance_files
    from sekd.models import load_model

    model = load_model(STUDENT)
    one = sorted(noisy.iterdir())[0]
    for i, given in enumerate((str(one), one, str(noisy))):
        written, errors = enhance_files(model, given, tmp_path / f"o{i}", progress=False)
        assert not errors and len(written) == (1 if i < 2 else 4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_enhance_files_on_cuda_without_cuda_fails_before_the_output_folder(noisy, tmp_path):
    from sekd.enhance import enhance_files

    with pytest.raises(ValueError, match="CUDA is not available"):
        enhance_files(torch.nn.Identity(), noisy, tmp_path / "o", device="cuda")
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_config_with_an_extra_field_names_it(tmp_path):
    from sekd.models import build, load_model, model_state

    state = model_state(build("tiny_student"), "tiny_student")
    state["config"]["future_option"] = 3
    torch.save(state, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"field\(s\) \['future_option'\]"):
        load_model(tmp_path / "m.pt")


# --------------------------------------------------------------------------- training
SMOKE = ROOT / "configs" / "smoke" / "student_baseline.toml"


@pytest.mark.parametrize(
    "setting, message",
    [
        ("train.log_every=0", "train.log_every must be >= 1; got 0"),
        ("data.segment=0", "data.segment must be >= 2; got 0"),
        ("train.num_workers=-1", "train.num_workers must be >= 0; got -1"),
        ("optim.lr=0", "optim.lr must be > 0; got 0"),
    ],
)
def test_a_bad_setting_names_its_key_and_leaves_no_run_folder(tmp_path, setting, message):
    run = tmp_path / "run"
    r = sekd("train", "--config", SMOKE, "--out", run, "--set", setting)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not run.exists()


def test_a_config_that_is_its_own_base_names_the_cycle(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('base = "a.toml"\n')
    r = sekd("train", "--config", a, "--out", tmp_path / "run")
    assert r.returncode == 2 and "config base cycle" in r.stderr and "Traceback" not in r.stderr
    a.write_text('base = "b.toml"\n')
    b.write_text('base = "a.toml"\n')
    r = sekd("train", "--config", a, "--out", tmp_path / "run")
    assert r.returncode == 2 and f"{a} -> {b} -> {a}" in r.stderr
    assert not (tmp_path / "run").exists()


def _short_run(tmp_path, *extra):
    return sekd("train", "--config", SMOKE, "--out", tmp_path / "run", "--max-steps", "4",
                "--set", "train.valid_every=2", "--set", "train.log_every=1", *extra)  # fmt: skip


def test_resume_without_last_pt_is_refused_and_keeps_the_log(tmp_path):
    assert _short_run(tmp_path).returncode == 0
    run = tmp_path / "run"
    (run / "last.pt").unlink()
    log = (run / "metrics.jsonl").read_text()
    r = _short_run(tmp_path, "--resume")
    assert r.returncode == 2 and "no last.pt to resume it from" in r.stderr
    assert (run / "metrics.jsonl").read_text() == log and (run / "best.pt").is_file()


def test_resume_drops_a_log_line_cut_off_mid_write_and_names_a_broken_one(tmp_path):
    from sekd.train import read_metrics

    assert _short_run(tmp_path, "--max-steps", "2").returncode == 0  # the last --max-steps wins
    run = tmp_path / "run"
    (run / "summary.json").unlink()  # as if stopped before the end
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"kind": "train", "st')
    r = _short_run(tmp_path, "--max-steps", "2", "--resume")
    assert r.returncode == 0, r.stderr
    assert [x["kind"] for x in read_metrics(run)][: len(lines)] == [
        json.loads(x)["kind"] for x in lines
    ]
    broken = lines[:1] + ["{not json"] + lines[1:]
    (run / "metrics.jsonl").write_text("\n".join(broken) + "\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2: not a JSON record"):
        read_metrics(run)
