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
