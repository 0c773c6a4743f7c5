"""ONNX export of a sekd model and enhancement through ONNX Runtime.

`export_onnx` writes a model (BatchNorm folded into the convolutions) as an ONNX graph of
opset 18 with a dynamic length axis, batch 1, and checks it against PyTorch on real bundled
files at two lengths before it is kept (`MAX_EXPORT_ERROR`).

The graph's contract, also written into the file's metadata (`sekd.*` properties):
- input `noisy` (1, 1, T), float32, with T a valid length: T = offset (mod multiple) and
  T >= minimum (`sekd.length_multiple`, `sekd.length_offset`, `sekd.length_minimum`); pad the
  signal with zeros up to the next valid length and crop the output back (`valid_length`);
- for MANNER models, input `std` (1, 1, 1): the scale the model divides its input by (the
  unpadded signal's std; chunked enhancement passes the whole file's);
- output `enhanced` (1, 1, T).
`OnnxModel` does the padding and cropping, so it enhances like the PyTorch model
(`sekd.enhance.enhance_signal`, `sekd enhance --checkpoint model.onnx`).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from .models.fuse import fold_batchnorm
from .models.manner import Manner
from .models.registry import family_of
from .models.waveunet import WaveUNet
from .outputs import atomic_path

OPSET = 18
MAX_EXPORT_ERROR = 1e-4  # max abs difference ONNX Runtime vs PyTorch an export may have
CHECK_SECONDS = (1.3, 3.7)  # the two lengths an export is checked at (not valid lengths)


class ExportError(ValueError):
    """A model that cannot be exported, or an export that does not compute the model."""


def length_rule(model) -> dict:
    """{multiple, offset, minimum}: the input lengths T the model maps onto themselves
    (MANNER: each of its `depth` down-convolutions of kernel 8 and stride 4 must fit exactly;
    Wave-U-Net: T a multiple of 2^decimations)."""
    if isinstance(model, Manner):
        multiple = 4**model.cfg.depth
        minimum = int(model.valid_length(1))
        return {"multiple": multiple, "offset": minimum % multiple, "minimum": minimum}
    if isinstance(model, WaveUNet):
        return {"multiple": model.total_stride, "offset": 0, "minimum": model.total_stride}
    raise ExportError(
        f"cannot export a {type(model).__name__}: sekd exports its MANNER and Wave-U-Net models"
    )


def valid_length(length: int, rule: dict) -> int:
    """The smallest length >= `length` that `rule` (`length_rule`) allows."""
    n = max(length, rule["minimum"])
    return n + (rule["offset"] - n) % rule["multiple"]


class _Graph(torch.nn.Module):
    """The exported function: the folded model on a valid-length input."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, noisy, std=None):
        if std is None:
            return self.model(noisy)
        return self.model(noisy, std=std)


def _example(model, rule: dict) -> tuple:
    length = valid_length(16_000, rule)
    x = 0.05 * torch.randn(1, 1, length, generator=torch.Generator().manual_seed(0))
    if getattr(model, "normalizes_input", False):
        return x, x.std(dim=-1, keepdim=True)
    return (x,)


def _onnx_program(model, rule: dict):
    graph = _Graph(model).eval()
    example = _example(model, rule)
    names = ["noisy", "std"][: len(example)]
    length = torch.export.Dim("T", min=rule["minimum"], max=2**26)
    dynamic = {"noisy": {2: length}, **({"std": None} if len(example) > 1 else {})}
    # the exporter's notes (torchvision absent, a deprecation inside torch) are not the user's
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.onnx.export(
                graph,
                example,
                dynamo=True,
                opset_version=OPSET,
                input_names=names,
                output_names=["enhanced"],
                dynamic_shapes=dynamic,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; say which model and why
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {exc})") from None


def _metadata(model, preset: str, rule: dict, source: str) -> dict[str, str]:
    return {
        "sekd.family": family_of(model),
        "sekd.preset": preset,
        "sekd.config": json.dumps(model.cfg.to_dict()),
        "sekd.source": source,
        "sekd.sample_rate": "16000",
        "sekd.takes_std": json.dumps(bool(getattr(model, "normalizes_input", False))),
        "sekd.length_multiple": str(rule["multiple"]),
        "sekd.length_offset": str(rule["offset"]),
        "sekd.length_minimum": str(rule["minimum"]),
    }


def export_onnx(model, out, preset: str = "", source: str = "", overwrite: bool = False):
    """Export `model` to `out` (.onnx), checked (`check_export`) before it is moved into place.
    Returns (path, {length: max abs difference})."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ExportError(f"--out {out}: an ONNX file ends in .onnx")
    rule = length_rule(model)
    model = fold_batchnorm(model)
    program = _onnx_program(model, rule)
    import onnx

    with atomic_path(out, overwrite) as tmp:
        program.save(str(tmp))
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, _metadata(model, preset, rule, source))
        onnx.save(proto, str(tmp))
        errors = check_export(tmp, model)
        worst = max(errors.values())
        if not worst <= MAX_EXPORT_ERROR:
            raise ExportError(
                f"the exported graph differs from the PyTorch model by {worst:.2e} "
                f"(> {MAX_EXPORT_ERROR:g}); nothing was written"
            )
    return out, errors


def check_signals() -> list[np.ndarray]:
    """The longest real bundled noisy file (VoiceBank-DEMAND test), cut at CHECK_SECONDS."""
    from .data import Corpus, read_audio

    files = Corpus().select(kind="pair", dataset="voicebank-demand", split="test", role="noisy")
    x = max((read_audio(f.path) for f in files), key=len)  # the longest
    return [x[: int(s * 16_000)] for s in CHECK_SECONDS]


@torch.no_grad()
def check_export(path, model) -> dict[int, float]:
    """{length: max abs difference} of ONNX Runtime against `model` on `check_signals`."""
    from .enhance import enhance_signal

    runtime = OnnxModel(path)
    model = fold_batchnorm(model)
    return {
        len(x): float(np.max(np.abs(enhance_signal(runtime, x) - enhance_signal(model, x))))
        for x in check_signals()
    }


class OnnxModel:
    """An exported sekd model in ONNX Runtime, called like the PyTorch model:
    `model(x)` or, for MANNER, `model(x, std=std)` on (1, 1, T) tensors of any length."""

    def __init__(self, path, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX model at {self.path}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's own exception types
            raise ValueError(f"{self.path} cannot be loaded by ONNX Runtime ({exc})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "sekd.length_multiple" not in meta:
            raise ValueError(f"{self.path} was not exported by sekd (no sekd.* metadata)")
        self.metadata = meta
        self.normalizes_input = json.loads(meta["sekd.takes_std"])
        self.rule = {k: int(meta[f"sekd.length_{k}"]) for k in ("multiple", "offset", "minimum")}

    def __call__(self, x: torch.Tensor, std: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32).reshape(1, 1, -1)
        length = x.shape[-1]
        if self.normalizes_input and std is None:
            std = x.std(dim=-1, keepdim=True)
        padded = torch.nn.functional.pad(x, (0, valid_length(length, self.rule) - length))
        feed = {"noisy": padded.numpy()}
        if self.normalizes_input:
            feed["std"] = std.reshape(1, 1, 1).to(torch.float32).numpy()
        (y,) = self.session.run(["enhanced"], feed)
        return torch.from_numpy(y[..., :length])

    def eval(self):
        return self
