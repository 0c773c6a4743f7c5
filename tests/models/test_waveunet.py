import numpy as np
import pytest
import torch

from sekd.enhance import enhance_signal
from sekd.models import WaveUNet, WaveUNetConfig, build, count_parameters


@pytest.mark.parametrize(
    "preset, params",
    [
        ("waveunet_public", 10_132_802),
        ("waveunet_snr", 12_680_906),
        ("waveunet_cpu", 795_308),
        ("waveunet_cpu_wide", 3_173_894),
    ],
)
def test_preset_parameter_counts(preset, params):
    assert count_parameters(build(preset)) == params


def test_paper_variant_channels_and_decimation():
    m = build("waveunet_snr")
    assert m.cfg.channels() == [48 + 24 * i for i in range(12)]
    assert [b[0].kernel_size[0] for b in m.encoder] == [15] * 12
    assert [b[0].kernel_size[0] for b in m.decoder] == [5] * 12
    assert m.decoder[0][0].in_channels == 312 + 312 and m.decoder[-1][0].out_channels == 48
    assert m.out[0].in_channels == 49 and m.total_stride == 2**7


@pytest.mark.parametrize("T", [2, 3, 127, 1001, 16_385])
def test_any_length(T):
    m = build("waveunet_tiny").eval()
    with torch.no_grad():
        y = m(torch.randn(2, 1, T))
    assert y.shape == (2, 1, T) and y.abs().max() < 1


def test_width_multiplier_scales_channels():
    assert WaveUNetConfig(width=0.25).channels()[:2] == [12, 18]
    with pytest.raises(ValueError, match="decimate"):
        WaveUNetConfig(decimate=13)


def test_chunked_equals_whole_file_for_the_unet():
    torch.manual_seed(0)
    m = WaveUNet(WaveUNetConfig(layers=8, decimate=5, width=0.125)).eval()
    x = np.random.default_rng(0).normal(0, 0.1, 130_001).astype(np.float32)
    whole = enhance_signal(m, x)
    chunked = enhance_signal(m, x, chunk=48_000)
    assert np.max(np.abs(whole - chunked)) < 1e-4


@pytest.mark.parametrize("preset", ["waveunet_tiny", "waveunet_cpu", "waveunet_cpu_wide"])
def test_identity_init_passes_the_input_through_with_positive_polarity(preset):
    torch.manual_seed(0)
    m = build(preset).train()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(0, 0.05, (4, 1, 8_000)).astype(np.float32))
    held_out = torch.from_numpy(rng.normal(0, 0.05, (3, 1, 5_001)).astype(np.float32))
    gain = lambda y: ((y * held_out).sum(-1) / (held_out**2).sum(-1)).flatten()  # noqa: E731
    with torch.no_grad():
        # the random start is further from the input than silence is
        assert (m(held_out) - held_out).pow(2).sum() > held_out.pow(2).sum()
    buffers = {k: b.clone() for k, b in m.named_buffers()}
    assert m.init_identity(x) > 0.99
    for k, b in m.named_buffers():
        assert torch.equal(b, buffers[k]), k
    with torch.no_grad():
        y = m(held_out)
    torch.testing.assert_close(y, torch.tanh(held_out))  # the input itself, any batch, any length
    assert gain(y).min() > 0.99
    # and the decoder still learns: the output layer's feature weights get a gradient
    m(held_out).pow(2).mean().backward()
    assert m.out[0].weight.grad[:, :-1].abs().sum() > 0
