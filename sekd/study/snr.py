"""The SNR teachers-student study: four band teachers, S1 (no teacher) and S2 (SNR-routed
teachers) with seeds, scored on the pre-mixed test grid; the teachers' preconditions; Tables
1-3 of the paper; S2 - S1 paired by file, overall and per SNR."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..baselines import NoisyInput, ideal_ratio_mask
from ..metrics import QUALITY, SNR_STUDY
from ..outputs import write_text
from ..results import dumps
from ..routing import snr_band
from .mvat import enhances
from .runs import ensure_run, ensure_runs, load_run_model, paths, run_config
from .scoring import (
    evaluate,
    fingerprint,
    premix_pairs,
    premix_set,
    premix_spec,
    utterance_of,
    voicebank_pairs,
)
from .spec import label as run_label
from .spec import parse_label
from .stats import direction, interval, paired_by_file

# the band teachers' roles (keys of snr_study's results, T1..T4 in the tables); which run fills
# each role is the profile's choice (band_teacher_runs)
TEACHERS = ("snr_teacher1", "snr_teacher2", "snr_teacher3", "snr_teacher4")
STUDENTS = ("snr_s1", "snr_s2")
LABELS = {"noisy": "Noisy", "snr_s1": "S1 (no teacher)", "snr_s2": "S2 (SNR teachers)"}
# the SNR study's measures (the metric registry's in_snr_study): the paper's two, and the
# SI-SDR improvement that sees level and sign
SNR_MEASURES = SNR_STUDY


def snr_test_set(profile: str, confirmation: bool = False):
    """(pairs, extra): the test grid's (name, noisy, clean) and each file's snr / noise_type /
    seen / utterance columns. `confirmation`: the confirmation grid instead, built as the test
    grid is (the same noises, SNRs, number of utterances and length) from corpus test speech
    the test grid does not use, mixed with the next seed (other noise segments): files that no
    candidate teacher was ever scored on while the band teachers were chosen."""
    cfg = run_config(profile, "snr_s2")
    ts = premix_set(cfg)
    if confirmation:
        used = tuple(sorted({r["speech"] for r in ts.rows}))
        spec = replace(premix_spec(cfg), seed=cfg.eval.seed + 1, exclude_speech=used)
        ts = premix_set(cfg, spec)
    unseen = set(cfg.eval.unseen_noises)
    extra = {
        r["name"]: {
            "snr": float(r["snr"]),
            "noise_type": r["noise_type"],
            "seen": r["noise_type"] not in unseen,
            "utterance": utterance_of(r["name"]),
        }
        for r in ts.rows
    }
    return premix_pairs(ts), extra


def band_teacher_runs(profile: str) -> tuple[str, ...]:
    """The run that teaches each band, band by band: the runs S2's config distils from (its
    teacher.checkpoints, runs/<profile>/<run>/best.pt), so S2 and the preconditions never
    disagree on which teacher a band has."""
    return tuple(Path(c).parent.name for c in run_config(profile, "snr_s2").teacher.checkpoints)


def band_pairs(profile: str, pairs, extra: dict, band: int) -> list:
    """The test-grid pairs whose SNR routes to teacher `band` (S2's bands and routing)."""
    bands = run_config(profile, "snr_s2").teacher.bands
    return [p for p in pairs if snr_band(extra[p[0]]["snr"], bands) == band]


def snr_study(profile: str, seeds=(None,), retrain: bool = False) -> dict:
    """Train (or reuse) the four teachers and S1, S2 with each seed; score them on the SNR test
    grid (PESQ, STOI, SI-SDR, gain; no composite measures). Teachers are scored only on the
    test files whose SNR routes to their band. Returns {label: result}: noisy, snr_teacher1..4
    (each band's teacher, `band_teacher_runs`; its run name in the result's "run"),
    snr_s1[_seed<k>], snr_s2[_seed<k>]."""
    teacher_runs = band_teacher_runs(profile)
    students = [(name, seed) for name in STUDENTS for seed in seeds]
    taught = [s for s in students if run_config(profile, s[0]).teacher.checkpoints]
    alone = [s for s in students if s not in taught]
    ensure_runs(profile, [*((t, None) for t in teacher_runs), *alone], retrain=retrain)
    ensure_runs(profile, taught, retrain=retrain)  # once their teachers are trained
    pairs, extra = snr_test_set(profile)

    def score(run, model, files):
        return evaluate(profile, run, model, files, "snr_test", False, reuse=not retrain,
                        extra=extra)  # fmt: skip

    out = {"noisy": score("noisy", NoisyInput(), pairs)}
    for b, (role, name) in enumerate(zip(TEACHERS, teacher_runs, strict=True)):
        band_files = band_pairs(profile, pairs, extra, b)
        out[role] = {**score(name, load_run_model(profile, name), band_files), "run": name}
    for name in STUDENTS:
        for seed in seeds:
            out[run_label(name, seed)] = score(
                run_label(name, seed), load_run_model(profile, name, seed), pairs
            )
    return out


def _files(result: dict) -> dict[str, dict]:
    return {r["name"]: r for r in result["files"] if not r["error"]}


def _paired(a: dict[str, dict], b_seeds: list[dict[str, dict]], metric: str, a_seeds=None):
    """{file: mean over seeds of b - a} (`stats.paired_by_file`) of {file: row} results."""
    values = [{n: r[metric] for n, r in x.items()} for x in a_seeds or [a]]
    return paired_by_file(values, [{n: r[metric] for n, r in x.items()} for x in b_seeds])


def _with_interval(diffs: dict[str, float], meta: dict[str, dict]) -> dict:
    """`stats.interval` over the files' source utterances (the grid mixes each many times)."""
    m, lo, hi, _ = interval(diffs, {n: meta[n]["utterance"] for n in diffs})
    return {"diff": m, "ci_low": lo, "ci_high": hi, "pairs": len(diffs),
            "direction": direction(lo, hi)}  # fmt: skip


def _against_noisy(noisy: dict, scores: dict, row: dict) -> bool:
    """Add to `row` the paired difference (model - noisy input) with its cluster-bootstrap
    interval in PESQ and SI-SDR improvement (the precondition), and, for the record, STOI and
    the same measures on the seen and the unseen noises apart; True when both precondition
    intervals are above 0."""
    ok = True
    for metric in ("pesq", "si_sdri", "stoi"):
        d = _with_interval(_paired(noisy, [scores], metric), scores)
        row.update({f"{metric}_{k}": v for k, v in d.items() if k != "pairs"})
        if metric != "stoi":
            ok = ok and d["ci_low"] > 0
        for seen, tag in ((True, "seen"), (False, "unseen")):
            part = {n: r for n, r in scores.items() if r["seen"] == seen}
            if part:
                d = _with_interval(_paired(noisy, [part], metric), part)
                row[f"{metric}_diff_{tag}"] = d["diff"]
                row[f"{metric}_ci_{tag}"] = [d["ci_low"], d["ci_high"]]
    return bool(ok)


def band_preconditions(results: dict) -> list[dict]:
    """Each teacher against the noisy input on its band's test files, in PESQ and in SI-SDR
    improvement, paired by file, with a cluster-bootstrap interval over utterances. A teacher
    passes when both intervals are above 0. STOI and the seen / unseen split are given beside."""
    noisy = _files(results["noisy"])
    rows = []
    for name in TEACHERS:
        scores = _files(results[name])
        row = {"teacher": results[name].get("run", name), "files": len(scores),
               "snrs": sorted({scores[n]["snr"] for n in scores})}  # fmt: skip
        row["holds"] = _against_noisy(noisy, scores, row)
        rows.append(row)
    return rows


def _band_files(profile: str, band: int, name: str):
    """(pairs, extra, noisy): one band's test files, their columns, and the noisy input's
    scores on them (under results/<profile>/diagnostics/<name>/)."""
    pairs, extra = snr_test_set(profile)
    band_files = band_pairs(profile, pairs, extra, band)
    noisy = evaluate(
        profile, "noisy", NoisyInput(), band_files, f"diagnostics/{name}", False, extra=extra
    )
    return band_files, extra, _files(noisy)


def _band_row(noisy: dict, scored: dict, **head) -> dict:
    """`head` + the files and SNRs scored + the paired differences to the noisy input and
    whether they hold (`_against_noisy`)."""
    row = {**head, "files": len(scored), "snrs": sorted({r["snr"] for r in scored.values()})}
    row["holds"] = _against_noisy(noisy, scored, row)
    return row


def band_check(profile: str, band: int, models: dict, name: str) -> list[dict]:
    """Candidate teachers of one band ({label: model}) against the noisy input on the test
    grid's files of that band, as `band_preconditions` does for the trained teachers (the
    students need not exist): scores under results/<profile>/diagnostics/<name>/, the rows, each
    with its model's `fingerprint`, in results/<profile>/diagnostics/<name>.json."""
    band_files, extra, noisy = _band_files(profile, band, name)
    rows = []
    for label, model in models.items():
        scored = evaluate(
            profile, label, model, band_files, f"diagnostics/{name}", False, extra=extra
        )
        rows.append(_band_row(noisy, _files(scored), model=label,
                              fingerprint=fingerprint(model), band=band))  # fmt: skip
    write_text(paths(profile).results / "diagnostics" / f"{name}.json", dumps(rows))
    return rows


def band_confirmation(profile: str) -> list[dict]:
    """Each band's teacher (`band_teacher_runs`) against the noisy input on the confirmation
    grid's files of its band (`snr_test_set(confirmation=True)`), as `band_preconditions` does
    on the test grid: a check on speech and noise segments that played no part in choosing
    the teachers. Scores under results/<profile>/snr_confirmation/."""
    pairs, extra = snr_test_set(profile, confirmation=True)
    noisy = _files(evaluate(profile, "noisy", NoisyInput(), pairs, "snr_confirmation", False,
                            extra=extra))  # fmt: skip
    rows = []
    for band, name in enumerate(band_teacher_runs(profile)):
        band_files = band_pairs(profile, pairs, extra, band)
        model = load_run_model(profile, name)
        scored = evaluate(profile, name, model, band_files, "snr_confirmation", False, extra=extra)
        rows.append(_band_row(noisy, _files(scored), teacher=name, band=band,
                              fingerprint=fingerprint(model)))  # fmt: skip
    return rows


def scored_candidates(profile: str, band: int) -> dict:
    """What choosing a band's teacher cost in tests: every set of weights `band_check` scored on
    the test grid's files of `band` (the rows of results/<profile>/diagnostics/*.json, one per
    distinct weights `fingerprint`, the first file that scored them named), and which held
    the precondition there. The more candidates were scored on the same files, the more a
    pass among them owes to chance: `band_confirmation` is the check that does not."""
    diag = paths(profile).results / "diagnostics"
    seen: dict[str, dict] = {}
    for f in sorted(diag.glob("*.json")) if diag.is_dir() else []:
        try:
            rows = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{f}: not a readable diagnostics file ({err})") from None
        if not (isinstance(rows, list) and all(isinstance(r, dict) for r in rows)):
            continue
        for r in rows:
            if r.get("band") != band or "fingerprint" not in r or "holds" not in r:
                continue  # another band, an oracle or another kind of diagnostic
            seen.setdefault(r["fingerprint"], {
                "model": r["model"], "fingerprint": r["fingerprint"], "file": f.name,
                "pesq_diff": r["pesq_diff"], "pesq_ci_low": r["pesq_ci_low"],
                "si_sdri_diff": r["si_sdri_diff"], "si_sdri_ci_low": r["si_sdri_ci_low"],
                "holds": r["holds"],
            })  # fmt: skip
    candidates = list(seen.values())
    passed = [c["model"] for c in candidates if c["holds"]]
    return {"band": band, "scored": len(candidates), "passed": passed, "candidates": candidates}


def oracle_band_check(profile: str, band: int, name: str) -> dict:
    """The ceiling of mask-based enhancement on one band's test files: the oracle ideal ratio
    mask (`baselines.ideal_ratio_mask`, which knows the clean signal) against the noisy input,
    as `band_check` scores a teacher: how far a band's precondition is reachable at all by
    attenuating bins of the mixture. Scores under results/<profile>/diagnostics/<name>/, the
    row in results/<profile>/diagnostics/<name>.json."""
    from ..data.audio import read_audio
    from ..metrics import evaluate_pairs
    from ..results import write_results

    band_files, extra, noisy = _band_files(profile, band, name)
    triples = []
    for n, x, c in band_files:
        x, c = read_audio(x), read_audio(c)
        triples.append((n, c, ideal_ratio_mask(x, c), x))
    rows, summary = evaluate_pairs(triples, workers=2, progress=False, composite_measures=False)
    for r in rows:
        r.update(extra[r["name"]])
    out = paths(profile).results / "diagnostics" / name
    write_results(rows, summary, out / "oracle_irm.json", out / "oracle_irm.csv")
    scored = _files({"files": rows})
    row = _band_row(noisy, scored, model="oracle_irm", band=band)
    row["gain"] = float(np.mean([r["gain"] for r in scored.values()]))
    write_text(paths(profile).results / "diagnostics" / f"{name}.json", dumps([row]))
    return row


def band_pesq_nb_raw(profile: str, band: int, models: dict, name: str) -> list[dict]:
    """One band's test files scored in the raw narrowband P.862 score (`metrics.pesq_nb_raw`),
    the scale of the SNR paper's tables (its noisy input scores below 1 at -20 and -15 dB,
    which wideband MOS-LQO cannot), for the noisy input and each candidate ({label: model}):
    per file, and each model - noisy paired by file with a cluster-bootstrap interval over
    utterances, overall and per test SNR. A diagnostic beside `band_check`: the precondition
    stays wideband PESQ (docs/method.md). Rows, the per-file scores (`files`) and the files
    that could not be read or scored (`errors`, with the reason) in
    results/<profile>/diagnostics/<name>.json."""
    import torch

    from ..data.audio import AudioError, read_audio
    from ..metrics import MetricError, pesq_nb_raw

    pairs, extra = snr_test_set(profile)
    band_files = band_pairs(profile, pairs, extra, band)
    models = {label: model.eval() for label, model in models.items()}
    scores = {"noisy": {}, **{label: {} for label in models}}
    errors = []
    for n, x_path, c_path in band_files:
        try:
            x, c = read_audio(x_path), read_audio(c_path)
        except AudioError as err:  # reported, the other files scored
            errors.append({"name": n, "model": None, "error": str(err)})
            continue
        outs = {"noisy": x}
        for label, model in models.items():  # as `evaluate` enhances: the whole file at once
            with torch.no_grad():
                outs[label] = model(torch.from_numpy(x)[None, None])[0, 0].numpy()
        for label, y in outs.items():
            try:
                scores[label][n] = {"pesq_nb_raw": pesq_nb_raw(c, y), **extra[n]}
            except MetricError as err:
                errors.append({"name": n, "model": label, "error": str(err)})
    rows = []
    for label in models:
        row = {"model": label, "band": band, "fingerprint": fingerprint(models[label])}
        for snr in [None, *sorted({r["snr"] for r in scores["noisy"].values()})]:
            part = {n: r for n, r in scores[label].items() if snr is None or r["snr"] == snr}
            d = _with_interval(_paired(scores["noisy"], [part], "pesq_nb_raw"), part)
            key = "all" if snr is None else f"{snr:+g} dB"
            row[key] = {
                "noisy": float(np.mean([scores["noisy"][k]["pesq_nb_raw"] for k in part])),
                "model": float(np.mean([r["pesq_nb_raw"] for r in part.values()])),
                **d,
            }
        rows.append(row)
    out = {"rows": rows, "errors": errors, "files": scores}
    write_text(paths(profile).results / "diagnostics" / f"{name}.json", dumps(out))
    return rows


def students_vs_noisy(results: dict) -> list[dict]:
    """Each student run (every seed) against the noisy input over the whole test grid: its mean
    PESQ, STOI and SI-SDR beside the input's, whether it lowers STOI below the input's, and
    whether it enhances by the project's rule (`enhances`: above the input in PESQ, STOI and
    SI-SDR, with positive gain on the clean signal)."""
    noisy = results["noisy"]["mean"]
    rows = []
    for name in STUDENTS:
        for label in student_seeds(results, name):
            m = results[label]["mean"]
            row = {"model": label}
            for k in ("pesq", "stoi", "si_sdr"):
                row[k], row[f"noisy_{k}"] = m[k], noisy[k]
            row["gain"] = m["gain"]
            row["lowers_stoi"] = bool(m["stoi"] < noisy["stoi"])
            row["enhances"] = enhances(results[label], results["noisy"])
            rows.append(row)
    return rows


def against_noisy_by_snr(results: dict, metric: str = "stoi") -> list[dict]:
    """Where a model gains or loses against the noisy input: per test SNR, S1 and S2 (each
    file's difference averaged over the seeds) and each band teacher (at its band's SNRs),
    `metric` minus the input's, paired by file, with a 95 % cluster-bootstrap interval over
    source utterances, and the model's mean output gain on the clean signal at that SNR (the
    level the model leaves speech at: a gain far below 1 is heavy suppression)."""
    meta = _files(results["noisy"])
    models = [(n, seeds) for n in STUDENTS if (seeds := student_seeds(results, n))]
    models += [(t, [t]) for t in TEACHERS if t in results]
    rows = []
    for model, labels in models:
        runs = [_files(results[lb]) for lb in labels]
        d = _paired(meta, runs, metric)
        for snr in sorted({meta[n]["snr"] for n in d}):
            names = [n for n in d if meta[n]["snr"] == snr]
            row = {"model": results[model].get("run", model) if model in TEACHERS else model,
                   "snr": snr, "metric": metric, "seeds": len(runs)}  # fmt: skip
            row.update(_with_interval({n: d[n] for n in names}, meta))
            row["gain"] = float(np.mean([r[n]["gain"] for r in runs for n in names]))
            rows.append(row)
    return rows


def student_seeds(results: dict, name: str) -> list[str]:
    return sorted(k for k in results if parse_label(k)[0] == name)


def snr_effect(results: dict, metrics=SNR_MEASURES) -> list[dict]:
    """S2 - S1 per metric, paired by test file (each file's difference averaged over the
    seeds), with a 95 % cluster-bootstrap interval over source utterances; on all files and per
    SNR of the test grid, and per seen / unseen noise; the per-seed mean differences."""
    s1 = [_files(results[k]) for k in student_seeds(results, "snr_s1")]
    s2 = [_files(results[k]) for k in student_seeds(results, "snr_s2")]
    meta = _files(results["noisy"])
    out = []
    for metric in metrics:
        d = _paired(s1[0], s2, metric, a_seeds=s1)
        per_seed = [float(np.mean(list(_paired(a, [b], metric).values()))) for a, b in zip(s1, s2)]
        groups = {"all": list(d)}
        for snr in sorted({meta[n]["snr"] for n in d}):
            groups[f"{snr:+g} dB"] = [n for n in d if meta[n]["snr"] == snr]
        groups["seen noises"] = [n for n in d if meta[n]["seen"]]
        groups["unseen noises"] = [n for n in d if not meta[n]["seen"]]
        for group, names in groups.items():
            if not names:
                continue
            entry = {"metric": metric, "group": group, "seeds": len(s2)}
            entry.update(_with_interval({n: d[n] for n in names}, meta))
            if group == "all":
                entry["diff_per_seed"] = per_seed
            out.append(entry)
    return out


def _mean_by(results: dict, labels: list[str], key: str, metric: str) -> dict:
    """{value of `key`: mean over files (and seeds) of `metric`}."""
    by: dict = {}
    for lb in labels:
        for r in _files(results[lb]).values():
            by.setdefault(r[key], []).append(r[metric])
    return {k: float(np.mean(v)) for k, v in sorted(by.items())}


def snr_tables(results: dict) -> dict:
    """Tables 1-3 of the SNR paper (PESQ, STOI and, beyond the paper, SI-SDRi), as lists of
    dict rows; students' cells are means over their seeds."""
    groups = {"noisy": ["noisy"], **{t: [t] for t in TEACHERS}}
    for s in STUDENTS:
        groups[s] = student_seeds(results, s)
    t1 = []
    for seen in (True, False):
        noises = sorted({r["noise_type"] for r in _files(results["noisy"]).values()
                         if r["seen"] == seen})  # fmt: skip
        for noise in noises:
            for key in ("noisy", "snr_s2"):
                sub = {lb: {"files": [r for r in results[lb]["files"] if r["noise_type"] == noise]}
                       for lb in groups[key]}  # fmt: skip
                row = {"noise": noise, "seen": seen, "model": LABELS[key]}
                for metric in SNR_MEASURES:
                    for snr, v in _mean_by(sub, groups[key], "snr", metric).items():
                        row[f"{metric}@{snr:+g}"] = v
                t1.append(row)
    t2 = []
    for metric in SNR_MEASURES:
        for key, labels in groups.items():
            row = {"metric": metric, "model": LABELS.get(key, key.replace("snr_teacher", "T")),
                   "seeds": len(labels)}  # fmt: skip
            for snr, v in _mean_by(results, labels, "snr", metric).items():
                row[f"{snr:+g} dB"] = v
            t2.append(row)
    t3 = []
    for key in ("noisy", *STUDENTS):
        labels = groups[key]
        row = {"model": LABELS[key], "seeds": len(labels)}
        for metric in QUALITY:
            vals = [results[lb]["mean"][metric] for lb in labels]
            if np.isfinite(vals).all():
                row[metric] = float(np.mean(vals))
                if len(vals) > 1:
                    row[f"{metric}_std_over_seeds"] = float(np.std(vals, ddof=1))
        row["files"] = results[labels[0]]["count"]
        row["failed"] = max(results[lb]["failed"] for lb in labels)
        t3.append(row)
    return {"table1": t1, "table2": t2, "table3": t3}


def snr_voicebank(profile: str, seeds=(None,), retrain: bool = False) -> list[dict]:
    """S1 and S2 (each seed) and the noisy input on the VoiceBank-DEMAND test pairs, all
    metrics: the MV-AT study's test set, so both studies' students meet on the same files."""
    cfg = run_config(profile, "student_baseline")
    pairs = voicebank_pairs(limit=cfg.eval.voicebank_files)
    rows = []
    labels = [("noisy", None, None)] + [(run_label(n, s), n, s) for n in STUDENTS for s in seeds]
    for label, name, seed in labels:
        if name is None:
            model = NoisyInput()
        else:
            ensure_run(profile, name, seed, retrain=retrain)
            model = load_run_model(profile, name, seed)
        r = evaluate(profile, label, model, pairs, "voicebank", reuse=not retrain)
        rows.append({"model": label, **{k: r["mean"][k] for k in QUALITY},
                     "files": r["count"], "failed": r["failed"]})  # fmt: skip
    return rows
