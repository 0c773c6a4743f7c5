"""Write the report blocks from the files under results/ (numbers are never typed).

`python -m sekd.study.readme [--profile cpu]` replaces the text between `<!-- NAME:start -->`
and `<!-- NAME:end -->`: in README.md the study's answer at a glance (`glance`), the size of a
shallow clone (`size`) and the student's speed (`speed`); in docs/results.md every table and
verdict (`results`); in docs/benchmarks.md the deployment table (`deploy`). Tables come from
`sekd.study.tables`, sentences from `sekd.study.verdicts`: the notebooks show the same.
"""

from __future__ import annotations

import argparse
import json
import subprocess

from ..data.corpus import REPO_ROOT
from ..metrics import MEASURE
from ..outputs import write_text
from .mvat import METHODS
from .spec import RESULTS, SETS
from .tables import (
    BAND_COLUMNS,
    effect_cell,
    effect_table,
    markdown_table,
    measure_cell,
    number,
    quality_table,
    rows_table,
)
from .verdicts import (
    band_preconditions_sentence,
    band_search_sentence,
    model_title,
    mvat_conclusion,
    robustness_answers,
    snr_budget,
    snr_conclusion,
    stoi_loss_sentence,
    study_budget,
    teacher_verdict,
)

GLANCE = ("pesq", "stoi", "si_sdri")  # the measures of the at-a-glance table
MVAT_GLANCE = ("teacher", "student_baseline", "student_mvat_dual_q1", "student_mvat_dual_kd")
SNR_GLANCE = {"S1 (no teacher)": "S1, the U-Net student alone",
              "S2 (SNR teachers)": "S2, taught by the SNR band teachers"}  # fmt: skip


def _load(path):
    return json.loads(path.read_text()) if path.is_file() else None


def _table(res, name: str):
    """The rows of result table `name` (a `RESULTS` name) under `res`, None without it."""
    return _load(res / f"{name}.json")


def _glance_row(title: str, where: str, row: dict, effects: dict) -> list[str]:
    cells = [measure_cell(row, k) for k in GLANCE]
    return [
        title,
        where,
        *cells,
        *(effect_cell(effects[k]) if k in effects else "" for k in GLANCE),
    ]


def glance_table(res) -> str:
    """Teacher, baseline, MV-AT, MV-AT + KD on the VoiceBank-DEMAND pairs and S1 / S2 on the
    SNR test grid: PESQ, STOI, SI-SDRi and each distilled row's paired effect."""
    t1 = {r["model"]: r for r in _table(res, RESULTS.table1("voicebank"))}
    effects = {}
    for e in _table(res, RESULTS.effect("voicebank")) or []:
        effects.setdefault(f"student_{e['method']}", {})[e["metric"]] = e
    rows = [_glance_row(model_title(m), SETS["voicebank"], t1[m], effects.get(m, {}))
            for m in MVAT_GLANCE if m in t1]  # fmt: skip
    snr = {r["model"]: r for r in _table(res, RESULTS.snr_table("table3")) or []}
    s2 = {e["metric"]: e for e in _table(res, RESULTS.snr_effect) or [] if e["group"] == "all"}
    rows += [_glance_row(title, "SNR test grid", snr[m], s2 if m.startswith("S2") else {})
             for m, title in SNR_GLANCE.items() if m in snr]  # fmt: skip
    titles = [MEASURE[k].title for k in GLANCE]
    header = ["model", "test set", *titles, *(f"effect on {t}" for t in titles)]
    return markdown_table(header, rows)


def glance_block(profile: str = "cpu", root=REPO_ROOT) -> str:
    """The study's answer at a glance: the table, each study's budget beside its paper's, and
    whether the MV-AT verdict survives its confounds."""
    from .paper import PAPER_MVAT_BUDGET, SNR_PAPER_BUDGET

    res = root / "results" / profile
    if _table(res, RESULTS.table1("voicebank")) is None:
        return (
            f"No `{profile}` results are committed yet: train the profile's runs and run "
            f"`sekd reproduce --profile {profile}`."
        )
    effects = _table(res, RESULTS.effect("voicebank")) or []
    budget = study_budget(profile)
    lines = [
        glance_table(res),
        "",
        "Effects are paired by file, with 95 % intervals: MV-AT rows against the baseline "
        "student, S2 against S1, the paper's own effect in brackets. The budgets:",
        "",
        f"- MV-AT: {budget.phrase()}; the paper: {PAPER_MVAT_BUDGET}.",
        f"- SNR teachers: {snr_budget(profile).phrase()}; the paper: {SNR_PAPER_BUDGET}.",
        "",
        "Is the MV-AT verdict robust? On the VoiceBank-DEMAND test pairs:",
        "",
        _robustness(res, effects, budget, brief=True),
    ]
    return "\n".join(lines)


def _robustness(res, effects: list[dict], budget, brief: bool = False) -> str:
    """`robustness_answers` from the committed tables (`effects`: the VoiceBank-DEMAND ones)."""
    tables = (RESULTS.trend, RESULTS.at_over_kd, RESULTS.held_out_seeds, RESULTS.size_change)
    trend, over_kd, held_out, changes = (_table(res, name) or [] for name in tables)
    return robustness_answers(effects, trend, budget, over_kd, held_out, changes, brief=brief)


def _preconditions(res) -> list[str]:
    checks = _table(res, RESULTS.preconditions)
    if checks is None:
        return []
    ok = all(c["holds"] for c in checks)
    columns = ["check", "set", "diff", "ci_low", "ci_high", "pairs", "margin", "holds"]
    return ["## Preconditions for a distillation claim", "", teacher_verdict(ok), "",
            rows_table(checks, columns)]  # fmt: skip


def _mvat_tables(profile: str, res) -> list[str]:
    lines = []
    for set_name, title in SETS.items():
        rows = _table(res, RESULTS.table1(set_name))
        if rows is not None:
            where = f"`results/{profile}/{RESULTS.table1(set_name)}.json`"
            paper = ", the paper's rows in italics" if set_name == "voicebank" else ""
            lines += ["", f"**Table 1, {title}** ({where}{paper})", "",
                      quality_table(rows, with_paper=set_name == "voicebank")]  # fmt: skip
    t3 = _table(res, RESULTS.table3)
    if t3 is not None:
        where = f"`results/{profile}/{RESULTS.table3}.json`"
        lines += ["", f"**Table 3, every row, {SETS['voicebank']}** ({where})", "",
                  quality_table(t3)]  # fmt: skip
    return lines


def _mvat_effects(profile: str, res) -> list[str]:
    effects = {s: _table(res, RESULTS.effect(s)) for s in SETS}
    effects = {s: e for s, e in effects.items() if e is not None}
    if not effects:
        return []
    lines = ["", "## The distillation effect, paired by file", ""]
    for set_name, rows in effects.items():
        lines += [f"**{SETS[set_name]}** (`results/{profile}/{RESULTS.effect(set_name)}.json`)", "",
                  effect_table(rows, metrics=list(GLANCE)), ""]  # fmt: skip
    checks = _table(res, RESULTS.preconditions) or []
    budget = study_budget(profile)
    lines += [mvat_conclusion(effects, all(c["holds"] for c in checks), budget, METHODS, SETS)]
    if "voicebank" in effects:
        lines += ["", "**Is the verdict robust?** On the VoiceBank-DEMAND test pairs:", "",
                  _robustness(res, effects["voicebank"], budget)]  # fmt: skip
    return lines


def _snr_block(profile: str, res) -> list[str]:
    t3, effect = _table(res, RESULTS.snr_table("table3")), _table(res, RESULTS.snr_effect)
    if t3 is None or effect is None:
        return []
    bands = _table(res, RESULTS.snr_preconditions) or []
    confirmed = _table(res, RESULTS.snr_confirmation) or []
    vs_noisy = _table(res, RESULTS.snr_vs_noisy) or []
    lines = ["", "## SNR-based teachers-student", "", band_preconditions_sentence(bands), "",
             rows_table(bands, list(BAND_COLUMNS)), "",
             band_search_sentence(bands, _table(res, RESULTS.snr_search) or [], confirmed),
             "", f"**The test grid** (`results/{profile}/{RESULTS.snr_table('table3')}.json`)", "",
             quality_table(t3), ""]  # fmt: skip
    by_snr = _table(res, RESULTS.snr_stoi_by_snr)
    if by_snr is not None:
        lines += [stoi_loss_sentence(by_snr), ""]
    where = f"`results/{profile}/{RESULTS.snr_effect}.json`"
    lines += [f"**S2 - S1, paired by file** ({where}; cluster bootstrap over source utterances)",
              "", effect_table(effect, group="group"), "",
              snr_conclusion(effect, bands, confirmed, vs_noisy, snr_budget(profile))]  # fmt: skip
    return lines


FIGURES = {
    "06_forest.png": "every distillation effect with its interval, the paper's marked",
    "04_paired_trend.png": "the paired validation difference against the step",
    "05_attention_grid.png": "teacher vs student attention, view by view, before and after",
    "07_forest.png": "S2 - S1 per SNR and noise",
}


def results_block(profile: str = "cpu", root=REPO_ROOT) -> str:
    """docs/results.md: every table, verdict and figure of the committed study."""
    res = root / "results" / profile
    if _table(res, RESULTS.table1("voicebank")) is None:
        return glance_block(profile, root)
    lines = [
        f"Profile `{profile}`, written by `python -m sekd.study.readme` from `results/{profile}/`. "
        "The VoiceBank-DEMAND test pairs are bundled real files, a subset of the official test "
        "set: comparable between these models, not with published full-set numbers. With several "
        "seeds a cell is the mean over seeds ± the std of the seeds' means; the best of our values "
        "per column is in bold. *enhances*: beats the noisy input in PESQ, STOI and SI-SDR with "
        "positive output gain.",
        "",
        *_preconditions(res),
        "",
        "## MV-AT: Tables 1 and 3",
        *_mvat_tables(profile, res),
        *_mvat_effects(profile, res),
        *_snr_block(profile, res),
    ]
    figures = [(f, t) for f, t in FIGURES.items() if (res / "figures" / f).is_file()]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{t}](../results/{profile}/figures/{f})" for f, t in figures]
    return "\n".join(lines)


def tree_megabytes(root=REPO_ROOT) -> float:
    """The size of the committed files (what a shallow clone checks out), in MB."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True)
    names = [n for n in out.stdout.decode().split("\0") if n]
    return sum((root / n).stat().st_size for n in names if (root / n).is_file()) / 1e6


def size_line(root=REPO_ROOT) -> str:
    return (
        f"The files of a shallow clone total about {tree_megabytes(root):.0f} MB (the committed "
        "models, corpus and executed study among them); the full history is several times that."
    )


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
        cells = " | ".join(number(rtf.get((preset, n, t)), 4) for t in threads for n in runtimes)
        peak = " / ".join(number(mem.get(f"{preset}/{n}"), 0) for n in runtimes)
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
    replace_block(REPO_ROOT / "README.md", "glance", glance_block(args.profile))
    replace_block(REPO_ROOT / "README.md", "size", size_line())
    replace_block(REPO_ROOT / "README.md", "speed", student_speed_line())
    replace_block(REPO_ROOT / "docs" / "results.md", "results", results_block(args.profile))
    replace_block(REPO_ROOT / "docs" / "benchmarks.md", "deploy", deploy_block())


if __name__ == "__main__":
    main()
