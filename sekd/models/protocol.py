"""What the rest of sekd asks of a model, written down once.

Every registered family is an `EnhancementModel` and an `IdentityInit`; a family that attention
transfer can read is also `Distillable`. tests/models/test_protocol.py checks every registered
family against them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class EnhancementModel(Protocol):
    """(B, 1, T) or (B, T) noisy waveform -> (B, 1, T) estimate of the same length. `cfg` is a
    frozen dataclass with `to_dict()` / `from_dict()` (checkpoints rebuild the model from it)."""

    cfg: Any

    def forward(self, noisy: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Distillable(Protocol):
    """A model attention transfer can read (`sekd.distill`).

    - `cfg.depth`: encoder depth (the dual-depth pairing maps student to teacher depths);
    - `view_blocks()`: the (side, depth) keys of its multi-view attention blocks;
    - `layer_keys()`: the (side, depth) keys of its encoder / decoder layer outputs;
    - `forward(noisy, return_views=keys, return_layers=keys)`: (estimate, Taps) with
      `Taps.views[(side, depth, view)]` and `Taps.layers[(side, depth)]`, each (B, C, T), for
      the keys asked (True: all).
    """

    cfg: Any

    def view_blocks(self) -> list[tuple[str, int]]: ...

    def layer_keys(self) -> list[tuple[str, int]]: ...

    def forward(self, noisy: torch.Tensor, return_views=False, return_layers=False): ...


@runtime_checkable
class IdentityInit(Protocol):
    """A model that can start training at the identity (`model.init = "identity"`):
    `init_identity(noisy)` sets its output layer so that the model passes `noisy` through, at
    the input's level and polarity, leaves BatchNorm statistics as they were, and returns the
    R^2 of that fit on `noisy`."""

    def init_identity(self, noisy: torch.Tensor) -> float: ...
