"""Write the README's results block from the files under results/ (numbers are never typed).

`python -m sekd.study.readme [--profile cpu]` replaces the text between the markers
`<!-- results:start -->` and `<!-- results:end -->` in README.md. Column titles come from the
metric registry (`sekd.metrics.MEASURES`), verdicts from `sekd.study.stats.verdict`.
"""

from __future__ import annotations

import argparse
import json

from ..data.corpus import REPO_ROOT
from ..metrics import MEASURE, QUALITY
from ..outputs import write_text
from .paper import SNR_PAPER_CLAIM
from .spec import SETS
from .stats import direction
from .verdicts import mvat_effect_sentence, nan_if_none, signed, study_budget, teacher_verdict


def header(first=("model", "seeds", "params", "GMACs @ 8 s"), keys=QUALITY, last=("enhances",)):
    cols = [*first, *(MEASURE[k].title for k in keys), *last]
    return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]


def _fmt(v, nd=3):
    return "n/a" if v is None or v != v else f"{v:.{nd}f}"


def _cell(r: dict, k: str) -> str:
    sd = r.get(f"{k}_std_over_seeds")
    return _fmt(r.get(k), MEASURE[k].decimals) + (
        f" ± {_fmt(sd, MEASURE[k].decimals)}" if sd is not None else ""
    )


def _row(r: dict) -> str:
    gmacs = _fmt(r.get("gmacs_paper"), 2) if "gmacs_paper" in r else ""
    cells = " | ".join(_cell(r, k) for k in QUALITY)
    enh = {True: "yes", False: "**no**"}.get(r.get("enhances"), "")
    return f"| {r['model']} | {r['seeds']} | {r.get('params', '')} | {gmacs} | {cells} | {enh} |"


def _load(path):
    return json.loads(path.read_text()) if path.is_file() else None


def preconditions_block(profile: str, res) -> list[str]:
    checks = _load(res / "mvat_preconditions.json")
    if checks is None:
        return []
    ok = all(c["holds"] for c in checks)
    lines = [
        f"**Preconditions for a distillation claim** (`results/{profile}/mvat_preconditions.json`,"
        " computed by `sekd.study.teacher_preconditions`):",
        "",
    ]
    for c in checks:
        if c["holds"] is None:
            lines.append(f"- {c['set']}: {c['check']}: **pending** (not scored yet)")
            continue
        ci = (
            f" [{signed(c['ci_low'])}, {signed(c['ci_high'])}] over {c['pairs']} files"
            if "ci_low" in c
            else ""
        )
        need = (
            f"needs >= {c['margin']:+.2f} with the interval above 0"
            if ci
            else f"needs > {c['margin']:g}"
        )
        lines.append(
            f"- {c['set']}: {c['check']} = {signed(c['diff'], 3)}{ci} ({need}): "
            f"{'holds' if c['holds'] else '**fails**'}"
        )
    return [*lines, "", teacher_verdict(ok)]


def effect_lines(effects: list[dict], budget) -> list[str]:
    """The PESQ effects of a set, one sentence each (`verdicts.mvat_effect_sentence`)."""
    return [f"- {mvat_effect_sentence(e, budget)}" for e in effects if e["metric"] == "pesq"]


def _band_line(b: dict) -> str:
    """A band teacher against the noisy input on its band's files (`snr._band_row`)."""
    if not b["files"]:
        return f"- {b['teacher']}: no test files in its band"
    return (
        f"- {b['teacher']} ({', '.join(f'{s:+g}' for s in b['snrs'])} dB, "
        f"{b['files']} files): PESQ {signed(b['pesq_diff'], 3)} "
        f"[{signed(b['pesq_ci_low'], 3)}, {signed(b['pesq_ci_high'], 3)}], "
        f"SI-SDRi {signed(b['si_sdri_diff'], 2)} dB "
        f"[{signed(b['si_sdri_ci_low'], 2)}, {signed(b['si_sdri_ci_high'], 2)}]"
        + (
            f" (seen noises {signed(b['si_sdri_diff_seen'], 2)}, unseen "
            f"{signed(b['si_sdri_diff_unseen'], 2)})"
            if "si_sdri_diff_unseen" in b
            else ""
        )
        + (": beats the noisy input" if b["holds"] else ": **does not beat the noisy input**")
    )


def _band_search_lines(profile: str, bands, search) -> list[str]:
    tried = []
    for i, b in enumerate(bands):
        mine = [c for c in search if c["band"] == i]
        held = [c["model"] for c in mine if c["holds"]]
        if mine:
            names = f" ({', '.join(held)})" if held else ""
            tried.append(
                f"band {i + 1} (kept: {b['teacher']}), {len(mine)} weights, {len(held)} held"
                + names
            )
    return [
        "",
        "Weights band-checked on these test files while the teachers were chosen "
        f"(`results/{profile}/snr_band_search.json`): {'; '.join(tried)}. A teacher kept "
        "because it passed among several candidates scored on the same files owes part of "
        "its pass to that choice; the confirmation grid below does not.",
    ]


def _band_lines(profile: str, res) -> list[str]:
    """The band teachers' preconditions, the search that chose them, the confirmation grid."""
    lines = []
    bands = _load(res / "snr_preconditions.json")
    if bands is not None:
        lines += ["", f"Band teachers against the noisy input on their band's test files "
                  f"(`results/{profile}/snr_preconditions.json`, cluster bootstrap over "
                  "utterances):", ""]  # fmt: skip
        lines += [_band_line(b) for b in bands]
    search = _load(res / "snr_band_search.json")
    if bands is not None and search:
        lines += _band_search_lines(profile, bands, search)
    confirmed = _load(res / "snr_band_confirmation.json")
    if confirmed is not None:
        lines += [
            "",
            "Band teachers on the confirmation grid (the test grid built again from corpus test "
            "speech it does not use, other noise segments; no candidate was scored on it; "
            f"`results/{profile}/snr_band_confirmation.json`):",
            "",
        ]
        lines += [_band_line(b) for b in confirmed]
    return lines


def _snr_effect_line(e: dict) -> str:
    nd = {"pesq": 3, "stoi": 4}.get(e["metric"], 2)
    seeds = e.get("seeds", 1)
    per_seed = (
        f"; per seed {', '.join(signed(d, nd) for d in e['diff_per_seed'])}"
        if seeds > 1 and "diff_per_seed" in e
        else ""
    )
    side = direction(nan_if_none(e["ci_low"]), nan_if_none(e["ci_high"]))
    return (
        f"- S2 - S1, {MEASURE[e['metric']].title}: {signed(e['diff'], nd)} "
        f"[{signed(e['ci_low'], nd)}, {signed(e['ci_high'], nd)}] over {e['pairs']} files, "
        f"{seeds} seed(s){per_seed} (S2 {side} S1; the paper reports {SNR_PAPER_CLAIM})"
    )


def _stoi_loss_line(profile: str, by_snr) -> str:
    lost: dict[str, list[str]] = {}
    for r in by_snr:
        below = direction(nan_if_none(r["ci_low"]), nan_if_none(r["ci_high"])) == "below"
        lost.setdefault(r["model"], [])
        if below:
            lost[r["model"]].append(f"{r['snr']:+g} dB (gain {r['gain']:.2f})")
    where = "; ".join(f"{m} at {', '.join(v)}" for m, v in lost.items() if v)
    where = where or "no model, at no SNR"
    return (
        f"- below the noisy input in STOI (`results/{profile}/snr_stoi_by_snr.json`, per test "
        f"SNR, with the output's gain on the clean signal there): {where}"
    )


def snr_block(profile: str, res) -> list[str]:
    """The SNR teachers-student study: band preconditions, noisy / S1 / S2, S2 - S1."""
    t3, eff = _load(res / "snr_table3.json"), _load(res / "snr_effect.json")
    if t3 is None or eff is None:
        return []
    keys = [k for k in QUALITY if any(k in r for r in t3)]
    lines = ["", "**SNR-based teachers-student** (U-Net students `waveunet_cpu`; four band"]
    lines.append("teachers, named below; S1 without and S2 with SNR-routed teachers).")
    lines += _band_lines(profile, res)
    lines += ["", f"Test grid, `results/{profile}/snr_table3.json`:", ""]
    lines += header(("model", "seeds"), keys, ("files", "failed"))
    for r in t3:
        cells = " | ".join(_cell(r, k) for k in keys)
        lines.append(f"| {r['model']} | {r.get('seeds', 1)} | {cells} | {r['files']} | "
                     f"{r['failed']} |")  # fmt: skip
    lines.append("")
    lines += [_snr_effect_line(e) for e in eff if e.get("group", e.get("snr")) == "all"]
    by_snr = _load(res / "snr_stoi_by_snr.json")
    if by_snr is not None:
        lines.append(_stoi_loss_line(profile, by_snr))
    lines.append(
        f"- per SNR and per seen / unseen noise: `results/{profile}/snr_effect.json`; intervals "
        "are cluster bootstraps over source utterances (files made from one utterance are not "
        "counted as independent)."
    )
    return lines


def results_block(profile: str = "cpu", root=REPO_ROOT) -> str:
    res = root / "results" / profile
    t1 = _load(res / "mvat_table1_voicebank.json")
    if t1 is None:
        return (
            f"No `{profile}` results are committed yet: train the profile's runs and run "
            f"`sekd reproduce --profile {profile}`."
        )
    lines = [
        f"Profile `{profile}`, written by `python -m sekd.study.readme` from `results/{profile}/`.",
        "The VoiceBank-DEMAND test pairs are bundled real files, a subset of the official test",
        "set: comparable between these models, not with published full-set numbers.",
        "",
        *preconditions_block(profile, res),
    ]
    for set_name, title in SETS.items():
        rows = _load(res / f"mvat_table1_{set_name}.json")
        if rows is None:
            continue
        lines += ["", f"Table 1, {title} (`results/{profile}/mvat_table1_{set_name}.json`):", ""]
        lines += header() + [_row(r) for r in rows]
    lines += [
        "",
        "With several seeds, a cell is the mean over seeds ± the std of the seeds' means. "
        "*enhances*: beats the noisy input in PESQ, STOI and SI-SDR with positive output gain.",
    ]
    t3 = _load(res / "mvat_table3_voicebank.json")
    if t3 is not None:
        lines += ["", f"Table 3 rows (ablations), VoiceBank-DEMAND pairs, from "
                  f"`results/{profile}/mvat_table3_voicebank.json`:", ""]  # fmt: skip
        lines += header() + [_row(r) for r in t3]
    budget = study_budget(profile)
    for set_name, title in SETS.items():
        eff = _load(res / f"mvat_effect_{set_name}.json")
        if eff is None:
            continue
        lines += [
            "",
            f"Distillation effect on PESQ, {title}, paired by file (mean difference to the "
            f"baseline, 95 % interval; `results/{profile}/mvat_effect_{set_name}.json`):",
            "",
            *effect_lines(eff, budget),
        ]
    lines += snr_block(profile, res)
    fig = res / "figures" / "05_maps_after.png"
    if fig.is_file():
        lines += [
            "",
            f"![teacher vs student attention maps after MV-AT]({fig.relative_to(root)})",
        ]
    return "\n".join(lines)


RUNTIME_TITLES = {
    "eager": "PyTorch eager",
    "compile": "torch.compile",
    "onnxruntime": "ONNX Runtime",
}


def deploy_table(report: dict) -> list[str]:
    """The real-time factors of `benchmarks/deploy_speed.py` (results/benchmarks/
    deploy_speed.json): one row per model, a column per runtime and thread count, peak memory."""
    threads = sorted({r["threads"] for r in report["rows"]})
    runtimes = [k for k in RUNTIME_TITLES if any(r["runtime"] == k for r in report["rows"])]
    rtf = {(r["preset"], r["runtime"], r["threads"]): r["rtf"] for r in report["rows"]}
    cols = [
        f"{RUNTIME_TITLES[n]}, {t} thread{'s' if t > 1 else ''}" for t in threads for n in runtimes
    ]
    lines = [
        "| model | "
        + " | ".join(cols)
        + f" | peak memory (MB), {' / '.join(RUNTIME_TITLES[n] for n in runtimes)} |",
        "|---|" + "---|" * (len(cols) + 1),
    ]
    mem = report["peak_memory_mb"]
    for preset in dict.fromkeys(r["preset"] for r in report["rows"]):
        cells = " | ".join(_fmt(rtf.get((preset, n, t)), 4) for t in threads for n in runtimes)
        peak = " / ".join(_fmt(mem.get(f"{preset}/{n}"), 0) for n in runtimes)
        lines.append(f"| {preset} | {cells} | {peak} |")
    return lines


def deploy_block(root=REPO_ROOT) -> str:
    report = _load(root / "results" / "benchmarks" / "deploy_speed.json")
    if report is None:
        return "Not measured yet: `python benchmarks/deploy_speed.py --json FILE`."
    a = report["args"]
    return "\n".join(
        [
            "Real-time factor (seconds of compute per second of audio; below 1 is faster than "
            f"real time) of enhancing {a['seconds']:g} s of speech in one call, median of "
            f"{a['rounds']} interleaved rounds, on this machine ({report['cpus']} cores, torch "
            f"{report['torch']}); written by `python -m sekd.study.readme` from "
            "`results/benchmarks/deploy_speed.json`:",
            "",
            *deploy_table(report),
        ]
    )


def student_speed_line(root=REPO_ROOT) -> str:
    """The 1.5GF student's RTF beside the paper's efficiency columns (Table 1)."""
    from .paper import PAPER_MVAT_TABLE1

    report = _load(root / "results" / "benchmarks" / "deploy_speed.json")
    if report is None:
        return ""
    rtf = {
        (r["runtime"], r["threads"]): r["rtf"]
        for r in report["rows"]
        if r["preset"] == "student_1p5gf"
    }
    paper = PAPER_MVAT_TABLE1["MANNER-S-1.5GF (Baseline)"]
    return (
        f"The 1.5GF student runs at a real-time factor of {rtf[('eager', 1)]:.4f} in PyTorch and "
        f"{rtf[('onnxruntime', 1)]:.4f} in ONNX Runtime on one CPU thread "
        f"(`results/benchmarks/deploy_speed.json`, docs/benchmarks.md); the paper gives its "
        f"efficiency as {paper['params_m']}M parameters and {paper['gflops']} GFLOPs (its count)."
    )


def replace_block(path, name: str, body: str) -> None:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in `path`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{path} lacks the markers {start} ... {end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_text(path, f"{head}{start}\n{body}\n{end}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu")
    args = ap.parse_args()
    replace_block(REPO_ROOT / "README.md", "results", results_block(args.profile))
    replace_block(REPO_ROOT / "README.md", "speed", student_speed_line())
    replace_block(REPO_ROOT / "docs" / "benchmarks.md", "deploy", deploy_block())


if __name__ == "__main__":
    main()
