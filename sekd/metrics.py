"""Objective measures: wideband PESQ, STOI, and the Hu & Loizou (2008) composite measures.

PESQ and STOI come from the `pesq` and `pystoi` packages. The composite measures (LLR, WSS,
segmental SNR and CSIG/CBAK/COVL) are a vectorised numpy transcription of Loizou's MATLAB
`composite.m` (30 ms Hann frames, 75 % overlap, lowest 95 % of LLR/WSS frames, frame SNR
clipped to [-10, 35] dB), checked against its reference output in the tests. The PESQ term is
wideband PESQ at 16 kHz by default (the convention of MANNER, DEMUCS and CMGAN evaluation);
`pesq_mode="nb_raw"` gives the original raw narrowband P.862 score that composite.m used.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
from pesq import pesq as _pesq
from pystoi import utils as _stoi_utils
from tqdm.auto import tqdm

from .data.audio import SAMPLE_RATE

# pystoi's module (its package rebinds the name `pystoi.stoi` to the function): constants
_STOI = importlib.import_module("pystoi.stoi")


EPS = np.finfo(np.float64).eps

# Klatt's 25 critical bands (centre, bandwidth in Hz), as in composite.m's wss().
_CENT = np.array([50.0, 120, 190, 260, 330, 400, 470, 540, 617.372, 703.378, 798.717, 904.128,
                  1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08, 2446.71,
                  2701.97, 2978.04, 3276.17, 3597.63])  # fmt: skip
_BW = np.array([70.0, 70, 70, 70, 70, 70, 70, 77.3724, 86.0056, 95.3398, 105.411, 116.256,
                127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631, 255.255,
                276.072, 298.126, 321.465, 346.136])  # fmt: skip


class MetricError(ValueError):
    """A file pair that a measure cannot score (for example PESQ finds no utterance)."""


def _mround(x: float) -> int:
    """MATLAB round: halves away from zero."""
    return int(math.floor(x + 0.5))


# ----------------------------------------------------------------------------------- PESQ, STOI
def pesq_wb(clean: np.ndarray, enhanced: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """ITU-T P.862.2 wideband PESQ (MOS-LQO); raises MetricError with PESQ's reason."""
    try:
        return float(
            _pesq(sr, np.asarray(clean, np.float64), np.asarray(enhanced, np.float64), "wb")
        )
    except Exception as exc:  # pesq raises NoUtterancesError, BufferTooShortError, ...
        raise MetricError(f"PESQ failed: {type(exc).__name__}: {exc}") from None


def pesq_nb_raw(clean: np.ndarray, enhanced: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Raw narrowband P.862 score, recovered exactly from the P.862.1 MOS-LQO the package gives."""
    try:
        mos = float(
            _pesq(sr, np.asarray(clean, np.float64), np.asarray(enhanced, np.float64), "nb")
        )
    except Exception as exc:
        raise MetricError(f"PESQ failed: {type(exc).__name__}: {exc}") from None
    # P.862.1: mos = 0.999 + 4 / (1 + exp(-1.4945 raw + 4.6607))
    return (4.6607 - math.log(4.0 / (mos - 0.999) - 1.0)) / 1.4945


def ls_gain(clean: np.ndarray, enhanced: np.ndarray) -> float:
    """Least-squares gain of `enhanced` on the clean reference, <y, s> / <s, s>.

    1 for a perfect output, about 0.5 for one at half the clean level, negative for an output of
    inverted polarity (-1 for -s). PESQ, STOI and SI-SDR are all blind to the sign of the output;
    this is the measure that sees it. Raises MetricError for a silent reference.
    """
    s = np.asarray(clean, np.float64)
    y = np.asarray(enhanced, np.float64)[: len(s)]
    s = s[: len(y)]
    energy = float(s @ s)
    if not energy > 0:
        raise MetricError("gain: the clean reference is silent")
    return float(y @ s) / energy


def si_sdr(clean: np.ndarray, enhanced: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al., ICASSP 2019), both signals made zero-mean.

    The target is the projection a*s of the output on the clean signal s, with the
    least-squares a, which may be negative: like PESQ and STOI, SI-SDR does not see an
    inverted output (SI-SDR(s, -s) = SI-SDR(s, s)); `ls_gain` does. +inf for an exact multiple
    of s; raises MetricError for a silent reference.
    """
    s = np.asarray(clean, np.float64)
    y = np.asarray(enhanced, np.float64)[: len(s)]
    s = s[: len(y)]
    s, y = s - s.mean(), y - y.mean()
    energy = float(s @ s)
    if not energy > 0:
        raise MetricError("SI-SDR: the clean reference is silent")
    target = (float(y @ s) / energy) * s
    residual = y - target
    num, den = float(target @ target), float(residual @ residual)
    if num == 0.0:  # silent output (or orthogonal to the reference)
        return -math.inf
    if den == 0.0:
        return math.inf
    return 10.0 * math.log10(num / den)


def _hop_frames(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """pystoi's framing, range(0, len(x) - win, hop), as a strided view (n, win)."""
    n = len(range(0, len(x) - win, hop))
    if n == 0:
        return np.empty((0, win))
    return np.lib.stride_tricks.sliding_window_view(x, win)[: n * hop : hop][:n]


def resample_poly(x: np.ndarray, up: int, down: int, window: np.ndarray) -> np.ndarray:
    """`scipy.signal.resample_poly(x, up, down, axis=-1, window=window)` (zero padding) as a
    few matrix products instead of upfirdn's scalar loop; equal to float rounding (tested).

    Output sample up * j + phi is sum_d x[down * j + d] h[phi * down - up * d]: with x cut into
    rows of `down` samples, each output row j (of `up` samples) is a sum over a few consecutive
    input rows, each times a (down, up) block of the filter.
    """
    g = math.gcd(int(up), int(down))
    up, down = int(up) // g, int(down) // g
    x = np.asarray(x, np.float64)
    n_in = x.shape[-1]
    n_out = -(-n_in * up // down)
    h = np.asarray(window, np.float64) * up
    half_len = (h.size - 1) // 2
    # resample_poly's alignment: zeros in front of the filter put output samples at its centre
    n_pre_pad = down - half_len % down
    first = (half_len + n_pre_pad) // down  # first output sample kept
    h = np.concatenate([np.zeros(n_pre_pad), h])
    d_lo = -((h.size - 1) // up)
    n_rows = -(-((up - 1) * down // up - d_lo + 1) // down)  # input rows per output row
    d = np.arange(d_lo, d_lo + n_rows * down)[:, None]
    k = np.arange(up)[None, :] * down - up * d  # (n_rows * down, up) filter indices
    G = np.where((k >= 0) & (k < h.size), h[np.clip(k, 0, h.size - 1)], 0.0)
    j0, j1 = first // up, -(-(first + n_out) // up)
    rows = j1 + n_rows - 1
    padded = np.zeros(x.shape[:-1] + (rows * down,))
    n_copy = min(n_in, rows * down + d_lo)
    padded[..., -d_lo : -d_lo + n_copy] = x[..., :n_copy]
    B = padded.reshape(x.shape[:-1] + (rows, down))
    Y = np.zeros(x.shape[:-1] + (j1 - j0, up))
    for r in range(n_rows):
        Y += B[..., j0 + r : j1 + r, :] @ G[r * down : (r + 1) * down]
    start = first - j0 * up
    return Y.reshape(x.shape[:-1] + (-1,))[..., start : start + n_out]


@functools.lru_cache(maxsize=8)
def _stoi_window(fs: int, sr: int) -> np.ndarray:
    h = _stoi_utils._resample_window_oct(fs, sr)
    return h / np.sum(h)


def _power(spec: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """|spec|^2 of a complex array, squared in place over its (re, im) pairs (spec is spent)."""
    v = spec.view(np.float64)
    np.square(v, out=v)
    return np.add(v[..., 0::2], v[..., 1::2], out=out)


def stoi(clean: np.ndarray, enhanced: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Classic STOI (Taal et al. 2011) as a fraction: pystoi's algorithm (extended=False) with
    its constants, resampling filter, band matrix and overlap-add, and its per-frame Python
    loops (silent-frame removal, STFT, segments) and resampler loop as array operations. Equal
    to `pystoi.stoi` to float rounding (tested on every bundled pair and other rates).

    pystoi answers a too-short or mostly silent signal with a warning and 1e-5; that is a
    MetricError here, so it is reported per file and never averaged in as a near-zero score.
    """
    S, U = _STOI, _stoi_utils
    x, y = np.asarray(clean, np.float64), np.asarray(enhanced, np.float64)
    if x.shape != y.shape:
        raise MetricError(f"STOI: lengths differ, {x.shape} vs {y.shape}")
    if sr != S.FS:
        # pystoi's Octave-compatible resampler (its filter), run as `resample_poly` above
        x, y = resample_poly(np.stack([x, y]), S.FS, sr, _stoi_window(S.FS, sr))
    win, hop = S.N_FRAME, S.N_FRAME // 2
    w = np.hanning(win + 2)[1:-1]
    # silent-frame removal: frames more than DYN_RANGE dB below the loudest clean frame go
    xf, yf = _hop_frames(x, win, hop) * w, _hop_frames(y, win, hop) * w
    energy = 20 * np.log10(np.linalg.norm(xf, axis=1) + U.EPS)
    keep = (np.max(energy, initial=-np.inf) - S.DYN_RANGE - energy) < 0
    # k kept frames overlap-add to (k - 1) hop + win samples, which give k - 1 STFT frames;
    # pystoi needs N of them for one segment
    if keep.sum() - 1 < S.N:
        raise MetricError("STOI failed: not enough non-silent frames (signal too short)")
    x, y = U._overlap_and_add(xf[keep], hop), U._overlap_and_add(yf[keep], hop)
    # both STFTs in one FFT call, frames zero-padded to NFFT
    xf, yf = _hop_frames(x, win, hop), _hop_frames(y, win, hop)
    frames = np.zeros((2, len(xf), S.NFFT))
    np.multiply(xf, w, out=frames[0, :, :win])
    np.multiply(yf, w, out=frames[1, :, :win])
    power = _power(scipy.fft.rfft(frames, axis=2))  # (2, frames, NFFT / 2 + 1)
    # one-third octave bands, then every window of N frames: (segments, bands, N)
    x_tob, y_tob = np.sqrt(S.OBM @ power.transpose(0, 2, 1))
    xs = np.lib.stride_tricks.sliding_window_view(x_tob, S.N, axis=1).transpose(1, 0, 2)
    ys = np.lib.stride_tricks.sliding_window_view(y_tob, S.N, axis=1).transpose(1, 0, 2)
    scale = np.linalg.norm(xs, axis=2, keepdims=True) / (
        np.linalg.norm(ys, axis=2, keepdims=True) + U.EPS
    )
    yp = np.minimum(ys * scale, xs * (1 + 10 ** (-S.BETA / 20)))
    yp = yp - yp.mean(2, keepdims=True)
    xc = xs - xs.mean(2, keepdims=True)
    yp /= np.linalg.norm(yp, axis=2, keepdims=True) + U.EPS
    xc /= np.linalg.norm(xc, axis=2, keepdims=True) + U.EPS
    return float(np.sum(yp * xc) / (xc.shape[0] * xc.shape[1]))


# ------------------------------------------------------------------------------------ composite
FRAME_CHUNK = 64  # frames per FFT batch: ~0.5 MB buffers that stay in cache and are reused


def _frame_measures(clean: np.ndarray, proc: np.ndarray, sr: int):
    """composite.m's framing (30 ms Hann frames, quarter-window hop) of both signals, in one
    pass over chunks of frames: the power spectra |FFT|^2 of each frame zero-padded to
    `_n_fft(win)` (bins 0 .. n_fft / 2), and per frame the energies of the clean frame and of
    the difference (for segSNR). Returns (clean_pow, proc_pow, clean_energy, noise_energy).
    Fewer than two frames is a MetricError.

    Chunking keeps the working set in cache and reuses its buffers; whole-signal arrays of
    frames made it ~40 % slower (page faults on fresh multi-MB arrays).
    """
    win = _mround(30 * sr / 1000)
    hop = win // 4
    n = max(int(np.floor(len(clean) / hop - win / hop)), 0)
    window = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, win + 1) / (win + 1)))
    if n < 2:
        raise MetricError(f"signal too short for composite measures ({len(clean)} samples)")
    n_fft = _n_fft(win)
    frames = [
        np.lib.stride_tricks.sliding_window_view(x, win)[: n * hop : hop] for x in (clean, proc)
    ]
    powers = [np.empty((n, n_fft // 2 + 1)) for _ in range(2)]
    energy, noise = np.empty(n), np.empty(n)
    bufs = [np.zeros((FRAME_CHUNK, n_fft)) for _ in range(2)]
    for i in range(0, n, FRAME_CHUNK):
        m = min(FRAME_CHUNK, n - i)
        for f, buf, pw in zip(frames, bufs, powers):
            np.multiply(f[i : i + m], window, out=buf[:m, :win])
            _power(scipy.fft.rfft(buf[:m], axis=1), out=pw[i : i + m])
        c, d = bufs[0][:m, :win], bufs[0][:m, :win] - bufs[1][:m, :win]
        energy[i : i + m] = np.einsum("ij,ij->i", c, c)
        noise[i : i + m] = np.einsum("ij,ij->i", d, d)
    return powers[0], powers[1], energy, noise


def _n_fft(win: int) -> int:
    return 2 ** int(np.ceil(np.log2(2 * win)))


def segsnr(clean_energy: np.ndarray, noise_energy: np.ndarray) -> np.ndarray:
    """Frame SNRs in dB from frame energies, clipped to [-10, 35]."""
    return np.clip(10 * np.log10(clean_energy / (noise_energy + EPS) + EPS), -10, 35)


def _levinson(R: np.ndarray, order: int) -> np.ndarray:
    """LPC polynomials [1, -a] for each row of autocorrelations R (n, order + 1)."""
    n = R.shape[0]
    a = np.ones((n, order))
    E = R[:, 0].copy()
    for i in range(order):  # over the model order, vectorised over frames
        past = a[:, :i].copy()
        s = np.sum(past * R[:, i:0:-1], 1) if i else 0.0
        k = (R[:, i + 1] - s) / E
        a[:, i] = k
        if i:
            a[:, :i] = past - k[:, None] * past[:, ::-1]
        E = (1 - k * k) * E
    return np.concatenate([np.ones((n, 1)), -a], 1)


@functools.lru_cache(maxsize=8)
def _cosines(n_fft: int, order: int) -> np.ndarray:
    """(n_fft / 2 + 1, order + 1): the inverse real DFT restricted to lags 0 .. order."""
    f = np.arange(n_fft // 2 + 1)[:, None]
    C = 2 * np.cos(2 * np.pi * f * np.arange(order + 1)[None, :] / n_fft) / n_fft
    C[0] /= 2
    C[-1] /= 2
    return C


def llr(clean_pow: np.ndarray, proc_pow: np.ndarray, sr: int) -> np.ndarray:
    """Log-likelihood ratio per frame (LPC order 10 below 10 kHz, else 16), from frame powers.

    The autocorrelation is the inverse DFT of the power spectrum at lags 0 .. order only (one
    matrix product); with n_fft >= 2 win it equals the direct lagged sums of composite.m (no
    circular wrap).
    """
    order = 10 if sr < 10_000 else 16
    C = _cosines(2 * (clean_pow.shape[1] - 1), order)
    Rc, Rp = clean_pow @ C, proc_pow @ C
    Ac, Ap = _levinson(Rc, order), _levinson(Rp, order)
    # A R A' with R the Toeplitz matrix of the clean autocorrelation, for every frame
    idx = np.abs(np.arange(order + 1)[:, None] - np.arange(order + 1)[None, :])
    T = Rc[:, idx]  # (n, p+1, p+1)
    num = np.einsum("ni,nij,nj->n", Ap, T, Ap)
    den = np.einsum("ni,nij,nj->n", Ac, T, Ac)
    return np.log(num / den)


def _critical_filters(sr: int, half: int) -> np.ndarray:
    j = np.arange(half)
    f0 = np.floor(_CENT / (sr / 2) * half)
    bw = _BW / (sr / 2) * half
    norm = (np.log(_BW[0]) - np.log(_BW))[:, None]
    filt = np.exp(-11 * ((j[None, :] - f0[:, None]) / bw[:, None]) ** 2 + norm)
    return filt * (filt > np.exp(-30.0 / (2.0 * 2.303)))  # (25, half): -30 dB floor


def wss(clean_pow: np.ndarray, proc_pow: np.ndarray, sr: int) -> np.ndarray:
    """Klatt's weighted spectral slope distance per frame, normalised by the sum of weights."""
    half = clean_pow.shape[1] - 1
    filt = _critical_filters(sr, half)
    Ec = 10 * np.log10(np.maximum(clean_pow[:, :half] @ filt.T, 1e-10))  # (n, 25)
    Ep = 10 * np.log10(np.maximum(proc_pow[:, :half] @ filt.T, 1e-10))
    Sc, Sp = np.diff(Ec, axis=1), np.diff(Ep, axis=1)  # (n, 24)
    Pc, Pp = _loc_peak(Ec, Sc), _loc_peak(Ep, Sp)
    Wc = 20 / (20 + Ec.max(1, keepdims=True) - Ec[:, :-1]) * (1 / (1 + Pc - Ec[:, :-1]))
    Wp = 20 / (20 + Ep.max(1, keepdims=True) - Ep[:, :-1]) * (1 / (1 + Pp - Ep[:, :-1]))
    W = (Wc + Wp) / 2
    return np.sum(W * (Sc - Sp) ** 2, 1) / np.sum(W, 1)


def _loc_peak(E: np.ndarray, S: np.ndarray) -> np.ndarray:
    """composite.m's local-peak search, vectorised (0-based transcription of its loops).

    Rising slope at band i: walk right while the slope stays positive (the walk may run one
    past the last slope), take the energy one band before where it stopped. Otherwise walk left
    while the slope is non-positive, take the energy one band after where it stopped. This is
    MATLAB's behaviour to the letter (the reference WSS value depends on it).
    """
    n, m = S.shape  # m = 24 slopes
    idx = np.broadcast_to(np.arange(m), (n, m))
    # right walk: first j >= i with S[j] <= 0, or m if none
    stop = np.where(S <= 0, idx, m)
    right = np.minimum.accumulate(stop[:, ::-1], axis=1)[:, ::-1]
    # left walk: last j <= i with S[j] > 0, or -1 if none
    start = np.where(S > 0, idx, -1)
    left = np.maximum.accumulate(start, axis=1)
    take = np.where(S > 0, right - 1, left + 1)
    return np.take_along_axis(E, take, axis=1)


def composite(
    clean: np.ndarray,
    enhanced: np.ndarray,
    sr: int = SAMPLE_RATE,
    pesq_score: float | None = None,
    pesq_mode: str = "wb",
) -> dict:
    """CSIG, CBAK, COVL with their parts LLR, WSS, segSNR and the PESQ used.

    `pesq_score` given: used as is. Otherwise `pesq_mode` "wb" (wideband P.862.2 at 16 kHz, the
    literature convention) or "nb_raw" (raw P.862 narrowband, as the original composite.m).
    """
    clean = np.asarray(clean, np.float64)
    enhanced = np.asarray(enhanced, np.float64)
    n = min(len(clean), len(enhanced))
    c, e = clean[:n] + EPS, enhanced[:n] + EPS
    if pesq_score is None:
        if pesq_mode == "wb":
            pesq_score = pesq_wb(c, e, sr)
        elif pesq_mode == "nb_raw":
            pesq_score = pesq_nb_raw(c, e, sr)
        else:
            raise ValueError(f"pesq_mode must be 'wb' or 'nb_raw', got {pesq_mode!r}")
    cp, ep, energy, noise = _frame_measures(c, e, sr)

    def trimmed_mean(v):
        return float(np.mean(np.sort(v)[: _mround(len(v) * 0.95)]))

    llr_m = trimmed_mean(llr(cp, ep, sr))
    wss_m = trimmed_mean(wss(cp, ep, sr))
    seg = float(np.mean(segsnr(energy, noise)))
    clip = lambda v: float(min(5.0, max(1.0, v)))  # noqa: E731
    return {
        "csig": clip(3.093 - 1.029 * llr_m + 0.603 * pesq_score - 0.009 * wss_m),
        "cbak": clip(1.634 + 0.478 * pesq_score - 0.007 * wss_m + 0.063 * seg),
        "covl": clip(1.594 + 0.805 * pesq_score - 0.512 * llr_m - 0.007 * wss_m),
        "llr": llr_m,
        "wss": wss_m,
        "segsnr": seg,
        "pesq": float(pesq_score),
    }


@dataclass(frozen=True)
class Measure:
    """One objective measure: its key in every result row, its column title, which way is
    better (True: higher, False: lower, None: neither, e.g. the gain, best at 1), whether the
    quality tables show it (the composite's parts stay per file), whether training validates
    on it, whether the SNR study reports it, the decimals it is shown with, and how it is
    computed. A new measure is one entry here (with its `fn`) and its test; cached results
    are scored again once it is added (`sekd.study.scoring`)."""

    name: str
    title: str
    higher_is_better: bool | None = True
    in_tables: bool = True
    # fn(clean, enhanced, sr) -> float for a measure of its own; None for PESQ and the composite
    # measures (computed together by `score`) and SI-SDRi (needs the noisy input)
    fn: Callable | None = None
    in_validation: bool = False
    in_snr_study: bool = False
    decimals: int = 3


# The one registry of measures: every result row, CSV header, table column, validation log
# entry and displayed precision comes from it. The name lists below are views of it, kept in
# place (other modules hold them), and change only through `register_measure`.
MEASURE: dict[str, Measure] = {}
METRICS: list[str] = []  # every measure, in registration order
QUALITY: list[str] = []  # the quality tables' columns
VALIDATION: list[str] = []  # what training validates on
SNR_STUDY: list[str] = []  # what the SNR study reports


def _views() -> None:
    METRICS[:] = list(MEASURE)
    QUALITY[:] = [n for n, m in MEASURE.items() if m.in_tables]
    VALIDATION[:] = [n for n, m in MEASURE.items() if m.in_validation]
    SNR_STUDY[:] = [n for n, m in MEASURE.items() if m.in_snr_study]


def register_measure(measure: Measure) -> Measure:
    """Add a measure: from then on every table, result file, validation log and cache key has
    it (cached results are scored again). A measure of its own needs its `fn`."""
    if measure.name in MEASURE:
        raise ValueError(f"measure {measure.name!r} is registered already")
    MEASURE[measure.name] = measure
    _views()
    return measure


def unregister_measure(name: str) -> None:
    """Remove a measure (a throwaway one of a test)."""
    MEASURE.pop(name)
    _views()


for _m in (
    Measure("pesq", "PESQ", in_validation=True, in_snr_study=True),
    Measure("stoi", "STOI", fn=stoi, in_validation=True, in_snr_study=True),
    Measure("csig", "CSIG"),
    Measure("cbak", "CBAK"),
    Measure("covl", "COVL"),
    Measure(
        "si_sdr", "SI-SDR (dB)", fn=lambda c, e, sr: si_sdr(c, e), in_validation=True, decimals=2
    ),  # fmt: skip
    Measure("si_sdri", "SI-SDRi (dB)", in_validation=True, in_snr_study=True, decimals=2),
    Measure(
        "gain", "gain", higher_is_better=None, fn=lambda c, e, sr: ls_gain(c, e), in_validation=True
    ),  # fmt: skip
    Measure("llr", "LLR", higher_is_better=False, in_tables=False),
    Measure("wss", "WSS", higher_is_better=False, in_tables=False),
    Measure("segsnr", "segSNR (dB)", in_tables=False),
):
    register_measure(_m)


def validation_scores(clean, enhanced, noisy, sr: int = SAMPLE_RATE) -> dict:
    """The VALIDATION measures of one output, on the arrays as given (training validates
    whole utterances with them); raises MetricError as `score` does."""
    out = {}
    for name in VALIDATION:
        m = MEASURE[name]
        if name == "pesq":
            out[name] = pesq_wb(clean, enhanced, sr)
        elif name == "si_sdri":
            out[name] = si_sdr(clean, enhanced) - si_sdr(clean, noisy)
        else:
            out[name] = m.fn(clean, enhanced, sr)
    return out


# ------------------------------------------------------------------------------- many pairs
MAX_TRIM = 160  # samples (10 ms): larger length mismatches are an error for that file


def score(
    clean: np.ndarray,
    enhanced: np.ndarray,
    sr: int = SAMPLE_RATE,
    composite_measures=True,
    noisy: np.ndarray | None = None,
) -> dict:
    """Every metric for one pair; raises MetricError (with the reason) when one cannot score.

    `composite_measures=False` scores PESQ, STOI, SI-SDR and the gain only (the composite
    measures are NaN). With the `noisy` input, `si_sdri` is the SI-SDR improvement over it
    (NaN without).
    """
    if abs(len(clean) - len(enhanced)) > MAX_TRIM:
        raise MetricError(
            f"length mismatch: clean {len(clean)} vs enhanced {len(enhanced)} samples "
            f"(more than {MAX_TRIM} apart)"
        )
    n = min(len(clean), len(enhanced))
    clean, enhanced = np.asarray(clean[:n], np.float64), np.asarray(enhanced[:n], np.float64)
    if not np.isfinite(enhanced).all():
        raise MetricError("the enhanced signal has NaN or infinite samples")
    p = pesq_wb(clean, enhanced, sr)
    if composite_measures:
        out = composite(clean, enhanced, sr, pesq_score=p)
    else:
        out = {k: float("nan") for k in METRICS} | {"pesq": p}
    for m in MEASURE.values():
        if m.fn is not None:
            out[m.name] = m.fn(clean, enhanced, sr)
    out["si_sdri"] = float("nan")
    if noisy is not None:
        out["si_sdri"] = out["si_sdr"] - si_sdr(clean, np.asarray(noisy, np.float64)[:n])
    return {k: out[k] for k in METRICS}


def _limit_threads() -> None:
    """One thread per worker process: the pool, not BLAS, provides the parallelism."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _score_item(item) -> dict:
    name, clean, enhanced, sr, full, noisy = item
    from .data.audio import AudioError, read_audio

    def load(x):
        return read_audio(x, sr) if isinstance(x, (str, Path)) else x

    row = {"name": name, **{k: float("nan") for k in METRICS}, "error": ""}
    try:
        n = None if noisy is None else load(noisy)
        row.update(score(load(clean), load(enhanced), sr, composite_measures=full, noisy=n))
    except (AudioError, MetricError) as err:
        row["error"] = str(err)
    return row


def summarize(rows: list[dict]) -> dict:
    """Means over the files that scored, with the counts of files, scored and failed ones.

    A failed file (unreadable, silent, NaN, too short for a measure) is not in the means: the
    means describe `scored` files only, and `failed` says how many were left out.
    """
    ok = [r for r in rows if not r["error"]]
    mean = {k: (float(np.mean([r[k] for r in ok])) if ok else float("nan")) for k in METRICS}
    # PESQ/STOI-only scoring leaves the composite columns NaN: their means are NaN too
    return {"mean": mean, "count": len(rows), "scored": len(ok), "failed": len(rows) - len(ok)}


def evaluate_pairs(
    pairs, workers: int = 1, sr: int = SAMPLE_RATE, progress: bool = True, composite_measures=True
):
    """Score (name, clean, enhanced) triples, or (name, clean, enhanced, noisy) for the SI-SDR
    improvement; clean/enhanced/noisy are paths or arrays.

    Runs in a process pool of `workers` (one thread each). Returns (rows, summary): one row per
    pair with every metric and an `error` column (empty when it scored), and `summarize(rows)`.
    """
    items = [
        (p[0], p[1], p[2], sr, composite_measures, p[3] if len(p) > 3 else None) for p in pairs
    ]
    bar = tqdm(total=len(items), desc="scoring", unit="file", disable=not progress)
    if workers <= 1:
        rows = []
        for it in items:
            rows.append(_score_item(it))
            bar.update()
    else:
        with ProcessPoolExecutor(workers, initializer=_limit_threads) as pool:
            rows = []
            for row in pool.map(_score_item, items, chunksize=1):
                rows.append(row)
                bar.update()
    bar.close()
    return rows, summarize(rows)


def evaluate_model(
    model,
    pairs,
    workers: int = 1,
    device: str = "cpu",
    progress: bool = True,
    composite_measures=True,
):
    """Enhance whole utterances at batch 1 (as the papers do), then score them.

    `pairs`: (name, noisy, clean) with paths or arrays. Returns (rows, summary).
    """
    import torch

    from .data.audio import AudioError, read_audio

    if isinstance(model, torch.nn.Module):
        from .models.fuse import fold_batchnorm

        model = fold_batchnorm(model)  # the same function in eval mode, faster
    model = model.to(device).eval()
    triples, failed = [], []
    for name, noisy, clean in tqdm(pairs, desc="enhancing", unit="file", disable=not progress):
        try:
            x = (
                read_audio(noisy)
                if isinstance(noisy, (str, Path))
                else np.asarray(noisy, np.float32)
            )
            c = (
                read_audio(clean)
                if isinstance(clean, (str, Path))
                else np.asarray(clean, np.float32)
            )
        except AudioError as err:
            failed.append({"name": name, **{k: float("nan") for k in METRICS}, "error": str(err)})
            continue
        with torch.no_grad():
            y = model(torch.from_numpy(x)[None, None].to(device))[0, 0].cpu().numpy()
        triples.append((name, c, y, x))
    rows, _ = evaluate_pairs(
        triples, workers, progress=progress, composite_measures=composite_measures
    )
    rows += failed
    return rows, summarize(rows)
