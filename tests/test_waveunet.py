from pathlib import Path

import numpy as np
import pytest
import torch

from sekd.data import Corpus
from sekd.enhance import enhance_signal
from sekd.models import WaveUNet, WaveUNetConfig, build, count_parameters
from sekd.routing import PAPER_BANDS, STUDENT_SNRS, TEST_SNRS, RoutedTeachers, snr_band


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


# --------------------------------------------------------------------------------- routing
def test_bands_route_every_listed_snr_to_its_band():
    for i, band in enumerate(PAPER_BANDS):
        for snr in band:
            assert snr_band(snr) == i
    assert [snr_band(s) for s in STUDENT_SNRS] == [0, 1, 2, 3, 3]
    assert [snr_band(s) for s in TEST_SNRS] == [0, 0, 1, 1, 2, 2, 3, 3, 3]


@pytest.mark.parametrize(
    "snr, band",
    [
        (-25.0, 0),  # below every band: nearest is the lowest
        (-11.0, 0),  # edge of band 0
        (-10.5, 0),  # between -11 and -10, equally near: the lower band
        (-10.4, 1),
        (0.5, 1),  # inside the range of bands 1 (-10..1) and 2 (0..9): the first that spans it
        (9.0, 2),
        (9.4, 2),
        (9.6, 3),
        (25.0, 3),
    ],
)
def test_band_edges(snr, band):
    assert snr_band(snr) == band


def test_between_bands_can_be_an_error():
    with pytest.raises(ValueError, match="no band"):
        snr_band(-10.5, between="error")


class Constant(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.full_like(x, self.value) + 0 * self.w


def test_routed_teachers_use_the_right_teacher_per_example():
    routed = RoutedTeachers([Constant(float(i)) for i in range(4)])
    snr = torch.tensor([20.0, -20.0, 0.0, -10.0, 10.0, -3.0])
    out = routed(torch.randn(6, 1, 50), snr)
    assert out[:, 0, 0].tolist() == [3.0, 0.0, 2.0, 1.0, 3.0, 1.0]
    assert torch.all(out == out[:, :, :1])


def test_routed_loss_uses_teacher_of_each_example():
    from sekd.losses import snr_teacher_loss

    routed = RoutedTeachers([Constant(float(i)) for i in range(4)])
    snr = torch.tensor([-20.0, 10.0])
    student = torch.zeros(2, 1, 10)
    clean = torch.zeros(2, 1, 10)
    total, parts = snr_teacher_loss(student, routed(torch.randn(2, 1, 10), snr), clean, alpha=1.0)
    # teachers 0 and 3: mse = (0^2 + 3^2) / 2 = 4.5, loss = 1/2 * 4.5
    assert parts["teacher"].item() == pytest.approx(4.5)
    assert total.item() == pytest.approx(2.25)


def test_teacher_datasets_only_see_their_band(corpus: Corpus):
    from sekd.config import load_config
    from sekd.data import build_train_set

    for i, band in enumerate(PAPER_BANDS):
        cfg = load_config(
            Path(__file__).resolve().parents[1] / "configs" / "smoke" / f"snr_teacher{i + 1}.toml",
            data={"examples_per_epoch": 40},
        )
        ds = build_train_set(cfg.data, cfg.seed)
        for epoch in range(2):
            ds.set_epoch(epoch)
            seen = {ds[k]["snr"] for k in range(len(ds))}
            assert seen <= set(band) and len(seen) > 1
