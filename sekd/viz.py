"""Figures and players for the notebooks: waveforms, spectrograms, attention maps, curves."""

from __future__ import annotations

import numpy as np

from .data.audio import SAMPLE_RATE
from .metrics import MEASURE

SR = SAMPLE_RATE


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() == "agg" or not _in_notebook():
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None
    except ImportError:
        return False


def spectrogram_db(x: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """(freq, frames) log power in dB of a Hann STFT."""
    from scipy.signal import stft

    _, _, Z = stft(x, SR, nperseg=n_fft, noverlap=n_fft - hop)
    return 20 * np.log10(np.abs(Z) + 1e-8)


def _spectrogram_panel(ax, x: np.ndarray, vmax: float | None = None) -> None:
    """A log-power spectrogram on a seconds axis, kHz up, 80 dB below `vmax` (default: its
    own peak) to `vmax`."""
    S = spectrogram_db(x)
    vmax = S.max() if vmax is None else vmax
    ax.imshow(S, origin="lower", aspect="auto", vmin=vmax - 80, vmax=vmax,
              extent=(0, len(x) / SR, 0, SR / 2000), cmap="magma")  # fmt: skip
    ax.set_ylabel("kHz")


def plot_signals(signals: dict, title: str = ""):
    """A waveform and a spectrogram per named signal, stacked; returns the figure."""
    plt = _plt()
    n = len(signals)
    fig, axes = plt.subplots(n, 2, figsize=(12, 2.2 * n), squeeze=False)
    vmax = max(spectrogram_db(np.asarray(x)).max() for x in signals.values())
    for i, (name, x) in enumerate(signals.items()):
        x = np.asarray(x, dtype=float)
        t = np.arange(len(x)) / SR
        axes[i, 0].plot(t, x, lw=0.5)
        axes[i, 0].set_ylabel(name)
        axes[i, 0].set_xlim(0, t[-1] if len(t) else 1)
        _spectrogram_panel(axes[i, 1], x, vmax)
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def audio(x: np.ndarray, rate: int = SR):
    """An inline player (IPython.display.Audio), normalised like a listener's volume knob."""
    from IPython.display import Audio

    return Audio(np.asarray(x, dtype=np.float32), rate=rate, normalize=True)


def players(signals: dict):
    """An HTML row of labelled audio players, for noisy / teacher / student / clean: one
    column each, every player as wide as its column, so the row fits its output area."""
    from IPython.display import HTML

    cells = "".join(
        f"<div style='min-width:0'><b>{name}</b><br>"
        + audio(x)._repr_html_().replace("<audio ", "<audio style='width:100%' ", 1)
        + "</div>"
        for name, x in signals.items()
    )
    grid = f"display:grid;grid-template-columns:repeat({len(signals)},minmax(0,1fr));gap:8px"
    return HTML(f"<div style='{grid}'>{cells}</div>")


def plot_curves(runs: dict, key: str, kind: str = "train", title: str = ""):
    """One line per run of a logged quantity (`key`) against the step."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, rows in runs.items():
        pts = [(r["step"], r[key]) for r in rows if r["kind"] == kind and key in r]
        if pts:
            s, v = zip(*pts)
            ax.plot(s, v, label=label, marker="o" if kind == "valid" else None, ms=3)
    return _step_axes(fig, ax, key, title or f"{kind} {key}")


def _step_axes(fig, ax, key: str, title: str):
    """Label a figure of a logged quantity against the step, add the legend, lay it out."""
    ax.set_xlabel("step")
    ax.set_ylabel(MEASURE[key].title if key in MEASURE else key)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def seed_band(runs: list, key: str, kind: str = "valid"):
    """Mean, min and max of a logged quantity over the seeds of one arm (`runs`: each seed's
    metrics rows), at the steps every seed logged: (steps, mean, low, high) as arrays."""
    per_seed = [
        {r["step"]: r[key] for r in rows if r["kind"] == kind and key in r} for rows in runs
    ]
    steps = sorted(set.intersection(*(set(d) for d in per_seed))) if per_seed else []
    if not steps:
        return (np.array([]),) * 4
    values = np.array([[d[s] for s in steps] for d in per_seed], dtype=float)
    return np.array(steps), values.mean(0), values.min(0), values.max(0)


def plot_arm_curves(arms: dict, key: str, kind: str = "valid", title: str = ""):
    """One line per arm (`arms`: {arm: [each seed's metrics rows]}): the mean over its seeds of
    a logged quantity against the step, shaded between the seeds' lowest and highest."""
    from .study.verdicts import seeds_phrase  # not at the top: sekd.study imports this module

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for arm, runs in arms.items():
        steps, mean, low, high = seed_band(runs, key, kind)
        if len(steps):
            (line,) = ax.plot(
                steps,
                mean,
                marker="o",
                ms=3,
                label=f"{arm} ({seeds_phrase(len(runs))})",
            )
            if len(runs) > 1:
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
    return _step_axes(
        fig, ax, key, title or f"{kind} {key}, mean over seeds (band: lowest to highest seed)"
    )


def plot_paired_trend(rows: list[dict], title: str = "", label=str):
    """`sekd.study.mvat.paired_trend` rows as one panel per metric: each method's mean paired
    difference to its baseline against the step, shaded one std over seeds either side, and 0;
    `label` names a method or a baseline in the legend."""
    from .study.verdicts import seeds_phrase  # not at the top: sekd.study imports this module

    plt = _plt()
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for method in dict.fromkeys(r["method"] for r in rows if r["metric"] == metric):
            series = [r for r in rows if r["metric"] == metric and r["method"] == method]
            steps = np.array([r["step"] for r in series])
            diff = np.array([r["diff"] for r in series])
            std = np.nan_to_num(np.array([r["diff_std_over_seeds"] for r in series]))
            name = f"{label(method)} - {label(series[0]['baseline'])}"
            (line,) = ax.plot(
                steps, diff, marker="o", ms=3, label=f"{name} ({seeds_phrase(series[0]['seeds'])})"
            )
            ax.fill_between(steps, diff - std, diff + std, color=line.get_color(), alpha=0.2, lw=0)
        ax.axhline(0.0, color="k", lw=0.8)
        _step_axes(fig, ax, f"{MEASURE[metric].title} difference", MEASURE[metric].title)
    fig.suptitle(title or "paired difference")
    fig.tight_layout()
    return fig


def plot_attention_grid(noisy: np.ndarray, arms: dict, distances: dict, title: str = ""):
    """The input's spectrogram above a grid of temporal attention maps: a row per paired layer,
    a column per view, the teacher and each student (`arms`: {name: `attention_maps` output},
    e.g. before and after distillation) overlaid on a seconds axis, each panel titled with
    every student's AT distance to the teacher (`distances`: {name: `at_distances` output})."""
    plt = _plt()
    first = next(iter(arms.values()))
    pairs = list(dict.fromkeys(k[:3] for k in first))
    views = list(dict.fromkeys(k[3] for k in first))
    seconds = len(noisy) / SR
    fig = plt.figure(figsize=(4.3 * len(views), 1.9 * (len(pairs) + 1)))
    grid = fig.add_gridspec(len(pairs) + 1, len(views))
    top = fig.add_subplot(grid[0, :])
    _spectrogram_panel(top, noisy)
    top.set_xlabel("time (s)")
    top.set_title("noisy input", fontsize=10)
    for i, pair in enumerate(pairs):
        for j, view in enumerate(views):
            ax = fig.add_subplot(grid[i + 1, j])
            key = (*pair, view)
            t_map = first[key][0]
            ax.plot(np.linspace(0, seconds, len(t_map)), t_map, color="k", lw=1.0, label="teacher")
            for name, maps in arms.items():
                s_map = maps[key][1]
                ax.plot(np.linspace(0, seconds, len(s_map)), s_map, lw=0.9, alpha=0.85, label=name)
            dist = ", ".join(f"{name} {distances[name][key]:.2f}" for name in arms)
            ax.set_title(f"{view} view · AT distance: {dist}", fontsize=8)
            ax.set_xlim(0, seconds)
            ax.set_yticks([])
            if j == 0:
                side, sd, td = pair
                ax.set_ylabel(f"{side}\nstudent {sd} / teacher {td}", fontsize=8)
            if i == len(pairs) - 1:
                ax.set_xlabel("time (s)")
    fig.axes[1].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_forest(panels: dict, y: str = "method", metrics=None, title: str = "", label=str):
    """Paired differences with their 95 % intervals, a forest plot: a row of panels per entry of
    `panels` ({title: effect rows}), a column per metric, a line per `y` value (`label` names
    it), 0 drawn, the paper's value (a row's `paper`) marked with a cross."""
    plt = _plt()
    rows = [r for effect in panels.values() for r in effect]
    metrics = metrics or list(dict.fromkeys(r["metric"] for r in rows))
    ys = list(dict.fromkeys(r[y] for r in rows))
    size = (3.2 * len(metrics) + 1.5, 0.32 * len(ys) * len(panels) + 1.4)
    fig, axes = plt.subplots(len(panels), len(metrics), squeeze=False, sharey=True, figsize=size)
    for axes_row, (panel, effect) in zip(axes, panels.items()):
        for ax, metric in zip(axes_row, metrics):
            by_name = {r[y]: r for r in effect if r["metric"] == metric}
            for i, name in enumerate(ys):
                r = by_name.get(name)
                if r is None or r["diff"] is None:
                    continue
                lo, hi = (np.nan if r[k] is None else r[k] for k in ("ci_low", "ci_high"))
                color = "tab:blue" if lo > 0 else "tab:red" if hi < 0 else "tab:gray"
                ax.errorbar(r["diff"], i, xerr=[[r["diff"] - lo], [hi - r["diff"]]], fmt="o",
                            color=color, ms=4, capsize=2)  # fmt: skip
                if r.get("paper") is not None:
                    ax.plot(r["paper"], i, "x", color="k", ms=6)
            ax.axvline(0.0, color="k", lw=0.8)
            ax.set_yticks(range(len(ys)), [label(v) for v in ys], fontsize=8)
            ax.set_ylim(len(ys) - 0.5, -0.5)
            ax.set_title(f"{panel}: {MEASURE[metric].title}" if len(panels) > 1 else
                         MEASURE[metric].title, fontsize=9)  # fmt: skip
            ax.set_xlabel("difference" + _unit(metric), fontsize=8)
    if any(r.get("paper") is not None for r in rows):
        (cross,) = axes[0, 0].plot([], [], "x", color="k")
        fig.legend([cross], ["the paper's effect"], loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def _unit(metric: str) -> str:
    title = MEASURE[metric].title
    return f" ({title.split('(')[1]}" if "(" in title else ""


def show_heatmaps(matrices: dict, title: str = "", cmap: str = "rocket"):
    """Attention matrices side by side with seaborn (the d2l `show_heatmaps` habit)."""
    import seaborn as sns

    plt = _plt()
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    for ax, (name, m) in zip(axes[0], matrices.items()):
        sns.heatmap(
            np.asarray(m), ax=ax, cmap=cmap, cbar=True, xticklabels=False, yticklabels=False
        )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("key chunk")
        ax.set_ylabel("query chunk")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pairing(pairs, teacher_depth: int, student_depth: int, title: str = ""):
    """Teacher and student layers as two columns per side, a line for each transfer pair."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, side in zip(axes, ("encoder", "decoder")):
        for d in range(1, teacher_depth + 1):
            ax.add_patch(plt.Rectangle((0.55, d - 0.3), 0.4, 0.6, color="tab:blue", alpha=0.3))
            ax.text(0.75, d, f"T{d}", ha="center", va="center")
        for d in range(1, student_depth + 1):
            ax.add_patch(plt.Rectangle((-0.95, d - 0.3), 0.4, 0.6, color="tab:orange", alpha=0.3))
            ax.text(-0.75, d, f"S{d}", ha="center", va="center")
        for s_side, sd, td in pairs:
            if s_side == side:
                ax.plot([-0.55, 0.55], [sd, td], color="k", lw=1.5)
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(0.4, max(teacher_depth, student_depth) + 0.6)
        ax.invert_yaxis()
        ax.set_xticks([-0.75, 0.75], ["student", "teacher"])
        ax.set_yticks([])
        ax.set_title(f"{side} (depth 1 = shallowest)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
