"""The committed CPU-scale models in one line (`sekd.pretrained`), and enhancement of arrays
and files at any sample rate:

    import sekd
    model = sekd.pretrained("mvat_kd_student")
    sekd.enhance_file(model, "noisy.wav", "enhanced.wav")      # at noisy.wav's own rate
    y = sekd.enhance_array(model, x, sample_rate=44_100)       # the same for an array

The models are the study's (`checkpoints/cpu/`, in this repository); `hubconf.py` offers the
same names to `torch.hub.load(repo, name, source="local")`. Each name's description, how it
was trained and its scores, is read from its committed config and from results/cpu/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .data.audio import SAMPLE_RATE, audio_subtype, read_audio, resample, write_audio
from .data.corpus import REPO_ROOT
from .enhance import enhance_signal
from .objectives import canonical_kind
from .outputs import check_outputs

COMMITTED = REPO_ROOT / "checkpoints" / "cpu"
SCORES = REPO_ROOT / "results" / "cpu" / "voicebank"


@dataclass(frozen=True)
class Pretrained:
    run: str  # the committed run under checkpoints/cpu/
    what: str  # one line: what the model is

    @property
    def checkpoint(self) -> Path:
        return COMMITTED / self.run / "model.pt"


PRETRAINED = {
    "teacher": Pretrained("teacher", "The MV-AT study's teacher: MANNER-B's shape at hidden 20."),
    "baseline_student": Pretrained(
        "student_baseline", "The 1.5GF MANNER student trained alone (MV-AT's baseline)."
    ),
    "mvat_student": Pretrained(
        "student_mvat_dual_q1",
        "The 1.5GF MANNER student distilled from the teacher with multi-view attention "
        "transfer (dual-depth pairing, l1).",
    ),
    "mvat_kd_student": Pretrained(
        "student_mvat_dual_kd",
        "The 1.5GF MANNER student distilled with multi-view attention transfer and output "
        "distillation (MV-AT + KD).",
    ),
    "snr_s2": Pretrained(
        "snr_s2",
        "The SNR study's time-domain U-Net student S2, each training mixture supervised by "
        "the band teacher of its SNR.",
    ),
}


def _entry(name: str) -> Pretrained:
    if name not in PRETRAINED:
        raise ValueError(f"no pretrained model {name!r}; available: {', '.join(PRETRAINED)}")
    return PRETRAINED[name]


def pretrained(name: str):
    """The committed model `name` (one of PRETRAINED), in eval mode."""
    from .models import load_model

    entry = _entry(name)
    if not entry.checkpoint.is_file():
        raise FileNotFoundError(f"{name}: no committed model at {entry.checkpoint}")
    return load_model(entry.checkpoint).eval()


def _training(run: str) -> str:
    cfg = json.loads((COMMITTED / run / "config.json").read_text())
    t, d = cfg["train"], cfg["data"]
    hours = t["max_steps"] * t["batch_size"] * d["segment"] / SAMPLE_RATE / 3600
    return (
        f"Preset {cfg['model']['preset']}, objective {canonical_kind(cfg['objective']['kind'])}; "
        "trained "
        f"{t['max_steps']:,} steps of {t['batch_size']} x {d['segment'] / SAMPLE_RATE:g} s "
        f"(about {hours:.0f} h of audio) on the cpu profile's mixtures (configs/cpu/)."
    )


def _scores(run: str) -> str:
    path = SCORES / f"{run}.json"
    if not path.is_file():
        return "Not scored yet."
    scored = json.loads(path.read_text())
    mean = scored["mean"]
    noisy = json.loads((SCORES / "noisy.json").read_text())["mean"]
    return (
        f"On the {scored['scored']} bundled VoiceBank-DEMAND test pairs "
        f"(results/cpu/voicebank/{run}.json): PESQ {mean['pesq']:.2f} (noisy input "
        f"{noisy['pesq']:.2f}), STOI {mean['stoi']:.3f} ({noisy['stoi']:.3f}), SI-SDR "
        f"improvement {mean['si_sdri']:+.2f} dB."
    )


def describe(name: str) -> str:
    """What a pretrained model is, how it was trained and its scores (from the repository)."""
    entry = _entry(name)
    return "\n\n".join(
        [
            entry.what,
            _training(entry.run),
            _scores(entry.run),
            f"Weights: {entry.checkpoint.relative_to(REPO_ROOT)}",
        ]
    )


def enhance_array(model, x, sample_rate: int = SAMPLE_RATE, **options) -> np.ndarray:
    """Enhance a mono signal at any sample rate: resampled to 16 kHz for the model (scipy's
    polyphase resampler) and back to `sample_rate`; `options` go to `enhance_signal` (chunk,
    device, level). Returns float32 of the input's length."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a mono signal of shape (T,), got shape {x.shape}")
    y = enhance_signal(model, resample(x, sample_rate, SAMPLE_RATE), **options)
    y = resample(y, SAMPLE_RATE, sample_rate)
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)].astype(np.float32)


def enhance_file(model, src, dst, overwrite: bool = False, **options) -> Path:
    """Enhance an audio file into `dst` (WAV or FLAC) at the input's sample rate and sample
    format (stereo is averaged to mono), written atomically; an existing `dst` is refused
    without `overwrite`."""
    src, dst = Path(src), Path(dst)
    check_outputs([dst], overwrite, inputs=[src])
    rate = sf.info(str(src)).samplerate
    y = enhance_array(model, read_audio(src, sr=rate), rate, **options)
    return write_audio(dst, y, rate, subtype=audio_subtype(src), overwrite=overwrite)
