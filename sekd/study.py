"""The study's shared machinery: profiles, runs that are trained once and reused, evaluation
results written under `results/<profile>/`, tables and figures. Notebooks call these; every
number they show comes from a file this module wrote.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import RunConfig, load_config
from .data import Corpus, PremixedTestSet, PremixSpec, build_premixed
from .data.corpus import REPO_ROOT
from .evaluate_cli import write_results
from .metrics import METRICS, QUALITY, evaluate_model, summarize
from .models import save_model
from .routing import snr_band
from .train import load_trained, read_metrics, train

PROFILES = ("smoke", "quick", "cpu", "paper")

# The papers' own numbers, labelled as such wherever they are shown.
_PAPER_COLUMNS = ("params_m", "gflops", "pesq", "stoi", "csig", "cbak", "covl")
PAPER_MVAT_TABLE1 = {  # MV-AT paper, Table 1 (Valentini test set), the paper's numbers
    name: dict(zip(_PAPER_COLUMNS, values))
    for name, values in (
        ("MANNER-B-Teacher", (24.07, 61.92, 3.21, 0.95, 4.53, 3.65, 3.91)),
        ("MANNER-S-1.5GF (Baseline)", (0.26, 1.46, 2.88, 0.94, 4.32, 3.47, 3.62)),
        ("MANNER-S-1.5GF + MV-AT", (0.26, 1.46, 2.94, 0.94, 4.34, 3.49, 3.67)),
        ("MANNER-S-1.5GF + MV-AT + KD", (0.26, 1.46, 2.95, 0.94, 4.33, 3.50, 3.66)),
    )
}
PAPER_GFLOPS = {"manner_b": 61.92, "manner_s_38gf": 38.34, "student_1p5gf": 1.46,
                "student_5p3gf": 5.32, "student_8p1gf": 8.14}  # fmt: skip


@contextmanager
def locked(path: Path):
    """An exclusive file lock: notebooks executed in parallel share runs and results safely."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known profiles: {', '.join(PROFILES)}")
    return profile


@dataclass(frozen=True)
class Paths:
    profile: str
    configs: Path
    runs: Path
    results: Path
    figures: Path
    cache: Path


def paths(profile: str, root: Path = REPO_ROOT) -> Paths:
    check_profile(profile)
    p = Paths(
        profile,
        root / "configs" / profile,
        root / "runs" / profile,
        root / "results" / profile,
        root / "results" / profile / "figures",
        root / "cache",
    )
    for d in (p.results, p.figures, p.cache):
        d.mkdir(parents=True, exist_ok=True)
    return p


def run_config(profile: str, name: str, seed: int | None = None) -> RunConfig:
    """The config `configs/<profile>/<name>.toml`, with teacher paths under the repository."""
    p = paths(profile)
    f = p.configs / f"{name}.toml"
    if not f.is_file():
        known = sorted(x.stem for x in p.configs.glob("*.toml"))
        raise FileNotFoundError(f"no config {f}; configs of profile {profile}: {known}")
    over = {} if seed is None else {"seed": seed}
    cfg = load_config(f, **over)
    ck = tuple(
        str(REPO_ROOT / c) if not Path(c).is_absolute() else c for c in cfg.teacher.checkpoints
    )
    return dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, checkpoints=ck))


def run_dir(profile: str, name: str, seed: int | None = None) -> Path:
    return paths(profile).runs / (name if seed is None else f"{name}_seed{seed}")


COMMITTED = REPO_ROOT / "checkpoints"
_COMMITTED_FILES = ("metrics.jsonl", "summary.json")


def committed_dir(profile: str, name: str, seed: int | None = None) -> Path:
    return COMMITTED / profile / (name if seed is None else f"{name}_seed{seed}")


def commit_run(profile: str, name: str, seed: int | None = None) -> Path:
    """Copy a finished run's best model (weights only) and its logs to checkpoints/, for git."""
    src, dst = run_dir(profile, name, seed), committed_dir(profile, name, seed)
    dst.mkdir(parents=True, exist_ok=True)
    save_model(
        load_trained(src / "best.pt"),
        dst / "model.pt",
        preset=run_config(profile, name).model.preset,
    )
    for f in _COMMITTED_FILES:
        shutil.copy(src / f, dst / f)
    return dst


def committed_runs(profile: str) -> list[str]:
    """Names (with _seed<k>) of the runs committed under checkpoints/<profile>/."""
    root = COMMITTED / profile
    return sorted(p.parent.name for p in root.glob("*/model.pt")) if root.is_dir() else []


def _restore_committed(profile: str, name: str, seed: int | None, out: Path) -> bool:
    src = committed_dir(profile, name, seed)
    if not (src / "model.pt").is_file():
        return False
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "model.pt", out / "best.pt")
    for f in _COMMITTED_FILES:
        shutil.copy(src / f, out / f)
    return True


_TRAINING = {"allowed": True}


def use_committed(profile: str) -> str:
    """Switch this process to the committed checkpoints of `profile` (e.g. "cpu"): from then on
    `ensure_run` restores committed runs and refuses to train. Returns the profile, for a
    notebook's `profile = use_committed(weights)`."""
    check_profile(profile)
    _TRAINING["allowed"] = False
    return profile


def ensure_run(profile: str, name: str, seed: int | None = None, retrain: bool = False) -> Path:
    """Train `name` unless a finished run (summary.json + best.pt) exists; returns its folder.

    A run committed under checkpoints/<profile>/ is restored instead of trained; an
    interrupted run (last.pt without summary.json) is resumed; `retrain` trains anew.
    """
    out = run_dir(profile, name, seed)
    with locked(out):
        if not retrain and (out / "summary.json").is_file() and (out / "best.pt").is_file():
            return out
        if not retrain and _restore_committed(profile, name, seed, out):
            return out
        if not _TRAINING["allowed"]:
            raise RuntimeError(
                f"run {out.name} of profile {profile!r} is not committed under "
                f"{committed_dir(profile, name, seed)} and training is off (use_committed); "
                f"committed: {', '.join(committed_runs(profile)) or 'none'}"
            )
        train(run_config(profile, name, seed), out, resume=not retrain, progress=False)
    return out


def load_run_model(profile: str, name: str, seed: int | None = None, which: str = "best"):
    return load_trained(run_dir(profile, name, seed) / f"{which}.pt")


def curves(profile: str, name: str, seed: int | None = None):
    """(train rows, valid rows) of a run's metrics.jsonl."""
    rows = read_metrics(run_dir(profile, name, seed))
    return [r for r in rows if r["kind"] == "train"], [r for r in rows if r["kind"] == "valid"]


# ---------------------------------------------------------------------------------- test sets
def voicebank_pairs(corpus: Corpus | None = None, limit: int = 0) -> list[tuple[str, Path, Path]]:
    """(name, noisy, clean) of the bundled VoiceBank-DEMAND test pairs (the first `limit`)."""
    nd, cd = (corpus or Corpus()).pair_dirs("voicebank_demand", "test")
    pairs = [(p.stem, nd / p.name, p) for p in sorted(cd.iterdir())]
    return pairs[:limit] if limit else pairs


def premix_spec(cfg: RunConfig) -> PremixSpec:
    e = cfg.eval
    return PremixSpec(
        speech_datasets=e.speech_datasets,
        utterances=e.utterances,
        noise_types=tuple(e.seen_noises) + tuple(e.unseen_noises),
        noise_datasets=e.noise_datasets,
        snrs=e.snrs,
        seed=e.seed,
        max_seconds=e.max_seconds,
    )


def premix_set(cfg: RunConfig) -> PremixedTestSet:
    """The fixed pre-mixed test set of a config's [eval] section (built once, under cache/)."""
    with locked(REPO_ROOT / "cache" / "premix"):
        return PremixedTestSet(build_premixed(REPO_ROOT / "cache", premix_spec(cfg)))


def premix_pairs(ts: PremixedTestSet) -> list[tuple[str, Path, Path]]:
    return [(r["name"], n, c) for r, (n, c) in zip(ts.rows, ts.pairs())]


class Identity:
    """The 'model' that returns its input: scores the noisy mixtures themselves."""

    def __call__(self, x):
        return x

    def to(self, device):
        return self

    def eval(self):
        return self


def evaluate(
    profile: str,
    label: str,
    model,
    pairs,
    set_name: str,
    composite_measures=True,
    workers: int = 2,
    reuse: bool = True,
    extra: dict | None = None,
) -> dict:
    """Score `model` on `pairs`, write results/<profile>/<set>/<label>.json and .csv; reuse them.

    `extra` maps a file name to columns added to its row (SNR, noise type).
    """
    out = paths(profile).results / set_name
    jf = out / f"{label}.json"
    with locked(jf):
        if reuse and jf.is_file():
            return json.loads(jf.read_text())
        rows, summary = evaluate_model(
            model, pairs, workers=workers, progress=False, composite_measures=composite_measures
        )
        if extra:
            for r in rows:
                r.update(extra.get(r["name"], {}))
        write_results(rows, summary, jf, out / f"{label}.csv")
        return json.loads(jf.read_text())


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


def paired_difference_by_name(a: dict, b: dict, metric: str) -> dict[str, float]:
    """{file name: b - a} for every file both results scored."""
    ra = {r["name"]: r[metric] for r in a["files"] if not r["error"]}
    rb = {r["name"]: r[metric] for r in b["files"] if not r["error"]}
    return {k: rb[k] - ra[k] for k in sorted(set(ra) & set(rb))}


# --------------------------------------------------------------------------------- SNR study
SNR_RUNS = ("snr_teacher1", "snr_teacher2", "snr_teacher3", "snr_teacher4", "snr_s1", "snr_s2")


def snr_study(profile: str, retrain: bool = False) -> dict:
    """Train (or reuse) the four teachers, S1 and S2; score them on the SNR test grid.

    Teachers are scored only on the test files whose SNR routes to their band. Returns
    {label: result JSON} with labels noisy, snr_teacher1..4, snr_s1, snr_s2.
    """
    for name in SNR_RUNS:
        ensure_run(profile, name, retrain=retrain)
    cfg = run_config(profile, "snr_s2")
    ts = premix_set(cfg)
    pairs = premix_pairs(ts)
    unseen = set(cfg.eval.unseen_noises)
    extra = {
        r["name"]: {
            "snr": float(r["snr"]),
            "noise_type": r["noise_type"],
            "seen": r["noise_type"] not in unseen,
        }
        for r in ts.rows
    }
    out = {
        "noisy": evaluate(
            profile, "noisy", Identity(), pairs, "snr_test", False, reuse=not retrain, extra=extra
        )
    }
    bands = cfg.teacher.bands
    for name in SNR_RUNS:
        model = load_run_model(profile, name)
        mine = pairs
        if name.startswith("snr_teacher"):
            b = int(name[-1]) - 1
            mine = [p for p in pairs if snr_band(extra[p[0]]["snr"], bands) == b]
        out[name] = evaluate(
            profile, name, model, mine, "snr_test", False, reuse=not retrain, extra=extra
        )
    return out


def snr_effect(results: dict, metrics=("pesq", "stoi")) -> list[dict]:
    """S2 - S1 per metric, paired by test file, with a 95 % t-interval; on all files and per
    SNR band of the test grid (the paper's claim is largest at low SNRs)."""
    out = []
    snr_of = {r["name"]: r["snr"] for r in results["noisy"]["files"]}
    for metric in metrics:
        d = paired_difference_by_name(results["snr_s1"], results["snr_s2"], metric)
        by_snr: dict = {}
        for name, v in d.items():
            by_snr.setdefault(snr_of[name], []).append(v)
        groups = {"all": list(d.values())}
        groups.update({f"{snr:+g} dB": by_snr[snr] for snr in sorted(by_snr)})
        for group, values in groups.items():
            m, lo, hi = mean_ci(values)
            out.append(
                {"metric": metric, "snr": group, "diff": m, "ci_low": lo, "ci_high": hi,
                 "pairs": len(values)}
            )  # fmt: skip
    return out


def snr_voicebank(profile: str, retrain: bool = False) -> list[dict]:
    """S1 and S2 (and the noisy input) on the VoiceBank-DEMAND test pairs, all metrics: the
    MV-AT study's test set, so both studies' students can be compared on the same files."""
    cfg = run_config(profile, "student_baseline")
    pairs = voicebank_pairs(limit=cfg.eval.voicebank_files)
    rows = []
    for label in ("noisy", "snr_s1", "snr_s2"):
        if label == "noisy":
            model = Identity()
        else:
            ensure_run(profile, label, retrain=retrain)
            model = load_run_model(profile, label)
        r = evaluate(profile, label, model, pairs, "voicebank", reuse=not retrain)
        means = {k: r["mean"][k] for k in QUALITY}
        rows.append({"model": label, **means, "files": r["count"], "failed": r["failed"]})
    return rows


def _by(rows, key):
    groups: dict = {}
    for r in rows:
        if not r["error"]:
            groups.setdefault(r[key], []).append(r)
    return groups


def snr_tables(results: dict) -> dict:
    """Tables 1-3 of the SNR paper from `snr_study` results, as lists of dict rows."""
    noisy, s2 = results["noisy"]["files"], results["snr_s2"]["files"]
    t1 = []
    for noise, rows in sorted(_by(noisy, "noise_type").items()):
        enh = _by([r for r in s2 if r["noise_type"] == noise], "snr")
        for target, src in (("Noisy", _by(rows, "snr")), ("Enhanced (S2)", enh)):
            row = {"noise": noise, "seen": rows[0]["seen"], "target": target}
            for snr, rs in sorted(src.items()):
                row[f"pesq@{snr:+g}"] = float(np.mean([r["pesq"] for r in rs]))
                row[f"stoi@{snr:+g}"] = float(np.mean([r["stoi"] for r in rs]))
            t1.append(row)
    t2 = []
    labels = {"noisy": "Noisy", "snr_s1": "S1 (no teacher)", "snr_s2": "S2 (SNR teachers)"}
    for metric in ("pesq", "stoi"):
        for key in (
            "noisy",
            "snr_teacher1",
            "snr_teacher2",
            "snr_teacher3",
            "snr_teacher4",
            "snr_s1",
            "snr_s2",
        ):
            row = {
                "metric": metric.upper(),
                "model": labels.get(key, key.replace("snr_teacher", "T")),
            }
            for snr, rs in sorted(_by(results[key]["files"], "snr").items()):
                row[f"{snr:+g} dB"] = float(np.mean([r[metric] for r in rs]))
            t2.append(row)
    t3 = [
        {
            "model": labels[k],
            "pesq": results[k]["mean"]["pesq"],
            "stoi": results[k]["mean"]["stoi"],
            "files": results[k]["count"],
            "failed": results[k]["failed"],
        }
        for k in ("noisy", "snr_s1", "snr_s2")
    ]
    return {"table1": t1, "table2": t2, "table3": t3}


def write_table(profile: str, name: str, rows: list[dict]) -> Path:
    """results/<profile>/<name>.json and .csv of a table's rows."""
    import csv

    p = paths(profile).results
    (p / f"{name}.json").write_text(json.dumps(rows, indent=1))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(p / f"{name}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    return p / f"{name}.json"


def save_figure(fig, profile: str, name: str) -> None:
    """Save as results/<profile>/figures/<name>.png (returns nothing, so a notebook cell that
    ends with it shows the figure, not a path)."""
    fig.savefig(paths(profile).figures / f"{name}.png", dpi=110, bbox_inches="tight")


__all__ = [
    "METRICS",
    "PAPER_GFLOPS",
    "PAPER_MVAT_TABLE1",
    "PROFILES",
    "SNR_RUNS",
    "check_profile",
    "curves",
    "ensure_run",
    "committed_runs",
    "use_committed",
    "evaluate",
    "load_run_model",
    "mean_ci",
    "paired_difference_by_name",
    "paths",
    "premix_pairs",
    "premix_set",
    "run_config",
    "run_dir",
    "save_figure",
    "snr_study",
    "snr_tables",
    "snr_effect",
    "snr_voicebank",
    "summarize",
    "voicebank_pairs",
    "write_table",
]


# ------------------------------------------------------------------------------- MV-AT study
MVAT_ROWS = (
    "baseline",
    "single_view_at_dual",
    "kd_only",
    "mvat_same_depth",
    "mvat_dual_q1",
    "mvat_dual_q2",
    "mvat_dual_kd",
)
MAIN_ROWS = {"baseline": "Baseline", "mvat_dual_q1": "+ MV-AT", "mvat_dual_kd": "+ MV-AT + KD"}


def mvat_study(
    profile: str, rows=MVAT_ROWS, seeds=(None,), retrain: bool = False, ablation_seeds=None
) -> dict:
    """Teacher and students of the given Table 3 rows and seeds, scored on the VoiceBank-DEMAND
    test pairs (all metrics) and the pre-mixed test set (all metrics).

    `seeds` apply to the three main rows (baseline, MV-AT, MV-AT + KD); `ablation_seeds` to the
    other rows (default: the same seeds). Seed None is the config's own seed. Returns
    {"voicebank": {label: result}, "premix": {label: result}}; labels are "noisy", "teacher"
    and "student_<row>" (with "_seed<k>" when a seed is given).
    """
    ensure_run(profile, "teacher", retrain=retrain)
    labels = [("teacher", "teacher", None)]
    for row in rows:
        row_seeds = seeds if row in MAIN_ROWS or ablation_seeds is None else ablation_seeds
        for seed in row_seeds:
            name = f"student_{row}"
            ensure_run(profile, name, seed, retrain=retrain)
            labels.append((name if seed is None else f"{name}_seed{seed}", name, seed))
    cfg = run_config(profile, "student_baseline")
    sets = {
        "voicebank": voicebank_pairs(limit=cfg.eval.voicebank_files),
        "premix": premix_pairs(premix_set(cfg)),
    }
    out: dict = {}
    for set_name, pairs in sets.items():
        res = {"noisy": evaluate(profile, "noisy", Identity(), pairs, set_name, reuse=not retrain)}
        for label, name, seed in labels:
            model = load_run_model(profile, name, seed)
            res[label] = evaluate(profile, label, model, pairs, set_name, reuse=not retrain)
        out[set_name] = res
    return out


def model_efficiency(preset: str, samples: int = 128_000) -> dict:
    from .complexity import complexity

    c = complexity(preset, samples)
    return {"params": c.params, "gmacs_paper": c.macs_paper / 1e9, "gflops_true": c.flops / 1e9}


def mvat_table(profile: str, results: dict, set_name: str, rows=None) -> list[dict]:
    """One row per model: efficiency (params, paper-convention GMACs at 8 s) and mean quality.

    Labels with several seeds are grouped: mean over seeds and, per metric, the spread (std over
    seeds) of the set means.
    """
    res = results[set_name]
    groups: dict = {}
    for label in res:
        base = label.split("_seed")[0]
        groups.setdefault(base, []).append(label)
    table = []
    for base, labels in groups.items():
        if (
            rows is not None
            and base not in ("noisy", "teacher")
            and base[len("student_") :] not in rows
        ):
            continue
        means = {k: float(np.mean([res[lb]["mean"][k] for lb in labels])) for k in METRICS}
        entry = {"model": base, "seeds": len(labels)}
        if base != "noisy":
            preset = run_config(profile, "teacher" if base == "teacher" else base).model.preset
            entry.update(model_efficiency(preset))
        entry.update({k: means[k] for k in QUALITY})
        if len(labels) > 1:  # the spread of each metric's mean over seeds
            for k in QUALITY:
                entry[f"{k}_std_over_seeds"] = float(
                    np.std([res[lb]["mean"][k] for lb in labels], ddof=1)
                )
        entry["files"] = res[labels[0]]["count"]
        entry["failed"] = max(res[lb]["failed"] for lb in labels)
        table.append(entry)
    return table


def distillation_effect(results: dict, set_name: str, method: str, seeds=(None,)) -> list[dict]:
    """Per metric: the difference (method - baseline), paired by file and seed.

    `diff` and its 95 % t-interval are over files, each file's difference averaged over the
    seeds (so the interval reflects files, not seeds x files as if independent);
    `diff_per_seed` lists each seed's mean difference and `diff_std_over_seeds` their spread.
    """
    res = results[set_name]
    out = []
    for metric in QUALITY:
        per_file: dict = {}
        per_seed = []
        for seed in seeds:
            suffix = "" if seed is None else f"_seed{seed}"
            a, b = res[f"student_baseline{suffix}"], res[f"student_{method}{suffix}"]
            d = paired_difference_by_name(a, b, metric)
            per_seed.append(float(np.mean(list(d.values()))) if d else float("nan"))
            for name, v in d.items():
                per_file.setdefault(name, []).append(v)
        # a file counts when every seed scored it
        diffs = [float(np.mean(v)) for v in per_file.values() if len(v) == len(seeds)]
        m, lo, hi = mean_ci(diffs)
        out.append(
            {
                "method": method,
                "metric": metric,
                "diff": m,
                "ci_low": lo,
                "ci_high": hi,
                "pairs": len(diffs),
                "seeds": len(seeds),
                "diff_per_seed": per_seed,
                "diff_std_over_seeds": float(np.std(per_seed, ddof=1))
                if len(per_seed) > 1
                else float("nan"),
            }
        )
    return out
