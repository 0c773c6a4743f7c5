"""Write the README's results block from the files under results/ (numbers are never typed).

`python -m sekd.readme [--profile cpu]` replaces the text between the markers
`<!-- results:start -->` and `<!-- results:end -->` in README.md.
"""

from __future__ import annotations

import argparse
import json

from .data.corpus import REPO_ROOT
from .metrics import QUALITY

START, END = "<!-- results:start -->", "<!-- results:end -->"


HEADER = [
    "| model | seeds | params | GMACs @ 8 s | PESQ | STOI | CSIG | CBAK | COVL |",
    "|---|---|---|---|---|---|---|---|---|",
]
SETS = (("voicebank", "VoiceBank-DEMAND pairs"), ("premix", "pre-mixed set"))


def _fmt(v, nd=3):
    return "n/a" if v is None or v != v else f"{v:.{nd}f}"


def _cell(r: dict, k: str) -> str:
    sd = r.get(f"{k}_std_over_seeds")
    return _fmt(r[k]) + (f" ± {_fmt(sd)}" if sd is not None else "")


def _row(r: dict) -> str:
    gmacs = _fmt(r.get("gmacs_paper"), 2) if "gmacs_paper" in r else ""
    cells = " | ".join(_cell(r, k) for k in QUALITY)
    return f"| {r['model']} | {r['seeds']} | {r.get('params', '')} | {gmacs} | {cells} |"


def snr_block(profile: str, res) -> list[str]:
    """The SNR teachers-student study: noisy / S1 / S2 on the test grid, and S2 - S1 by file."""
    t3, eff = res / "snr_table3.json", res / "snr_effect.json"
    if not (t3.is_file() and eff.is_file()):
        return []
    lines = [
        "",
        "**SNR-based teachers-student** (U-Net `waveunet_cpu`; four teachers, S1 without and S2",
        f"with SNR-routed teachers), test grid of `results/{profile}/snr_table3.json`:",
        "",
        "| model | PESQ | STOI | files | failed |",
        "|---|---|---|---|---|",
    ]
    for r in json.loads(t3.read_text()):
        lines.append(
            f"| {r['model']} | {_fmt(r['pesq'])} | {_fmt(r['stoi'])} | {r['files']} | "
            f"{r['failed']} |"
        )
    lines.append("")
    for e in json.loads(eff.read_text()):
        if e["snr"] == "all":
            nd = 3 if e["metric"] == "pesq" else 4
            sign = (
                "above" if e["ci_low"] > 0 else ("below" if e["ci_high"] < 0 else "not apart from")
            )
            lines.append(
                f"- S2 - S1, {e['metric'].upper()}: {e['diff']:+.{nd}f} [{e['ci_low']:+.{nd}f}, "
                f"{e['ci_high']:+.{nd}f}] over {e['pairs']} files (S2 {sign} S1; the paper "
                "reports S2 better than S1 at every SNR)"
            )
    lines.append(
        f"- per SNR: `results/{profile}/snr_effect.json`. The test files share utterances and "
        "noise recordings, so the intervals, which treat files as independent, are optimistic."
    )
    return lines


def results_block(profile: str = "cpu", root=REPO_ROOT) -> str:
    res = root / "results" / profile
    t1 = res / "mvat_table1_voicebank.json"
    if not t1.is_file():
        return (
            f"No `{profile}` results are committed yet: run `sekd reproduce --profile "
            f"{profile}` (see issue notes for what has been trained)."
        )
    rows = json.loads(t1.read_text())
    lines = [
        f"Profile `{profile}`, bundled VoiceBank-DEMAND test pairs (real files, a 31-file subset:",
        "comparable between these models, not with published full-set numbers). Written by",
        f"`python -m sekd.readme` from `results/{profile}/mvat_table1_voicebank.json`.",
        "",
        *HEADER,
    ]
    lines += [_row(r) for r in rows]
    lines.append("")
    lines.append("With several seeds, a cell is the mean over seeds ± the std of the seeds' means.")
    extra = (
        ("mvat_table1_premix", "The same models on the pre-mixed test set (corpus test speech x "
         "the training noises' test parts)"),
        ("mvat_table3_voicebank", "Table 3 rows (ablations), VoiceBank-DEMAND pairs"),
    )  # fmt: skip
    for name, title in extra:
        f = res / f"{name}.json"
        if f.is_file():
            lines += ["", f"{title}, from `results/{profile}/{name}.json`:", "", *HEADER]
            lines += [_row(r) for r in json.loads(f.read_text())]
    paper = {"mvat_dual_q1": 0.06, "mvat_dual_kd": 0.07}  # the paper's Table 1, 1.5GF
    for set_name, title in SETS:
        eff = res / f"mvat_effect_{set_name}.json"
        if not eff.is_file():
            continue
        lines += [
            "",
            f"Distillation effect on PESQ, {title}, paired by file (mean difference to the "
            f"baseline, 95 % CI; `results/{profile}/mvat_effect_{set_name}.json`):",
            "",
        ]
        for e in json.loads(eff.read_text()):
            if e["metric"] == "pesq":
                verdict = (
                    "agrees with"
                    if e["ci_low"] > 0
                    else ("contradicts" if e["ci_high"] < 0 else "does not confirm")
                )
                seeds = e.get("seeds", 1)
                per_seed = (
                    f" (per seed: {', '.join(f'{d:+.3f}' for d in e['diff_per_seed'])})"
                    if seeds > 1
                    else ""
                )
                lines.append(
                    f"- {e['method']}: {e['diff']:+.3f} [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}] "
                    f"over {e['pairs']} files, each averaged over {seeds} seed(s){per_seed}; "
                    f"this {verdict} the paper's {paper.get(e['method'], float('nan')):+.2f}"
                )
    for set_name, title in SETS:
        f = res / f"mvat_table1_{set_name}.json"
        by = {r["model"]: r for r in json.loads(f.read_text())} if f.is_file() else {}
        if {"noisy", "teacher", "student_baseline"} <= set(by):
            t, n, b = by["teacher"]["pesq"], by["noisy"]["pesq"], by["student_baseline"]["pesq"]
            lines += [
                "",
                f"On the {title} the CPU-scale teacher scores PESQ {t:.3f}, "
                f"{'below' if t < n else 'above'} the noisy input ({n:.3f}) and "
                f"{'below' if t < b else 'above'} the baseline student ({b:.3f})"
                + (
                    ": a teacher weaker than its student, the opposite of what distillation "
                    "assumes."
                    if t < b
                    else "."
                ),
            ]
    lines += snr_block(profile, res)
    fig = res / "figures" / "05_maps_after.png"
    if fig.is_file():
        lines += [
            "",
            f"![teacher vs student attention maps after MV-AT]({fig.relative_to(root)})",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu")
    args = ap.parse_args()
    readme = REPO_ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"README.md lacks the markers {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{results_block(args.profile)}\n{END}{tail}")


if __name__ == "__main__":
    main()
