import gc

import numpy as np
import pytest
import torch

from sekd.distill import (
    TABLE3_ROWS,
    DistillationObjective,
    ObjectiveConfig,
    at_loss,
    block_pairs,
    mvat_block_loss,
    mvat_loss,
    mvat_pairs,
    pair_keys,
    temporal_attention_map,
)
from sekd.losses import (
    STFT_RESOLUTIONS,
    kd_loss,
    mrstft_loss,
    si_sdr_gain_loss,
    snr_teacher_loss,
    weighted_loss,
)
from sekd.metrics import ls_gain, si_sdr
from sekd.models import VIEWS, build


# ------------------------------------------------------------------ independent numpy references
def np_tam(A, p=2):
    m = (np.abs(A) ** p).sum(1)
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)


def np_interp(m, n):
    """Linear interpolation with half-pixel centres (align_corners=False), per row."""
    L = m.shape[-1]
    pos = np.clip((np.arange(n) + 0.5) * L / n - 0.5, 0, L - 1)
    return np.stack([np.interp(pos, np.arange(L), row) for row in m])


def np_at(mt, ms, q=1):
    mt = np_interp(mt, ms.shape[-1])
    mt = mt / np.linalg.norm(mt, axis=-1, keepdims=True)
    ms = ms / np.linalg.norm(ms, axis=-1, keepdims=True)
    return np.mean((np.abs(mt - ms) ** q).sum(-1) ** (1 / q))


def np_mag(x, n_fft, hop, win):
    window = np.zeros(n_fft)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    left = (n_fft - win) // 2
    window[left : left + win] = w
    xp = np.pad(x, [(0, 0), (n_fft // 2, n_fft // 2)], mode="reflect")
    n_frames = 1 + (xp.shape[-1] - n_fft) // hop
    frames = np.stack([xp[:, i * hop : i * hop + n_fft] for i in range(n_frames)], -1)
    spec = np.fft.rfft(frames * window[None, :, None], axis=1)
    return np.sqrt(np.maximum(spec.real**2 + spec.imag**2, 1e-7))


def np_l1_mrstft(est, tgt):
    sc = mag = 0
    for r in STFT_RESOLUTIONS:
        X, Y = np_mag(est, *r), np_mag(tgt, *r)
        sc = sc + np.linalg.norm(Y - X, axis=(1, 2)) / np.linalg.norm(Y, axis=(1, 2))
        mag = mag + np.abs(np.log(Y) - np.log(X)).mean((1, 2))
    n = len(STFT_RESOLUTIONS)
    return np.abs(est - tgt).mean(-1) + 0.5 * sc / n + 0.5 * mag / n


def np_weighted(est, clean, noisy):
    noise = noisy - clean
    ec, en = (clean**2).sum(-1), (noise**2).sum(-1)
    a = ec / (ec + en + 2e-7)
    return np.mean(a * np_l1_mrstft(est, clean) + (1 - a) * np_l1_mrstft(noisy - est, noise))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# -------------------------------------------------------------------------------- invariances
def test_map_scale_and_permutation_invariance():
    A = torch.randn(3, 8, 50)
    m = temporal_attention_map(A)
    torch.testing.assert_close(temporal_attention_map(7.5 * A), m)
    torch.testing.assert_close(temporal_attention_map(A[:, torch.randperm(8)]), m)
    torch.testing.assert_close(torch.linalg.vector_norm(m, dim=-1), torch.ones(3))


def test_zero_map_is_guarded():
    m = temporal_attention_map(torch.zeros(2, 4, 10))
    assert torch.all(m == 0) and not torch.isnan(m).any()


@pytest.mark.parametrize("q", [1, 2])
def test_identical_maps_zero_and_different_maps_positive(q):
    m = torch.rand(4, 30)
    assert at_loss(m, m, q=q).item() == pytest.approx(0.0, abs=1e-7)
    assert at_loss(m, 3 * m, q=q).item() == pytest.approx(0.0, abs=1e-6)  # normalised inside
    assert at_loss(m, torch.rand(4, 30), q=q).item() > 1e-3


def test_resampling_sides_and_errors():
    t, s = torch.rand(2, 40), torch.rand(2, 10)
    assert at_loss(t, s, resample="teacher").item() != at_loss(t, s, resample="student").item()
    with pytest.raises(ValueError, match="resample"):
        at_loss(t, s, resample="both")
    with pytest.raises(ValueError, match=r"maps \(B, T\)"):
        at_loss(torch.rand(2, 3, 4), s)
    with pytest.raises(ValueError, match="batch sizes differ"):
        at_loss(torch.rand(3, 10), s)
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        temporal_attention_map(torch.rand(5, 5))


def test_gradients_reach_student_only():
    t = torch.rand(2, 6, 40, requires_grad=True)
    s = torch.rand(2, 3, 25, requires_grad=True)
    at_loss(temporal_attention_map(t), temporal_attention_map(s)).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


# -------------------------------------------------------------------------------- golden values
@pytest.mark.parametrize("p", [1, 2, 3])
def test_map_golden_for_each_p(rng, p):
    """p = 2 takes a * a (no abs): same values as |a|^p, and the same gradient."""
    A = rng.normal(size=(2, 5, 30))
    np.testing.assert_allclose(temporal_attention_map(torch.tensor(A), p).numpy(), np_tam(A, p))
    a, b = (torch.tensor(A, requires_grad=True) for _ in range(2))
    w = torch.rand(2, 30, dtype=torch.float64)
    (temporal_attention_map(a, p) * w).sum().backward()
    m = b.abs().pow(p).sum(1)
    (m / torch.linalg.vector_norm(m, dim=-1, keepdim=True) * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("q", [1, 2])
def test_at_golden(rng, q):
    A_t, A_s = rng.normal(size=(3, 7, 53)), rng.normal(size=(3, 4, 20))
    want = np_at(np_tam(A_t), np_tam(A_s), q)
    got = at_loss(
        temporal_attention_map(torch.tensor(A_t)), temporal_attention_map(torch.tensor(A_s)), q=q
    )
    assert got.item() == pytest.approx(want, abs=1e-5)
    np.testing.assert_allclose(
        temporal_attention_map(torch.tensor(A_t)).numpy(), np_tam(A_t), atol=1e-12
    )


def test_mrstft_and_weighted_golden(rng):
    clean = rng.normal(0, 0.1, (2, 4000))
    noisy = clean + rng.normal(0, 0.05, (2, 4000))
    est = clean + rng.normal(0, 0.02, (2, 4000))
    got = weighted_loss(*(torch.tensor(x)[:, None] for x in (est, clean, noisy)))
    assert got.total.item() == pytest.approx(np_weighted(est, clean, noisy), abs=1e-5)
    kd = kd_loss(*(torch.tensor(x) for x in (est, clean, noisy)))
    assert kd.total.item() == pytest.approx(np_weighted(est, clean, noisy), abs=1e-5)


def test_snr_teacher_loss_golden(rng):
    s, t, c = (rng.normal(size=(3, 500)) for _ in range(3))
    for alpha in (0.0, 0.5, 0.8):
        want = alpha * 0.5 * np.mean((s - t) ** 2) + (1 - alpha) * 0.5 * np.mean((s - c) ** 2)
        got, parts = snr_teacher_loss(*(torch.tensor(x) for x in (s, t, c)), alpha=alpha)
        assert got.item() == pytest.approx(want, abs=1e-10)
        assert parts["teacher"].item() == pytest.approx(np.mean((s - t) ** 2))
    with pytest.raises(ValueError, match="alpha"):
        snr_teacher_loss(*(torch.tensor(x) for x in (s, t, c)), alpha=1.5)


def test_si_sdr_gain_loss_golden_against_the_metrics(rng):
    # the SI-SDR and gain of sekd.metrics (numpy, float64, zero-mean SI-SDR) per example
    c = rng.normal(size=(3, 800)) + 0.3  # an offset: the loss, like the metric, removes means
    e = 0.6 * c + rng.normal(scale=0.5, size=(3, 800))
    sdr = [si_sdr(ci, ei) for ci, ei in zip(c, e, strict=True)]
    cz, ez = c - c.mean(1, keepdims=True), e - e.mean(1, keepdims=True)
    gain = [ls_gain(ci, ei) for ci, ei in zip(cz, ez, strict=True)]
    for w in (0.0, 10.0):
        total, parts = si_sdr_gain_loss(torch.tensor(e), torch.tensor(c), gain_weight=w)
        want = -np.mean(sdr) + w * np.mean((np.array(gain) - 1) ** 2)
        assert total.item() == pytest.approx(want, abs=1e-6)
        assert parts["si_sdr"].item() == pytest.approx(np.mean(sdr), abs=1e-6)
        assert parts["gain"].item() == pytest.approx(np.mean(gain), abs=1e-9)
    with pytest.raises(ValueError, match="gain_weight must be >= 0"):
        si_sdr_gain_loss(torch.tensor(e), torch.tensor(c), gain_weight=-1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        si_sdr_gain_loss(torch.tensor(e), torch.tensor(c[:, :700]))


def test_si_sdr_gain_loss_sees_polarity_and_attenuation_that_si_sdr_does_not(rng):
    c = torch.tensor(rng.normal(size=(2, 1, 4000)))
    e = c + 0.3 * torch.tensor(rng.normal(size=(2, 1, 4000)))
    plain = lambda x: si_sdr_gain_loss(x, c, gain_weight=0.0)[0].item()  # noqa: E731
    gained = lambda x: si_sdr_gain_loss(x, c, gain_weight=10.0)[0].item()  # noqa: E731
    a = si_sdr_gain_loss(e, c)[1]["gain"].item()
    for scaled in (-e, 0.2 * e, 3.0 * e):  # SI-SDR alone: blind to sign and scale
        assert plain(scaled) == pytest.approx(plain(e), abs=1e-6)
    # the gain term: inverted costs 10 * ((a + 1)^2 - (a - 1)^2) = 40 a more (a the mean gain)
    assert gained(-e) - gained(e) == pytest.approx(40 * a, rel=1e-5)
    g = np.array(
        [ls_gain(ci - ci.mean(), ei - ei.mean()) for ci, ei in zip(c[:, 0], e[:, 0], strict=True)]
    )
    want = 10 * np.mean((0.2 * g - 1) ** 2 - (g - 1) ** 2)
    assert gained(0.2 * e) - gained(e) == pytest.approx(want, rel=1e-6)
    assert gained(c) < gained(e)  # the clean signal itself: the least of the three


# ----------------------------------------------------------------------------- loss properties
def test_mrstft_zero_for_identical_positive_otherwise():
    x = torch.randn(2, 1, 4000)
    sc, mag = mrstft_loss(x, x)
    assert torch.all(sc == 0) and torch.all(mag == 0)
    sc, mag = mrstft_loss(x + 0.01 * torch.randn_like(x), x)
    assert torch.all(sc > 0) and torch.all(mag > 0)


def test_weight_is_one_without_noise_and_zero_without_speech():
    clean = 0.1 * torch.randn(1, 1, 4000)
    parts = weighted_loss(clean * 0.9, clean, clean)  # zero noise
    assert parts.weight.item() == pytest.approx(1.0, abs=1e-6)
    noise = 0.1 * torch.randn(1, 1, 4000)
    parts = weighted_loss(noise * 0.5, torch.zeros_like(noise), noise)  # zero speech
    assert parts.weight.item() == 0.0
    assert torch.isfinite(parts.total) and torch.isfinite(parts.clean).all()


def test_loss_shape_errors():
    with pytest.raises(ValueError, match=r"weighted_loss\(estimate, clean\): shapes differ"):
        weighted_loss(torch.randn(2, 1, 100), torch.randn(2, 1, 90), torch.randn(2, 1, 100))
    with pytest.raises(ValueError, match=r"estimate: expected a \(B, 1, T\)"):
        weighted_loss(torch.randn(2, 2, 100), torch.randn(2, 2, 100), torch.randn(2, 2, 100))


# -------------------------------------------------------------------------------------- pairing
def _view_keys(preset):
    with torch.no_grad():
        _, taps = build(preset).eval()(torch.randn(1, 1, 2000), return_views=True)
    return taps.views


def test_pairs_manner_b_to_student():
    s, t = _view_keys("student_1p5gf"), _view_keys("manner_b")
    assert mvat_pairs(s, t, 3, "dual_depth") == [
        ("encoder", 3, 3),
        ("encoder", 3, 4),
        ("decoder", 3, 3),
        ("decoder", 3, 4),
    ]
    assert mvat_pairs(s, t, 3, "same_depth") == [("encoder", 3, 3), ("decoder", 3, 3)]


def test_pairs_manner_s_to_student_falls_back_to_deeper():
    s, t = _view_keys("student_1p5gf"), _view_keys("manner_s_38gf")
    want = [("encoder", 3, 4), ("decoder", 3, 4)]
    assert mvat_pairs(s, t, 3, "same_depth") == want
    assert mvat_pairs(s, t, 3, "dual_depth") == want


def test_pairs_equal_depths_and_gaps():
    assert block_pairs([1, 2, 3, 4], [1, 2, 3, 4], 4) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    # student block 1 has no teacher partner at 1: nearest deeper is 3
    assert block_pairs([1, 4], [3, 4], 4, "same_depth") == [(1, 3), (4, 4)]
    assert block_pairs([2], [1], 2) == []  # nothing deeper: skipped
    with pytest.raises(ValueError, match="unknown pairing"):
        block_pairs([1], [1], 1, "cross")


# ------------------------------------------------------------------------------------ objective
@pytest.mark.parametrize("row", sorted(TABLE3_ROWS))
def test_every_table3_row_has_its_config_in_every_profile(row):
    from sekd.study import PROFILES, run_config

    for profile in PROFILES:
        assert run_config(profile, f"student_{row}").objective == TABLE3_ROWS[row], profile


def test_at_reduction_mean_is_the_norm_over_the_length():
    from sekd.distill import at_loss

    t, s = torch.rand(3, 400), torch.rand(3, 400)
    for q in (1, 2):
        norm, mean = at_loss(t, s, q), at_loss(t, s, q, reduction="mean")
        assert float(mean) == pytest.approx(float(norm) / 400 ** (1 / q), rel=1e-6)
    # maps that differ alike at every frame: the l1 norm grows as sqrt(T), the mean falls so
    a = [at_loss(torch.rand(4, n), torch.rand(4, n), 1) for n in (100, 1600)]
    b = [at_loss(torch.rand(4, n), torch.rand(4, n), 1, reduction="mean") for n in (100, 1600)]
    assert float(a[1] / a[0]) == pytest.approx(4, rel=0.15)
    assert float(b[1] / b[0]) == pytest.approx(0.25, rel=0.15)
    with pytest.raises(ValueError, match="reduction"):
        at_loss(t, s, 1, reduction="sum")


@pytest.mark.parametrize("row", sorted(TABLE3_ROWS))
def test_every_table3_row_runs_and_never_touches_the_teacher(row):
    student, teacher = build("tiny_student"), build("tiny_teacher")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    obj = DistillationObjective(TABLE3_ROWS[row], student, teacher)
    opt = torch.optim.Adam(student.parameters(), 1e-3)
    noisy, clean = torch.randn(2, 1, 6000), 0.3 * torch.randn(2, 1, 6000)
    total, terms, out = obj(noisy, clean)
    total.backward()
    opt.step()
    cfg = TABLE3_ROWS[row]
    assert ("at" in terms) == (cfg.at != "none") and ("kd" in terms) == cfg.kd
    expected = terms["supervised"] + terms.get("at", 0) + terms.get("kd", 0)
    assert terms["total"].item() == pytest.approx(float(expected), rel=1e-5)
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k  # running BN statistics included: eval mode
    assert out.shape == noisy.shape


def test_mvat_full_step_gradients_on_real_models():
    student, teacher = build("tiny_student"), build("tiny_teacher").eval()
    x = torch.randn(2, 1, 6000)
    _, s_taps = student(x, return_views=True)
    with torch.no_grad():
        _, t_taps = teacher(x, return_views=True)
    pairs = mvat_pairs(s_taps.views, t_taps.views, 3)
    loss = mvat_loss(t_taps.views, s_taps.views, pairs)
    loss.backward()
    att = student.encoder[2].attention
    assert att.branches[0][0].weight.grad.abs().sum() > 0
    assert att.global_attn.query.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("row", ["mvat_dual_kd", "mvat_same_depth", "single_view_at_dual"])
def test_objective_at_term_equals_the_loss_on_full_taps(row):
    """The objective keeps only the paired blocks' teacher maps; its AT term equals mvat_loss /
    single_view_loss on every tap of both models, with the pairs those taps give."""
    from sekd.distill import single_view_loss

    cfg = TABLE3_ROWS[row]
    student, teacher = build("tiny_student").eval(), build("tiny_teacher")
    obj = DistillationObjective(cfg, student, teacher)
    x = torch.randn(2, 1, 6000)
    _, terms, _ = obj(x, 0.5 * x)
    with torch.no_grad():
        _, s = student(x, return_views=True, return_layers=True)
        _, t = teacher(x, return_views=True, return_layers=True)
        if cfg.at == "mvat":
            pairs = mvat_pairs(s.views, t.views, 3, cfg.pairing)
            want = mvat_loss(t.views, s.views, pairs, cfg.q, cfg.p)
            by_view = sum(  # eq. 3 view by view, the definition mvat_loss batches
                mvat_block_loss(
                    {v: t.views[(side, td, v)] for v in VIEWS},
                    {v: s.views[(side, sd, v)] for v in VIEWS},
                    cfg.q,
                    cfg.p,
                )
                for side, sd, td in pairs
            )
            assert want.item() == pytest.approx(by_view.item(), rel=1e-6)
        else:
            pairs = pair_keys(list(s.layers), list(t.layers), 3, cfg.pairing)
            want = single_view_loss(t.layers, s.layers, pairs, cfg.q, cfg.p)
    assert obj.pairs == pairs
    assert terms["at"].item() == pytest.approx(want.item(), rel=1e-6)


def test_teacher_maps_hold_only_the_paired_blocks():
    from sekd.distill import teacher_maps

    with torch.no_grad():
        _, t = build("tiny_teacher").eval()(torch.randn(2, 1, 3000), return_views=True)
    pairs = [("encoder", 3, 3), ("encoder", 3, 4), ("decoder", 3, 4)]
    maps = teacher_maps(t.views, pairs)
    blocks = [("encoder", 3), ("encoder", 4), ("decoder", 4)]
    assert list(maps) == [(*b, v) for b in blocks for v in VIEWS]
    for k, m in maps.items():
        assert m.shape == (2, t.views[k].shape[-1]) and not m.requires_grad
        torch.testing.assert_close(torch.linalg.vector_norm(m, dim=-1), torch.ones(2))


def test_objective_config_errors():
    with pytest.raises(ValueError, match="objective.at must be one of none, mvat, single_view"):
        ObjectiveConfig(at="magic")
    with pytest.raises(ValueError, match="objective.p must be positive"):
        ObjectiveConfig(p=0)
    with pytest.raises(ValueError, match="objective.gain_weight must be >= 0"):
        ObjectiveConfig(kind="si_sdr", gain_weight=-0.5)
    with pytest.raises(ValueError, match="objective.kind must be one of .*si_sdr"):
        ObjectiveConfig(kind="sisdr")
    with pytest.raises(ValueError, match="needs a teacher"):
        DistillationObjective(TABLE3_ROWS["kd_only"], build("tiny_student"))


def test_shared_estimate_magnitudes_change_nothing():
    from sekd.losses import estimate_magnitudes

    est, clean, noisy = (torch.randn(2, 1, 4000) for _ in range(3))
    teacher = torch.randn(2, 1, 4000)
    mags = estimate_magnitudes(est, noisy)
    assert weighted_loss(est, clean, noisy, mags).total == weighted_loss(est, clean, noisy).total
    assert kd_loss(est, teacher, noisy, mags).total == kd_loss(est, teacher, noisy).total


def test_magnitude_matches_autograd_chain_bitwise():
    """The hand-written magnitude backward gives the autograd chain's values and gradients."""
    from sekd.losses import _target_magnitude, magnitude, spectra

    x = torch.randn(3, 4000)
    x[0, :1500] = 0  # silent frames: the clamp is active there
    for spec in spectra(x):
        a = spec.detach().clone().requires_grad_()
        b = spec.detach().clone().requires_grad_()
        ref = torch.sqrt(torch.clamp(a.real**2 + a.imag**2, min=1e-7))
        got = magnitude(b)
        assert torch.equal(ref, got)
        w = torch.rand_like(ref)
        (ref.log() * w).sum().backward()
        (got.log() * w).sum().backward()
        assert torch.equal(a.grad, b.grad)
        assert torch.equal(_target_magnitude(spec.detach().clone()), ref)  # in-place variant
        assert (got == 1e-7**0.5).any() and torch.all(b.grad[got == 1e-7**0.5] == 0)
    z = torch.randn(2, 5, 7, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(magnitude, (z,))


def test_noise_side_by_linearity_equals_direct_stft(rng):
    """STFT(noisy - x) is taken as STFT(noisy) - STFT(x); the loss and its gradient match the
    direct computation to float64 rounding."""
    from sekd.losses import magnitudes, mrstft_loss

    clean, noisy, est = (torch.tensor(rng.normal(0, 0.1, (2, 4000))) for _ in range(3))
    est.requires_grad_()
    got = weighted_loss(est, clean, noisy)
    (g_got,) = torch.autograd.grad(got.total, est)
    noise, noise_est = noisy - clean, noisy - est
    a = clean.pow(2).sum(-1) / (clean.pow(2).sum(-1) + noise.pow(2).sum(-1) + 2e-7)
    parts = []
    for e, t in ((est, clean), (noise_est, noise)):
        sc, mag = mrstft_loss(e, t, estimate_mags=magnitudes(e), target_mags=magnitudes(t))
        parts.append((e - t).abs().mean(-1) + 0.5 * sc + 0.5 * mag)
    want = (a * parts[0] + (1 - a) * parts[1]).mean()
    (g_want,) = torch.autograd.grad(want, est)
    assert got.total.item() == pytest.approx(want.item(), rel=1e-12)
    torch.testing.assert_close(g_got, g_want, rtol=1e-9, atol=1e-12)


def test_spectral_distance_backward_equals_autograd_chain():
    """The hand-written sc / log-magnitude backward against the plain autograd expressions,
    including an example whose estimate equals its target (zero distance, zero gradient)."""
    from sekd.losses import _estimate_terms, _mrstft, _target_terms

    g = torch.Generator().manual_seed(0)
    mags = [torch.rand(3, 9, 11, generator=g, dtype=torch.float64) + 0.1 for _ in range(2)]
    targets = [torch.rand(3, 9, 11, generator=g, dtype=torch.float64) + 0.1 for _ in range(2)]
    targets[0][1] = mags[0][1]  # example 1 at resolution 0: X == Y
    w_sc, w_mag = torch.tensor([0.3, 1.0, 2.0]), torch.tensor([1.5, 0.2, 0.7])

    X = [m.clone().requires_grad_() for m in mags]
    sc, mag = _mrstft(_estimate_terms(X), _target_terms(targets))  # (1, B): one target
    sc, mag = sc[0], mag[0]
    ((w_sc * sc).sum() + (w_mag * mag).sum()).backward()

    Xr = [m.clone().requires_grad_() for m in mags]
    sc_r = (
        sum(
            torch.linalg.vector_norm(Y - x, dim=(1, 2)) / torch.linalg.vector_norm(Y, dim=(1, 2))
            for x, Y in zip(Xr, targets)
        )
        / 2
    )
    mag_r = sum((Y.log() - x.log()).abs().mean(dim=(1, 2)) for x, Y in zip(Xr, targets)) / 2
    ((w_sc * sc_r).sum() + (w_mag * mag_r).sum()).backward()
    assert torch.equal(sc, sc_r) and torch.equal(mag, mag_r)
    for a, b in zip(X, Xr):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-15)
    assert torch.all(torch.isfinite(X[0].grad))

    def f(x):
        return _mrstft(_estimate_terms([x]), _target_terms([targets[1]]))

    assert torch.autograd.gradcheck(f, (mags[1].clone().requires_grad_(),))

    # several targets against one estimate (supervised + KD): each row as if alone, one
    # gradient for their sum
    other = [torch.rand(3, 9, 11, generator=g, dtype=torch.float64) + 0.1 for _ in range(2)]
    X2 = [m.clone().requires_grad_() for m in mags]
    sc2, mag2 = _mrstft(_estimate_terms(X2), _target_terms(targets), _target_terms(other))
    sc_o, mag_o = _mrstft(_estimate_terms(mags), _target_terms(other))
    assert torch.equal(sc2, torch.cat([sc[None], sc_o])) and torch.equal(mag2[0], mag)
    assert torch.equal(mag2[1], mag_o[0])
    (w_sc * sc2[0] + w_mag * mag2[0] + w_mag * sc2[1] + w_sc * mag2[1]).sum().backward()
    Xr = [m.clone().requires_grad_() for m in mags]
    sc_a, mag_a = _mrstft(_estimate_terms(Xr), _target_terms(targets))
    sc_b, mag_b = _mrstft(_estimate_terms(Xr), _target_terms(other))
    (w_sc * sc_a[0] + w_mag * mag_a[0] + w_mag * sc_b[0] + w_sc * mag_b[0]).sum().backward()
    for a, b in zip(X2, Xr):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-15)

    def f2(x):
        return _mrstft(_estimate_terms([x]), _target_terms([targets[1]]), _target_terms([other[1]]))

    assert torch.autograd.gradcheck(f2, (mags[1].clone().requires_grad_(),))


def test_weighted_losses_equal_separate_losses():
    """The objective's one-pass supervised + KD scores equal weighted_loss and kd_loss."""
    from sekd.losses import weighted_losses

    g = torch.Generator().manual_seed(1)
    clean, teacher, noisy = (0.1 * torch.randn(2, 1, 5000, generator=g) for _ in range(3))
    est = (0.1 * torch.randn(2, 1, 5000, generator=g, dtype=torch.float64)).requires_grad_()
    clean, teacher, noisy = clean.double(), teacher.double(), noisy.double()
    sup, kd = weighted_losses(est, [clean, teacher], noisy)
    (g_got,) = torch.autograd.grad(sup.total + 0.7 * kd.total, est)
    ref_sup, ref_kd = weighted_loss(est, clean, noisy), kd_loss(est, teacher, noisy)
    (g_want,) = torch.autograd.grad(ref_sup.total + 0.7 * ref_kd.total, est)
    for got, want in ((sup, ref_sup), (kd, ref_kd)):
        for k in ("total", "clean", "noise", "weight", "l1", "sc", "mag"):
            assert torch.equal(getattr(got, k), getattr(want, k)), k
    torch.testing.assert_close(g_got, g_want, rtol=1e-12, atol=1e-15)


def test_objective_on_a_ddp_wrapped_student(tmp_path):
    """Under DistributedDataParallel (a real one-process gloo group) the objective finds the
    student's blocks through `.module` and gives the unwrapped student's terms."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    wrapped = None
    try:
        torch.manual_seed(0)
        student, teacher = build("tiny_student").eval(), build("tiny_teacher")
        cfg = TABLE3_ROWS["mvat_dual_kd"]
        plain = DistillationObjective(cfg, student, teacher)
        wrapped = DistillationObjective(cfg, DistributedDataParallel(student), teacher)
        assert wrapped.pairs == plain.pairs
        x = torch.randn(2, 1, 6000)
        _, want, _ = plain(x, 0.5 * x)
        total, got, _ = wrapped(x, 0.5 * x)
        total.backward()
        for k in want:
            assert got[k].item() == pytest.approx(want[k].item(), rel=1e-6), k
        assert student.encoder[2].attention.branches[0][0].weight.grad.abs().sum() > 0
    finally:
        # the DDP reducer holds the gloo group: freed after destroy_process_group, the group's
        # destructor can wait forever on its worker thread (a hang seen in `make test`)
        del wrapped
        gc.collect()
        dist.destroy_process_group()
