"""SNR bands and teacher routing (SNR teachers-student paper; docs/method.md section 5)."""

from __future__ import annotations

import torch

# The paper's four teacher bands (dB), the student's training SNRs and the test grid.
PAPER_BANDS: tuple[tuple[float, ...], ...] = (
    (-20.0, -17.0, -13.0, -11.0),
    (-10.0, -7.0, -3.0, 1.0),
    (0.0, 3.0, 7.0, 9.0),
    (10.0, 13.0, 17.0, 20.0),
)
STUDENT_SNRS: tuple[float, ...] = (-20.0, -10.0, 0.0, 10.0, 20.0)
TEST_SNRS: tuple[float, ...] = tuple(float(s) for s in range(-20, 21, 5))


def snr_band(snr: float, bands=PAPER_BANDS, between: str = "nearest") -> int:
    """Index of the band whose SNRs contain `snr`; an SNR between bands goes to the nearest
    band (distance to the band's closest SNR; ties go to the lower band), or raises with
    between="error"."""
    for i, band in enumerate(bands):
        if any(abs(snr - s) < 1e-9 for s in band):
            return i
    for i, band in enumerate(bands):
        if min(band) <= snr <= max(band):
            return i
    if between == "error":
        raise ValueError(f"SNR {snr} dB is in no band of {bands}")
    if between != "nearest":
        raise ValueError(f"between must be 'nearest' or 'error', got {between!r}")
    dist = [min(abs(snr - s) for s in band) for band in bands]
    return dist.index(min(dist))


class RoutedTeachers:
    """Frozen teachers, one per band; a batch is split by band and each part goes to its teacher.

    `__call__(noisy (B, 1, T), snr (B,))` -> (B, 1, T) with each example enhanced by its own
    band's teacher; `route(snr)` gives the band index of every example.
    """

    def __init__(self, teachers, bands=PAPER_BANDS, between: str = "nearest"):
        if len(teachers) != len(bands):
            raise ValueError(f"{len(teachers)} teachers for {len(bands)} bands")
        self.teachers, self.bands, self.between = list(teachers), bands, between
        for t in self.teachers:
            t.eval()
            for p in t.parameters():
                p.requires_grad_(False)

    def route(self, snr: torch.Tensor) -> torch.Tensor:
        return torch.tensor([snr_band(float(s), self.bands, self.between) for s in snr])

    @torch.no_grad()
    def __call__(self, noisy: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        band = self.route(snr)
        out = torch.empty_like(noisy)
        for b in band.unique().tolist():
            idx = (band == b).nonzero().flatten().to(noisy.device)
            out[idx] = self.teachers[b](noisy[idx])
        return out

    def to(self, device):
        self.teachers = [t.to(device) for t in self.teachers]
        return self
