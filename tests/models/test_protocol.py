"""Every registered model family against the contract the rest of sekd relies on
(sekd.models.protocol): one conformance test, run over all of them."""

import pytest
import torch

from sekd.models import (
    VIEWS,
    Distillable,
    EnhancementModel,
    IdentityInit,
    build,
    families,
    model_from_state,
    model_state,
)

# one preset of each registered family: its toy one where it has one
SMALLEST = {
    family: next((p for p in presets if "tiny" in p), presets[0])
    for family, presets in families().items()
}
DISTILLABLE = {"manner"}  # families that attention transfer can read


@pytest.mark.parametrize("family", sorted(SMALLEST))
def test_every_family_meets_the_model_contract(family):
    torch.manual_seed(0)
    model = build(SMALLEST[family]).eval()
    assert isinstance(model, EnhancementModel)
    x = torch.randn(2, 1, 5000)
    with torch.no_grad():
        y = model(x)
        assert y.shape == x.shape and model(x[:, 0]).shape == x.shape
    # a checkpoint rebuilds the same function from the config
    clone = model_from_state(model_state(model)).eval()
    with torch.no_grad():
        torch.testing.assert_close(clone(x), y)
    assert isinstance(model, Distillable) == (family in DISTILLABLE)
    # every registered family can start at the identity (model.init = "identity")
    assert isinstance(model, IdentityInit)
    ident = build(SMALLEST[family]).train()
    speech_level = 0.05 * x
    assert ident.init_identity(speech_level) > 0.8
    with torch.no_grad():
        out = ident(speech_level)
    gain = (out * speech_level).sum() / speech_level.pow(2).sum()
    assert 0.6 < gain < 1.2
    if not isinstance(model, Distillable):
        return
    assert isinstance(model.cfg.depth, int)
    with torch.no_grad():
        out, taps = model(x, return_views=True, return_layers=True)
    torch.testing.assert_close(out, y)
    assert set(taps.views) == {(*b, v) for b in model.view_blocks() for v in VIEWS}
    assert set(taps.layers) == set(model.layer_keys())
    for t in (*taps.views.values(), *taps.layers.values()):
        assert t.dim() == 3 and t.shape[0] == 2  # (B, C, T)


def test_attention_transfer_refuses_a_model_without_taps():
    from sekd.distill import DistillationObjective, ObjectiveConfig

    with pytest.raises(ValueError, match=r"needs a Distillable student.*WaveUNet"):
        DistillationObjective(ObjectiveConfig(at="mvat"), build("waveunet_tiny"),
                              build("tiny_teacher"))  # fmt: skip
