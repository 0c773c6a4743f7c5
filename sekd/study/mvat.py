"""The MV-AT study: teacher, students of the Table 3 rows (several seeds), their scores on the
VoiceBank-DEMAND pairs, the pre-mixed set and the DNS clips; Table 1 / 3 rows; the teacher's
preconditions; the paired distillation effect."""

from __future__ import annotations

import numpy as np

from ..baselines import NoisyInput, SpectralGating
from ..distill import TABLE3_ROWS
from ..metrics import QUALITY
from ..outputs import write_text
from ..results import dumps
from .paper import paper_effect
from .runs import (
    all_finished,
    curves,
    ensure_run,
    ensure_runs,
    finished_rows,
    load_run_model,
    paths,
    run_config,
)
from .scoring import (
    clean_passthrough,
    dns_pairs,
    evaluate,
    fingerprint,
    premix_pairs,
    premix_set,
    utterance_of,
    voicebank_pairs,
)
from .spec import (
    AT_WEIGHT_ROWS,
    LENGTH_ROWS,
    SEEDED_WEIGHT_ROWS,
    SETS,
    SIZE_ARMS,
    SIZE_ROWS,
    label,
    parse_label,
)
from .stats import (
    direction,
    interval,
    paired_by_file,
    paired_difference_by_name,
    scored_values,
    verdict,
)

# Table 3's rows (and one beyond the paper): each a config configs/shared/student_<row>.toml
# whose objective is sekd.distill.TABLE3_ROWS[row] (tests/test_losses.py checks the two agree).
MVAT_ROWS = tuple(TABLE3_ROWS)
MAIN_ROWS = {"baseline": "Baseline", "mvat_dual_q1": "+ MV-AT", "mvat_dual_kd": "+ MV-AT + KD"}
METHODS = ("mvat_dual_q1", "mvat_dual_kd")  # the distilled rows compared with the baseline
PAPER_METHODS = METHODS  # the rows whose effect the paper's Table 1 reports
# Untrained references scored beside the models: the input itself and classical spectral gating.
REFERENCES = {"noisy": NoisyInput, "spectral_gating": SpectralGating}
# The teacher must clear these margins (PESQ, on the VoiceBank-DEMAND pairs) before the study
# says anything about distillation from it.
TEACHER_OVER_NOISY = 0.30
TEACHER_OVER_BASELINE = 0.15


def seeds_of(row: str, seeds, ablation_seeds=None) -> tuple:
    """The seeds a row is trained with: the compared rows (the main rows, the 5.3GF arms, the
    AT-weight rows given the study's seeds) with `seeds`, the other Table 3 rows with
    `ablation_seeds` (default: the same seeds)."""
    compared = row in MAIN_ROWS or row in SIZE_ROWS or row in SEEDED_WEIGHT_ROWS
    return tuple(seeds if compared or ablation_seeds is None else ablation_seeds)


def robustness_rows(profile: str, seeds, ablation_seeds=None) -> list[str]:
    """The rows testing the verdict that have finished runs (nothing trains): each AT-weight
    row once its seeds (`seeds_of`) are trained, and the 5.3GF arms once all three exist for
    every seed."""
    weights = [
        row
        for row in AT_WEIGHT_ROWS
        if finished_rows(profile, [row], seeds_of(row, seeds, ablation_seeds))
    ]
    return [*weights, *(SIZE_ROWS if all_finished(profile, SIZE_ROWS, seeds) else [])]


def student_labels(rows, seeds, ablation_seeds=None) -> list[tuple[str, str, int | None]]:
    """(label, run name, seed) of every student, each row with its seeds (`seeds_of`). Seed
    None is the config's own seed."""
    return [
        (label(f"student_{row}", seed), f"student_{row}", seed)
        for row in rows
        for seed in seeds_of(row, seeds, ablation_seeds)
    ]


def test_sets(profile: str, names=tuple(SETS)) -> dict:
    """{set name: (name, noisy, clean) pairs} of the study's test sets."""
    cfg = run_config(profile, "student_baseline")
    make = {
        "voicebank": lambda: voicebank_pairs(limit=cfg.eval.voicebank_files),
        "premix": lambda: premix_pairs(premix_set(cfg)),
        "dns": dns_pairs,
    }
    return {n: make[n]() for n in names}


def _score(profile: str, labels, sets, retrain: bool) -> dict:
    """{set: {label: result}} of the references and of the runs `labels` ((label, run, seed))."""
    models = {label: make() for label, make in REFERENCES.items()}
    models.update({label: load_run_model(profile, name, seed) for label, name, seed in labels})
    return {
        set_name: {
            label: evaluate(profile, label, model, pairs, set_name, reuse=not retrain)
            for label, model in models.items()
        }
        for set_name, pairs in test_sets(profile, sets).items()
    }


def teacher_study(
    profile: str, retrain: bool = False, sets=("voicebank", "premix"), baseline_seeds=()
) -> dict:
    """Train (or reuse) the teacher and score it beside the references: the teacher's half of
    the preconditions (`teacher_preconditions`), known before any student is trained; with
    `baseline_seeds`, also those finished baseline students (the teacher-over-baseline check,
    known before the distilled students are trained)."""
    ensure_run(profile, "teacher", retrain=retrain)
    labels = [("teacher", "teacher", None), *student_labels(["baseline"], baseline_seeds)]
    for _, name, seed in labels[1:]:
        ensure_run(profile, name, seed, retrain=retrain)
    return _score(profile, labels, sets, retrain)


# The training corpora whose held-out (valid-split) clean speech `passthrough_study` feeds a model.
PASSTHROUGH_DATASETS = ("ms-snsd-vctk", "grid", "ljspeech", "emodb")


def passthrough_study(profile: str, models: dict, name: str = "clean_passthrough") -> dict:
    """`scoring.clean_passthrough` of each model ({label: model}) on the valid-split speech of
    PASSTHROUGH_DATASETS, with the model's `fingerprint`, written to
    results/<profile>/diagnostics/<name>.json."""
    out = {
        label: {
            "fingerprint": fingerprint(model),
            "datasets": clean_passthrough(model, PASSTHROUGH_DATASETS, split="valid"),
        }
        for label, model in models.items()
    }
    folder = paths(profile).results / "diagnostics"
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / f"{name}.json", dumps(out))
    return out


def mvat_study(
    profile: str,
    rows=MVAT_ROWS,
    seeds=(None,),
    retrain: bool = False,
    ablation_seeds=None,
    sets=tuple(SETS),
) -> dict:
    """Train (or reuse) the teacher and the students, score every model and the references on
    each test set (all metrics). Returns {set: {label: result}}; labels are the references
    ("noisy", "spectral_gating"), "teacher" and "student_<row>[_seed<k>]"."""
    ensure_run(profile, "teacher", retrain=retrain)
    labels = [("teacher", "teacher", None), *student_labels(rows, seeds, ablation_seeds)]
    ensure_runs(profile, [(name, seed) for _, name, seed in labels[1:]], retrain=retrain)
    return _score(profile, labels, sets, retrain)


def model_efficiency(preset: str, samples: int = 128_000) -> dict:
    from ..complexity import complexity

    c = complexity(preset, samples)
    return {"params": c.params, "gmacs_paper": c.macs_paper / 1e9, "gflops_true": c.flops / 1e9}


def enhances(result: dict, noisy: dict) -> bool:
    """The project's rule: a model enhances when its means beat the noisy input's in PESQ, STOI
    and SI-SDR and its output has positive gain on the clean reference (PESQ and STOI alone
    do not see an inverted or attenuated output)."""
    m, n = result["mean"], noisy["mean"]
    return bool(all(m[k] > n[k] for k in ("pesq", "stoi", "si_sdr")) and m["gain"] > 0)


def _groups(res: dict) -> dict[str, list[str]]:
    groups: dict = {}
    for lb in res:
        groups.setdefault(parse_label(lb)[0], []).append(lb)
    return groups


def mvat_table(profile: str, results: dict, set_name: str, rows=None) -> list[dict]:
    """One row per model: efficiency (params, paper-convention GMACs at 8 s), mean quality over
    the scored files, whether it enhances (`enhances`; None for the noisy input, the rule's
    reference), files and failures.

    Labels with several seeds are grouped: mean over seeds and, per metric, the spread (std over
    seeds) of the set means; `enhances` must hold for every seed.
    """
    res = results[set_name]
    table = []
    for base, labels in _groups(res).items():
        if (
            rows is not None
            and base.startswith("student_")
            and base.removeprefix("student_") not in rows
        ):
            continue
        entry = {"model": base, "seeds": len(labels)}
        if base.startswith("student_") or base == "teacher":
            entry.update(model_efficiency(run_config(profile, base).model.preset))
        for k in QUALITY:
            entry[k] = float(np.mean([res[lb]["mean"][k] for lb in labels]))
        if len(labels) > 1:  # the spread of each metric's mean over seeds
            for k in QUALITY:
                entry[f"{k}_std_over_seeds"] = float(
                    np.std([res[lb]["mean"][k] for lb in labels], ddof=1)
                )
        entry["enhances"] = (  # the noisy input is the rule's reference: no verdict on it
            None if base == "noisy" else all(enhances(res[lb], res["noisy"]) for lb in labels)
        )
        entry["files"] = res[labels[0]]["count"]
        entry["failed"] = max(res[lb]["failed"] for lb in labels)
        table.append(entry)
    return table


def _interval(set_name: str, per_file: dict[str, float]) -> tuple[float, float, float, str]:
    """`stats.interval` of per-file differences: files of the pre-mixed set share source
    utterances, the other sets' files are distinct recordings."""
    shared = {n: utterance_of(n) for n in per_file} if set_name == "premix" else None
    return interval(per_file, shared)


def paired_vs(results: dict, set_name: str, a: str, b: str, metric: str) -> dict:
    """b - a on `metric`, paired by file; a and b are labels or groups of seeded labels (each
    file's difference averaged over the seeds of b against the mean of a's seeds)."""
    res = results[set_name]
    groups = _groups(res)
    seeds = {side: [scored_values(res[lb], metric) for lb in groups[side]] for side in (a, b)}
    diffs = paired_by_file(seeds[a], seeds[b])
    m, lo, hi, how = _interval(set_name, diffs)
    return {"a": a, "b": b, "metric": metric, "diff": m, "ci_low": lo, "ci_high": hi,
            "pairs": len(diffs), "interval": how}  # fmt: skip


def teacher_preconditions(results: dict) -> list[dict]:
    """The checks the study makes before any distillation claim, each a row with the paired
    difference, its 95 % interval, the required margin and whether it holds:

    - VoiceBank-DEMAND pairs: teacher - noisy >= TEACHER_OVER_NOISY PESQ with the interval above
      0; teacher - baseline (mean over seeds) >= TEACHER_OVER_BASELINE; the teacher above
      classical spectral gating (a teacher that cannot beat it is not a teacher);
    - pre-mixed set: the teacher above the noisy input and above the baseline (interval above 0);
    - every set: the teacher's output has positive mean gain on the clean reference.

    A check whose reference is not scored yet (the baseline, before the students are trained:
    `teacher_study`) has `holds` None: pending, not passed.
    """
    checks = []
    for set_name, against, margin in (
        ("voicebank", "noisy", TEACHER_OVER_NOISY),
        ("voicebank", "student_baseline", TEACHER_OVER_BASELINE),
        ("voicebank", "spectral_gating", 0.0),
        ("premix", "noisy", 0.0),
        ("premix", "student_baseline", 0.0),
    ):
        if set_name not in results:
            continue
        row = {"check": f"teacher - {against}, PESQ", "set": set_name}
        if against not in _groups(results[set_name]):
            checks.append({**row, "a": against, "b": "teacher", "metric": "pesq",
                           "pairs": 0, "margin": margin, "holds": None})  # fmt: skip
            continue
        d = paired_vs(results, set_name, against, "teacher", "pesq")
        holds = d["diff"] >= margin and d["ci_low"] > 0
        checks.append({**row, **d, "margin": margin, "holds": bool(holds)})
    for set_name, res in results.items():
        g = res["teacher"]["mean"]["gain"]
        checks.append({"check": "teacher output gain on clean", "set": set_name, "diff": g,
                       "margin": 0.0, "holds": bool(g > 0)})  # fmt: skip
    return checks


# what a training log row holds besides the objective's terms
_LOG_FIELDS = {"kind", "step", "epoch", "lr", "total", "steps_per_s", "audio_s_per_s"}


def objective_shares(profile: str, rows=MVAT_ROWS, seeds=(None,)) -> list[dict]:
    """What each row's student was trained on, from its training log: per run, each logged
    term of the objective (supervised, at, kd, ...) averaged over the logged steps, and its
    share of the total (its weight in the objective x mean term / mean total; the logged terms
    are unweighted). A distillation term that is nearly all of the total leaves the student
    little of the supervised signal."""
    out = []
    for row in rows:
        objective = run_config(profile, f"student_{row}").objective
        weight = {"at": objective.beta_at, "kd": objective.beta_kd}
        for seed in seeds:
            train, _ = curves(profile, f"student_{row}", seed)
            terms = sorted({k for r in train for k in r} - _LOG_FIELDS)
            total = float(np.mean([r["total"] for r in train]))
            entry = {"row": row, "seed": seed, "steps": max(r["step"] for r in train),
                     "total": total}  # fmt: skip
            for k in terms:
                entry[k] = float(np.mean([r[k] for r in train]))
                entry[f"{k}_share"] = weight.get(k, 1.0) * entry[k] / total
            out.append(entry)
    return out


def at_weight_for_share(
    profile: str, row: str, share: float, seeds=(None, 1, 2), window: int = 200
) -> dict:
    """The eq. 4 weight beta_at at which a row's AT term would be `share` of its objective at
    the first validation, from its training logs at beta_at = 1: each logged term (supervised,
    at, kd) averaged over the rows logged in the `window` steps up to the first validation, over
    `seeds`; then beta_at = share * (supervised + kd) / ((1 - share) * at). The runs trained
    with it move the terms, so the share they reach is near `share`, not equal to it."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    terms: dict[str, list[float]] = {"supervised": [], "at": [], "kd": []}
    first_valid = None
    for seed in seeds:
        train, valid = curves(profile, f"student_{row}", seed)
        first_valid = min(r["step"] for r in valid)
        logged = [r for r in train if first_valid - window < r["step"] <= first_valid]
        for k, values in terms.items():
            values.extend(r.get(k, 0.0) for r in logged)
    mean = {k: float(np.mean(v)) for k, v in terms.items()}
    beta = share * (mean["supervised"] + mean["kd"]) / ((1 - share) * mean["at"])
    return {"row": row, "share": share, "beta_at": beta, "first_valid_step": first_valid,
            "window_steps": window, "seeds": list(seeds), **mean}  # fmt: skip


def paired_trend(
    profile: str, method: str, baseline: str = "baseline", seeds=(None, 1, 2),
    metrics=("pesq", "si_sdri"),
) -> list[dict]:  # fmt: skip
    """The paired difference (method - baseline) of validation measures against the step:
    for each metric and each step every seed's pair validated at, the mean over seeds of
    (row `method` of a seed) - (row `baseline` of the same seed, on the same stream of
    examples), its spread (std over seeds) and each seed's difference. Does the gap close,
    hold or grow with training?"""
    out = []
    for metric in metrics:
        per_seed = []
        for seed in seeds:
            a = {r["step"]: r[metric] for r in curves(profile, f"student_{baseline}", seed)[1]}
            b = {r["step"]: r[metric] for r in curves(profile, f"student_{method}", seed)[1]}
            per_seed.append({k: b[k] - a[k] for k in set(a) & set(b)})
        for step in sorted(set.intersection(*(set(d) for d in per_seed))):
            diffs = [d[step] for d in per_seed]
            out.append({"method": method, "baseline": baseline, "metric": metric,
                        "step": step, "diff": float(np.mean(diffs)),
                        "diff_std_over_seeds": float(np.std(diffs, ddof=1)) if len(diffs) > 1
                        else float("nan"), "diff_per_seed": diffs,
                        "seeds": len(diffs)})  # fmt: skip
    return out


def study_trend(profile: str, rows, seeds) -> list[dict]:
    """Notebook 04's trend table: `paired_trend` of every row of `rows` but the baseline
    against the baseline over `seeds`, then, once their runs are finished (nothing trains),
    the 5.3GF arms against the 5.3GF baseline over `seeds` and the longer pair over its one
    seed."""
    groups = [("baseline", [r for r in rows if r != "baseline"], seeds)]
    if all_finished(profile, SIZE_ROWS, seeds):
        groups.append((SIZE_ROWS[0], SIZE_ROWS[1:], seeds))
    if all_finished(profile, LENGTH_ROWS):
        groups.append((LENGTH_ROWS[0], LENGTH_ROWS[1:], (None,)))
    return [
        t
        for baseline, methods, group_seeds in groups
        for method in methods
        for t in paired_trend(profile, method, baseline=baseline, seeds=group_seeds)
    ]


# The MV-AT + KD rows: KD alone is the same objective without their AT term.
KD_WITH_AT_ROWS = ("mvat_dual_kd", "mvat_dual_kd_at50", "mvat_dual_kd_at10")


def at_over_kd(results: dict, set_name: str, rows, seeds, ablation_seeds=None) -> list[dict]:
    """Does the AT term add anything to KD? Each MV-AT + KD row of `rows` against KD alone
    (`distillation_effect` with baseline kd_only), over the seeds both rows were trained
    with (the stream of examples is the seed's, so the pairs stay paired)."""
    if "kd_only" not in rows:
        return []
    kd_seeds = seeds_of("kd_only", seeds, ablation_seeds)
    return [
        e
        for row in rows
        if row in KD_WITH_AT_ROWS
        for e in distillation_effect(
            results,
            set_name,
            row,
            [s for s in seeds_of(row, seeds, ablation_seeds) if s in kd_seeds],
            baseline="kd_only",
        )
    ]


def held_out_seeds(results: dict, set_name: str, rows, seeds) -> list[dict]:
    """Each seeded AT-weight row of `rows` (spec.SEEDED_WEIGHT_ROWS) against the baseline over
    its seeds but the first: the first seed's result is what chose the row for more seeds, so
    only the others test it without that bias."""
    others = list(seeds)[1:]
    return [
        e
        for row in rows
        if row in SEEDED_WEIGHT_ROWS and others
        for e in distillation_effect(results, set_name, row, others)
    ]


def _seed_difference(res: dict, a: str, b: str, seed, metric: str) -> dict[str, float]:
    """{file: b - a} of rows a and b trained with `seed`, for every file both scored."""
    return paired_difference_by_name(
        res[label(f"student_{a}", seed)], res[label(f"student_{b}", seed)], metric
    )


def _over_seeds(set_name: str, metric: str, per_seed: list[dict[str, float]]) -> dict:
    """A paired difference from its per-file values of each seed ({file: difference}, one
    per seed): `diff` and its 95 % interval over files, each file's difference averaged over
    the seeds (a file counts when every seed scored it), each seed's mean difference and
    their spread, and where the interval lies."""
    per_file: dict = {}
    for d in per_seed:
        for name, v in d.items():
            per_file.setdefault(name, []).append(v)
    diffs = {n: float(np.mean(v)) for n, v in per_file.items() if len(v) == len(per_seed)}
    means = [float(np.mean(list(d.values()))) if d else float("nan") for d in per_seed]
    m, lo, hi, how = _interval(set_name, diffs)
    return {
        "metric": metric,
        "diff": m,
        "ci_low": lo,
        "ci_high": hi,
        "interval": how,
        "pairs": len(diffs),
        "seeds": len(per_seed),
        "diff_per_seed": means,
        "diff_std_over_seeds": float(np.std(means, ddof=1)) if len(means) > 1 else float("nan"),
        "direction": direction(lo, hi),
    }


def distillation_effect(
    results: dict, set_name: str, method: str, seeds=(None,), baseline: str = "baseline"
) -> list[dict]:
    """Per metric: the difference (method - baseline), paired by file and seed; `baseline` is
    the row it is compared with (the 5.3GF rows with the 5.3GF baseline).

    `diff` and its 95 % interval are over files, each file's difference averaged over the
    seeds (so the interval reflects files, not seeds x files as if independent; on the
    pre-mixed set a cluster bootstrap over utterances); `diff_per_seed` lists each seed's mean
    difference and `diff_std_over_seeds` their spread; `verdict` states the PESQ / other
    differences against the paper's effect on that metric.
    """
    res = results[set_name]
    out = []
    for metric in QUALITY:
        per_seed = [_seed_difference(res, baseline, method, s, metric) for s in seeds]
        entry = {"method": method, "baseline": baseline} | _over_seeds(set_name, metric, per_seed)
        # the paper's effect is against its baseline student, so only that comparison has one
        paper_row = method in PAPER_METHODS and baseline == "baseline"
        if metric in ("pesq", "stoi", "csig", "cbak", "covl") and paper_row:
            paper = entry["paper"] = paper_effect(method, metric)
            entry["verdict"] = verdict(entry["ci_low"], entry["ci_high"], paper) if paper else ""
        out.append(entry)
    return out


def size_change(results: dict, set_name: str, rows, seeds) -> list[dict]:
    """Does distillation gain more at the paper's larger student? Per 5.3GF arm and metric:
    its effect over the 5.3GF baseline minus the same arm's effect over the 1.5GF baseline
    (`spec.SIZE_ARMS`), paired by file and seed, so the interval is that of the difference
    itself, not two intervals compared by eye. Nothing until `rows` holds both sizes' rows."""
    if not all(row in rows for pair in SIZE_ARMS.items() for row in pair):
        return []
    res = results[set_name]
    (big_baseline, small_baseline), *arms = SIZE_ARMS.items()
    out = []
    for big, small in arms:
        for metric in QUALITY:
            per_seed = []
            for seed in seeds:
                at_big = _seed_difference(res, big_baseline, big, seed, metric)
                at_small = _seed_difference(res, small_baseline, small, seed, metric)
                per_seed.append(paired_by_file([at_small], [at_big]))
            entry = {"method": big, "smaller": small} | _over_seeds(set_name, metric, per_seed)
            out.append(entry)
    return out
