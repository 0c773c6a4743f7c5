"""Statistics of paired comparisons: t-intervals, a cluster bootstrap for files that share
utterances, and the one verdict rule used by the README and the notebooks."""

from __future__ import annotations

import numpy as np


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) with a t-interval; NaN bounds for fewer than 2 values."""
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) < 2:
        m = float(v.mean()) if len(v) else float("nan")
        return m, float("nan"), float("nan")
    m, se = v.mean(), v.std(ddof=1) / np.sqrt(len(v))
    h = se * stats.t.ppf(0.5 + level / 2, len(v) - 1)
    return float(m), float(m - h), float(m + h)


def cluster_bootstrap_ci(
    values, clusters, level: float = 0.95, n_boot: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap that resamples whole clusters (for example all
    test files made from one utterance), so files that share a source are not counted as
    independent evidence. The mean is over files; each resample draws as many clusters as
    there are, with replacement."""
    v = np.asarray(values, dtype=float)
    c = np.asarray(clusters)
    keep = np.isfinite(v)
    v, c = v[keep], c[keep]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    names, idx = np.unique(c, return_inverse=True)
    sums = np.bincount(idx, weights=v, minlength=len(names))
    counts = np.bincount(idx, minlength=len(names)).astype(float)
    if len(names) < 2:
        return float(v.mean()), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, len(names), size=(n_boot, len(names)))
    boot = sums[draw].sum(1) / counts[draw].sum(1)
    lo, hi = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2])
    return float(v.mean()), float(lo), float(hi)


def paired_by_file(a_seeds: list[dict], b_seeds: list[dict]) -> dict[str, float]:
    """The study's one paired difference: {file: mean over b's seeds - mean over a's seeds}
    for the files every seed of both scored; each seed is {file: value}."""
    names = set.intersection(*(set(x) for x in [*a_seeds, *b_seeds]))
    return {
        n: float(np.mean([s[n] for s in b_seeds]) - np.mean([s[n] for s in a_seeds]))
        for n in sorted(names)
    }


def scored_values(result: dict, metric: str) -> dict[str, float]:
    """{file: value} of the files a result file scored (an `evaluate` result)."""
    return {r["name"]: r[metric] for r in result["files"] if not r["error"]}


def paired_difference_by_name(a: dict, b: dict, metric: str) -> dict[str, float]:
    """{file name: b - a} for every file both results scored."""
    return paired_by_file([scored_values(a, metric)], [scored_values(b, metric)])


def interval(diffs: dict[str, float], clusters: dict[str, str] | None = None):
    """The study's one interval rule for paired differences ({file: difference}): (mean, low,
    high, how) at 95 %, a t-interval over files, or with `clusters` ({file: its source}) a
    cluster bootstrap over the sources, where files made from one source are not independent."""
    values = list(diffs.values())
    if clusters is None:
        return (*mean_ci(values), "t-interval over files")
    m, lo, hi = cluster_bootstrap_ci(values, [clusters[n] for n in diffs])
    return m, lo, hi, "cluster bootstrap over utterances"


# What `direction` says of an interval, in the order a reader is told them.
DIRECTIONS = ("above", "not apart from", "below")


def direction(low: float, high: float) -> str:
    """'above' / 'below' 0 when the interval excludes it, else 'not apart from'."""
    if low > 0:
        return "above"
    if high < 0:
        return "below"
    return "not apart from"


def verdict(low: float, high: float, paper: float) -> str:
    """How an interval for an effect stands against the paper's (non-zero) effect: 'agrees
    with' when it excludes 0 on the paper's side, 'contradicts' when it excludes 0 on the other
    side, 'does not confirm' when it contains 0 (or is undefined)."""
    side = direction(low, high)
    if side == "not apart from":
        return "does not confirm"
    return "agrees with" if (side == "above") == (paper > 0) else "contradicts"
