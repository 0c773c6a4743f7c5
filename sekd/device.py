"""Choosing a torch device by name, with an error that says what this machine has."""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def pick_device(name: str | None = None, local_rank: int = 0) -> torch.device:
    """The device `name` ("cpu", "cuda", "cuda:1", "mps"); None: CUDA (this process's local
    rank) if present, else the CPU. A device this machine lacks is a ValueError naming it and
    the devices that exist."""
    if not name:
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"unknown device {name!r}; devices on this machine: {', '.join(available_devices())}"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ValueError(
                f"device {name!r}: CUDA is not available here (torch {torch.__version__}, "
                f"{build}); devices on this machine: {', '.join(available_devices())}"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                f"devices: {', '.join(available_devices())}"
            )
    elif dev.type == "mps" and "mps" not in available_devices():
        raise ValueError(
            f"device {name!r} is not available; devices on this machine: "
            f"{', '.join(available_devices())}"
        )
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"device {name!r} is not supported; devices on this machine: "
            f"{', '.join(available_devices())}"
        )
    return dev
