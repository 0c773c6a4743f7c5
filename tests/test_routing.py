from pathlib import Path

import pytest
import torch

from sekd.data import Corpus
from sekd.routing import PAPER_BANDS, STUDENT_SNRS, TEST_SNRS, RoutedTeachers, snr_band


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
