import numpy as np

from sekd.viz import plot_arm_curves, seed_band


def _log(values: dict, kind="valid"):
    return [{"kind": kind, "step": s, "pesq": v} for s, v in values.items()]


def test_seed_band_averages_the_seeds_at_the_steps_all_of_them_logged():
    runs = [
        _log({500: 1.0, 1000: 2.0, 1500: 3.0}) + _log({500: 9.0}, kind="train"),
        _log({500: 2.0, 1000: 4.0}),  # this seed stopped before step 1500
        _log({500: 3.0, 1000: 0.0}),
    ]
    steps, mean, low, high = seed_band(runs, "pesq")
    assert steps.tolist() == [500, 1000]
    np.testing.assert_allclose(mean, [2.0, 2.0])
    assert low.tolist() == [1.0, 0.0] and high.tolist() == [3.0, 4.0]
    assert all(len(a) == 0 for a in seed_band(runs, "stoi"))  # never logged
    assert all(len(a) == 0 for a in seed_band([], "pesq"))


def test_plot_arm_curves_draws_each_arms_mean_over_seeds():
    arms = {
        "baseline": [_log({500: 1.0, 1000: 2.0}), _log({500: 3.0, 1000: 2.0})],
        "mvat": [_log({500: 1.5, 1000: 1.7})],
    }
    fig = plot_arm_curves(arms, "pesq")
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert set(lines) == {"baseline (2 seeds)", "mvat (1 seed)"}
    np.testing.assert_allclose(lines["baseline (2 seeds)"].get_ydata(), [2.0, 2.0])
    assert len(fig.axes[0].collections) == 1  # a band only where there are several seeds


def test_paired_trend_figure_has_a_panel_per_metric_with_zero_marked():
    from sekd.viz import plot_paired_trend

    rows = [
        {"method": m, "baseline": "baseline", "metric": k, "step": s, "diff": d,
         "diff_std_over_seeds": 0.1, "seeds": 3}
        for m in ("mvat_dual_q1", "mvat_dual_kd") for k in ("pesq", "si_sdri")
        for s, d in ((1000, -0.1), (2000, -0.2))
    ]  # fmt: skip
    fig = plot_paired_trend(rows)
    axes = fig.axes
    assert [a.get_ylabel() for a in axes] == ["PESQ difference", "SI-SDRi (dB) difference"]
    assert all(a.get_xlabel() == "step" for a in axes)
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels == ["mvat_dual_q1 - baseline (3 seeds)", "mvat_dual_kd - baseline (3 seeds)"]
    one_seed = [{**r, "seeds": 1} for r in rows]
    fig = plot_paired_trend(one_seed, label=str.upper)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["MVAT_DUAL_Q1 - BASELINE (1 seed)", "MVAT_DUAL_KD - BASELINE (1 seed)"]
    assert any(list(line.get_ydata()) == [0.0, 0.0] for line in axes[0].get_lines())
