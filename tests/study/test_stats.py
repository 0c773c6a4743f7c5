"""sekd.study.stats."""

import numpy as np
import pytest


def test_paired_differences_pair_by_name_and_skip_failures():
    from sekd.study import paired_difference_by_name

    a = {
        "files": [
            {"name": "x", "pesq": 1.0, "error": ""},
            {"name": "y", "pesq": 2.0, "error": ""},
            {"name": "z", "pesq": 3.0, "error": ""},
        ]
    }
    b = {
        "files": [
            {"name": "y", "pesq": 2.5, "error": ""},
            {"name": "x", "pesq": 0.5, "error": ""},
            {"name": "z", "pesq": float("nan"), "error": "PESQ failed"},
        ]
    }
    assert paired_difference_by_name(a, b, "pesq") == {"x": -0.5, "y": 0.5}


def test_cluster_bootstrap_counts_clusters_not_files():
    from sekd.study import cluster_bootstrap_ci, mean_ci

    rng = np.random.default_rng(3)
    values = rng.normal(0.1, 0.2, 12)
    clusters = np.arange(12)
    m, lo, hi = cluster_bootstrap_ci(values, clusters)
    # every cluster repeated five times: the same evidence, the same interval...
    m5, lo5, hi5 = cluster_bootstrap_ci(np.repeat(values, 5), np.repeat(clusters, 5))
    assert (m5, lo5, hi5) == pytest.approx((m, lo, hi), abs=1e-3)
    # ...where a t-interval over the files would shrink by about sqrt(5)
    t1, t5 = mean_ci(values), mean_ci(np.repeat(values, 5))
    assert (t5[2] - t5[1]) < 0.5 * (t1[2] - t1[1])
    # with one file per cluster it is close to the t-interval
    assert lo == pytest.approx(t1[1], abs=0.05) and hi == pytest.approx(t1[2], abs=0.05)
    assert np.isnan(cluster_bootstrap_ci([1.0, 2.0], ["a", "a"])[1])


def test_verdict_rule():
    from sekd.study import direction, verdict

    assert verdict(0.01, 0.1, 0.06) == "agrees with"
    assert verdict(-0.2, -0.1, 0.06) == "contradicts"
    assert verdict(-0.01, 0.1, 0.06) == "does not confirm"
    assert verdict(float("nan"), float("nan"), 0.06) == "does not confirm"
    assert verdict(-0.2, -0.1, -0.05) == "agrees with"
    assert direction(0.1, 0.2) == "above" and direction(-1, 1) == "not apart from"


def test_one_paired_difference_averages_each_sides_seeds_over_the_files_all_scored():
    from sekd.study.stats import interval, paired_by_file

    a = [{"x": 1.0, "y": 2.0, "z": 0.0}, {"x": 3.0, "y": 4.0}]
    b = [{"x": 2.0, "y": 1.0, "z": 9.0}]
    assert paired_by_file(a, b) == {"x": 0.0, "y": -2.0}  # z: not scored by every seed
    m, lo, hi, how = interval({"x": 0.0, "y": -2.0, "w": 1.0})
    assert (m, how) == (-1 / 3, "t-interval over files") and lo < m < hi
    same = {"x": "u1", "y": "u1", "w": "u2"}
    m, lo, hi, how = interval({"x": 0.0, "y": -2.0, "w": 1.0}, same)
    assert how == "cluster bootstrap over utterances" and m == -1 / 3
    # a resample of whole utterances: u1's files (mean -1) or u2's (1) or both
    assert -1.0 <= lo <= m <= hi <= 1.0
