"""sekd: knowledge distillation for speech enhancement."""

__version__ = "0.1.0"
