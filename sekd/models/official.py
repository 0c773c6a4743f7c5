"""Weights of the official MANNER code (github.com/winddori2002/MANNER, MIT) as a sekd model.

The official checkpoint is `{"loss", "state_dict", "optimizer"}` (or a bare state dict, with
an optional `module.` prefix from DataParallel) of a `MANNER` module whose parameters live under
`manner_block.`. Its module tree and ours compute the same function
(tests/models/test_manner.py); only the names differ. The mapping below is by the official
module structure: one rule per official sub-module, so every official key maps to exactly one
sekd key, and a file with keys outside these rules is not an official MANNER checkpoint.
"""

from __future__ import annotations

import re

import torch

from .manner import Manner, MannerConfig
from .registry import preset_config

_PREFIXES = ("module.", "manner_block.")
_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_W = r"(weight|bias)"

# (official pattern, sekd replacement) applied after the prefixes are removed. `L` is a layer
# path, "encoder.<i>" or "decoder.<i>" (both number deepest-last / deepest-first alike).
_L = r"((?:en|de)coder\.\d+)"
_RULES = [
    (rf"in_conv\.0\.{_W}", r"in_conv.0.\1"),
    (rf"in_conv\.1\.{_BN}", r"in_conv.1.\1"),
    (rf"out_conv\.0\.{_W}", r"out_conv.\1"),
    (r"linear\.0\.weight", "bottleneck.weight"),
    (rf"mask_gate\.output\.0\.{_W}", r"mask_tanh.\1"),
    (rf"mask_gate\.output_gate\.0\.{_W}", r"mask_sigmoid.\1"),
    (rf"mask_gate\.mask\.0\.{_W}", r"mask_out.0.\1"),
    (rf"{_L}\.down_conv\.0\.{_W}", r"\1.down.0.\2"),
    (rf"{_L}\.down_conv\.1\.{_BN}", r"\1.down.1.\2"),
    (rf"{_L}\.up_conv\.0\.{_W}", r"\1.up.0.\2"),
    (rf"{_L}\.up_conv\.1\.{_BN}", r"\1.up.1.\2"),
    # ResCon block
    (rf"{_L}\.conv_block\.point_conv1\.0\.conv\.{_W}", r"\1.rescon.pointwise_glu.0.\2"),
    (rf"{_L}\.conv_block\.point_conv1\.1\.{_BN}", r"\1.rescon.pointwise_glu.1.\2"),
    (rf"{_L}\.conv_block\.depth_conv\.0\.conv\.weight", r"\1.rescon.depthwise.0.weight"),
    (rf"{_L}\.conv_block\.depth_conv\.1\.{_BN}", r"\1.rescon.depthwise.1.\2"),
    (rf"{_L}\.conv_block\.point_conv2\.0\.conv\.{_W}", r"\1.rescon.pointwise.0.\2"),
    (rf"{_L}\.conv_block\.point_conv2\.1\.{_BN}", r"\1.rescon.pointwise.1.\2"),
    (rf"{_L}\.conv_block\.conv\.conv\.weight", r"\1.rescon.project.0.weight"),
    (rf"{_L}\.conv_block\.conv\.bn\.{_BN}", r"\1.rescon.project.1.\2"),
    (rf"{_L}\.conv_block\.shortcut\.conv\.weight", r"\1.rescon.shortcut.0.weight"),
    (rf"{_L}\.conv_block\.shortcut\.bn\.{_BN}", r"\1.rescon.shortcut.1.\2"),
    # multi-view attention block
    (rf"{_L}\.attn_block\.in_branch(\d)\.conv\.weight", r"\1.attention.branches.\2.0.weight"),
    (rf"{_L}\.attn_block\.in_branch(\d)\.bn\.{_BN}", r"\1.attention.branches.\2.1.\3"),
    (rf"{_L}\.attn_block\.channel_attn\.fc\.([02])\.{_W}", r"\1.attention.channel_mlp.\2.\3"),
    (rf"{_L}\.attn_block\.global_attn\.w_qs\.weight", r"\1.attention.global_attn.query.weight"),
    (rf"{_L}\.attn_block\.global_attn\.w_ks\.weight", r"\1.attention.global_attn.key.weight"),
    (rf"{_L}\.attn_block\.global_attn\.w_vs\.weight", r"\1.attention.global_attn.value.weight"),
    (rf"{_L}\.attn_block\.global_attn\.fc\.weight", r"\1.attention.global_attn.out.weight"),
    (
        rf"{_L}\.attn_block\.local_attn\.depth_conv\.0\.conv\.weight",
        r"\1.attention.local_dw.0.weight",
    ),  # noqa: E501
    (rf"{_L}\.attn_block\.local_attn\.depth_conv\.1\.{_BN}", r"\1.attention.local_dw.1.\2"),
    (rf"{_L}\.attn_block\.local_attn\.conv\.conv\.weight", r"\1.attention.local_map.0.weight"),
    (rf"{_L}\.attn_block\.local_attn\.conv\.bn\.{_BN}", r"\1.attention.local_map.1.\2"),
    (rf"{_L}\.attn_block\.out_branch(\d)\.conv\.weight", r"\1.attention.outputs.\2.0.weight"),
    (rf"{_L}\.attn_block\.out_branch(\d)\.bn\.{_BN}", r"\1.attention.outputs.\2.1.\3"),
    (rf"{_L}\.attn_block\.conv\.conv\.weight", r"\1.attention.fuse.0.weight"),
    (rf"{_L}\.attn_block\.conv\.bn\.{_BN}", r"\1.attention.fuse.1.\2"),
    (rf"{_L}\.attn_block\.shortcut\.conv\.weight", r"\1.attention.shortcut.0.weight"),
    (rf"{_L}\.attn_block\.shortcut\.bn\.{_BN}", r"\1.attention.shortcut.1.\2"),
    (rf"{_L}\.attn_block\.output_tanh\.0\.{_W}", r"\1.attention.gate_tanh.\2"),
    (rf"{_L}\.attn_block\.output_sigmoid\.0\.{_W}", r"\1.attention.gate_sigmoid.\2"),
    (rf"{_L}\.attn_block\.gate_conv\.0\.{_W}", r"\1.attention.gate_out.0.\2"),
]
_COMPILED = [(re.compile(p + r"\Z"), r) for p, r in _RULES]


class NotOfficialMannerError(ValueError):
    """A file that is not a checkpoint of the official MANNER code (names what did not fit)."""


def _strip(key: str) -> str:
    for p in _PREFIXES:
        if key.startswith(p):
            key = key[len(p) :]
    return key


def sekd_key(official_key: str) -> str | None:
    """The sekd name of an official MANNER parameter or buffer (None: not an official name)."""
    key = _strip(official_key)
    for pattern, repl in _COMPILED:
        if pattern.match(key):
            return pattern.sub(repl, key)
    return None


def _names(keys, most: int = 5) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:most]) + (f" ... ({len(keys)} in all)" if len(keys) > most else "")


def official_state_dict(obj) -> dict:
    """The state dict inside an official checkpoint (`{"state_dict": ...}` or bare)."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise NotOfficialMannerError(
            "not an official MANNER checkpoint: expected a state dict of tensors, alone or under "
            "'state_dict'"
        )
    return obj


def infer_config(state_dict: dict) -> MannerConfig:
    """Depth, hidden width and MA layers of an official state dict (by its names and shapes)."""
    keys = [_strip(k) for k in state_dict]
    if "in_conv.0.weight" not in keys:
        raise NotOfficialMannerError("not an official MANNER checkpoint: no manner_block.in_conv")
    hidden = next(v for k, v in state_dict.items() if _strip(k) == "in_conv.0.weight").shape[0]
    depth = len({m.group(1) for k in keys if (m := re.match(r"encoder\.(\d+)\.", k))})
    ma = sorted(
        {int(m.group(1)) for k in keys if (m := re.match(r"encoder\.(\d+)\.attn_block", k))}
    )
    return MannerConfig(depth=depth, hidden=hidden, ma_layers=tuple(ma))


def convert_official(obj, preset: str) -> Manner:
    """A sekd `Manner` of `preset` holding the weights of an official MANNER checkpoint.

    Every official key must map to a sekd key of the preset's model with the same shape, and
    every sekd key must be covered; anything else is a NotOfficialMannerError naming the keys.
    """
    family, cfg = preset_config(preset)
    if family != "manner":
        raise ValueError(f"preset {preset!r} is not a MANNER model")
    sd = official_state_dict(obj)
    unknown = [k for k in sd if sekd_key(k) is None]
    if unknown:
        raise NotOfficialMannerError(
            f"not an official MANNER checkpoint: {len(unknown)} key(s) outside the official "
            f"module structure ({_names(unknown)})"
        )
    found = infer_config(sd)
    if (found.depth, found.hidden, found.ma_layers) != (cfg.depth, cfg.hidden, cfg.ma_layers):
        raise ValueError(
            f"the checkpoint is a MANNER of depth {found.depth}, hidden {found.hidden}, MA at "
            f"encoder layers {list(found.ma_layers)}; preset {preset!r} has depth {cfg.depth}, "
            f"hidden {cfg.hidden}, MA at {list(cfg.ma_layers)}"
        )
    model = Manner(cfg)
    want = model.state_dict()
    mapped = {sekd_key(k): v for k, v in sd.items()}
    missing = sorted(set(want) - set(mapped))
    extra = sorted(set(mapped) - set(want))
    shapes = sorted(k for k in set(want) & set(mapped) if mapped[k].shape != want[k].shape)
    if missing or extra or shapes:
        raise NotOfficialMannerError(
            "the checkpoint does not fill the model: "
            + "; ".join(
                f"{what}: {_names(keys)}"
                for what, keys in (
                    ("missing", missing),
                    ("unexpected", extra),
                    ("other shapes", shapes),
                )  # fmt: skip
                if keys
            )
        )
    model.load_state_dict(mapped)
    return model.eval()
