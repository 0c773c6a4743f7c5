"""sekd: knowledge distillation for speech enhancement.

    import sekd
    model = sekd.pretrained("mvat_kd_student")        # a committed model, in eval mode
    sekd.enhance_file(model, "noisy.wav", "enhanced.wav")

`sekd.hub` holds these (imported on first use, so `import sekd` stays light).
"""

__version__ = "0.1.0"

_HUB = ("PRETRAINED", "describe", "enhance_array", "enhance_file", "pretrained")


def __getattr__(name):
    if name in _HUB:
        from . import hub

        return getattr(hub, name)
    raise AttributeError(f"module 'sekd' has no attribute {name!r}")


__all__ = [*_HUB]
