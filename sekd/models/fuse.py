"""Inference-time folding of BatchNorm into the convolution before it (same function, fewer
passes over memory). Training keeps the unfolded modules; `fold_batchnorm` returns a copy."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy in which every Conv1d / ConvTranspose1d directly followed by a
    BatchNorm1d inside an nn.Sequential becomes one convolution (the BatchNorm an Identity)."""
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, (nn.Conv1d, nn.ConvTranspose1d)) and isinstance(bn, nn.BatchNorm1d):
                seq[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose1d))
                seq[i + 1] = nn.Identity()
    return model
