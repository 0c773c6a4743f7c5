"""Tables for a reader, as Markdown: the README generator, docs/results.md and the notebooks
show result rows through these, so a column title, a number's precision and the mark of the
best value are decided once. Titles and precision come from the metric registry
(`sekd.metrics.MEASURE`), model names from `verdicts.model_title`."""

from __future__ import annotations

import re

from ..metrics import MEASURE, QUALITY
from .paper import PAPER_MVAT_TABLE1, PAPER_ROW
from .verdicts import model_title, signed

# the columns of a band teacher's precondition (`snr.band_preconditions`) a reader needs
BAND_COLUMNS = (
    *("teacher", "files", "snrs", "pesq_diff", "pesq_ci_low", "pesq_ci_high"),
    *("si_sdri_diff", "si_sdri_ci_low", "si_sdri_ci_high", "stoi_diff", "holds"),
)
# the efficiency columns of a quality table: (key, title, decimals)
EFFICIENCY = (("params", "params", 0), ("gmacs_paper", "GMACs @ 8 s", 2))


def number(v, decimals: int = 3) -> str:
    """`v` for a reader: blank when missing (None or NaN), integers with thousands separators,
    text (a number as the paper prints it) as it is."""
    if isinstance(v, str):
        return v
    if v is None or v != v:
        return ""
    if decimals == 0:
        return f"{round(v):,}"
    return f"{v:.{decimals}f}"


_NUMBER = re.compile(r"^\**[+-]?\d")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; a column of numbers right-aligned, a column of words left-aligned
    (the first column always)."""
    columns = list(zip(*rows)) or [()] * len(header)
    numeric = [
        i > 0 and all(not c or _NUMBER.match(c) for c in col) for i, col in enumerate(columns)
    ]
    rule = "|" + "".join("---:|" if right else "---|" for right in numeric)
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _best(rows: list[dict], key: str):
    """The best value of a measure over `rows` (None when the measure has no better side)."""
    better = MEASURE[key].higher_is_better
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and r[key] == r[key]]
    if better is None or not values:
        return None
    return max(values) if better else min(values)


def measure_cell(r: dict, key: str, best=None) -> str:
    """A measure's mean (bold when it is `best`) and its std over seeds where there are several."""
    nd = MEASURE[key].decimals
    text = number(r.get(key), nd)
    mark = best is not None and not isinstance(r.get(key), str)
    if text and mark and round(r[key], nd) == round(best, nd):
        text = f"**{text}**"
    sd = r.get(f"{key}_std_over_seeds")
    return text + (f" ± {number(sd, nd)}" if sd is not None and sd == sd else "")


def _paper_row(model: str) -> dict | None:
    """The paper's Table 1 row beside one of ours, in our columns, its numbers as it prints
    them (its parameters in millions)."""
    row = PAPER_MVAT_TABLE1.get(PAPER_ROW.get(model, ""))
    if row is None:
        return None
    printed = {k: f"{v:g}" for k, v in row.items()}
    return {**printed, "model": f"*paper: {PAPER_ROW[model]}*", "params": f"{row['params_m']}M"}


def quality_table(rows: list[dict], keys=QUALITY, with_paper: bool = False) -> str:
    """Result rows (`mvat_table`, `snr_tables`) as a Markdown table: the model, its seeds, its
    efficiency where known, each measure (mean ± std over seeds, the best of our rows in bold)
    and whether it enhances. With `with_paper`, the paper's row follows each row it reports
    (not counted for the best)."""
    keys = [k for k in keys if any(k in r for r in rows)]
    eff = [c for c in EFFICIENCY if any(c[0] in r for r in rows)]
    verdicts = any("enhances" in r for r in rows)
    header = ["model", "seeds", *(t for _, t, _ in eff), *(MEASURE[k].title for k in keys)]
    header += ["enhances"] if verdicts else []
    best = {k: _best(rows, k) for k in keys}
    lines = []
    for r in rows:
        shown = [(r, best)]
        paper = _paper_row(r["model"]) if with_paper else None
        if paper:
            shown.append((paper, {}))
        for row, marks in shown:
            cells = [model_title(row["model"]), str(row.get("seeds", ""))]
            cells += [number(row.get(k), nd) for k, _, nd in eff]
            cells += [measure_cell(row, k, marks.get(k)) for k in keys]
            if verdicts:
                cells.append({True: "yes", False: "**no**"}.get(row.get("enhances"), ""))
            lines.append(cells)
    return markdown_table(header, lines)


def effect_cell(e: dict) -> str:
    """A paired difference with its interval, and the paper's effect where it reports one."""
    nd = MEASURE[e["metric"]].decimals
    text = f"{signed(e['diff'], nd)} [{signed(e['ci_low'], nd)}, {signed(e['ci_high'], nd)}]"
    if e.get("paper") is not None:
        text += f" (paper {e['paper']:+.2f})"
    return text


def effect_table(effects: list[dict], group: str = "method", metrics=None) -> str:
    """Paired differences (`distillation_effect`, `snr_effect` rows) as one row per `group`
    value and one column per metric: the difference [95 % interval], the paper's beside it."""
    metrics = metrics or list(dict.fromkeys(e["metric"] for e in effects))
    cells = {(e[group], e["metric"]): e for e in effects}
    groups = list(dict.fromkeys(e[group] for e in effects))
    rows = [
        [model_title(g), *(effect_cell(cells[(g, m)]) if (g, m) in cells else "" for m in metrics)]
        for g in groups
    ]
    return markdown_table([group, *(MEASURE[m].title for m in metrics)], rows)


def _split_key(key: str):
    """(measure, the rest) of a result key such as "pesq@-20" or "si_sdri_ci_low"."""
    for name in sorted(MEASURE, key=len, reverse=True):
        if key == name or key.startswith((f"{name}@", f"{name}_")):
            return name, key[len(name) :]
    return None, key


def _key_title(key: str) -> str:
    """A column title for a result key ("pesq@-20" -> "PESQ @ -20 dB", "pesq_ci_low" ->
    "PESQ ci low"); a key of no measure with its underscores as spaces."""
    name, rest = _split_key(key)
    if name is None:
        return key.replace("_", " ")
    if rest.startswith("@"):
        return f"{MEASURE[name].title} @ {rest[1:]} dB"
    return f"{MEASURE[name].title} {rest[1:].replace('_', ' ')}".rstrip()


def _value(key: str, v, decimals: int = 3) -> str:
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        name, _ = _split_key(key)
        if name:
            return number(v, MEASURE[name].decimals)
        return f"{v:g}" if v.is_integer() else number(v, decimals)  # a count or grid value as is
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(key, x, decimals) for x in v)
    return "" if v is None else str(v)


def rows_table(rows: list[dict], columns=None, titles=None, decimals: int = 3) -> str:
    """Any result rows as a Markdown table: readable titles (`titles` overrides some), each
    number at its measure's precision (`decimals` for a number of no measure), yes / **no**
    for a check, blanks for what is missing; `columns` picks keys."""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    body = [[_value(k, r.get(k), decimals) for k in columns] for r in rows]
    if body and columns[0] in ("model", "row", "method"):
        body = [[model_title(str(r[columns[0]])), *cells[1:]] for r, cells in zip(rows, body)]
    titles = titles or {}
    return markdown_table([titles.get(k) or _key_title(k) for k in columns], body)


def tables_by_measure(rows: list[dict], index: list[str]) -> dict[str, str]:
    """Wide per-SNR rows as one table per measure, so each fits a page: {measure title: table}.
    Rows either name their measure (a "metric" column, the SNRs as "-20 dB" columns: each
    measure's rows) or hold every measure ("pesq@-20" columns: each measure's columns)."""
    out = {}
    for name, measure in MEASURE.items():
        if any(r.get("metric") == name for r in rows):
            measure_rows = [r for r in rows if r.get("metric") == name]
            snrs = [k for k in measure_rows[0] if k.endswith(" dB")]
            out[measure.title] = rows_table(
                measure_rows, [*index, *snrs], decimals=measure.decimals
            )
            continue
        snrs = [k for k in dict.fromkeys(k for r in rows for k in r) if k.startswith(f"{name}@")]
        if snrs:
            titles = {k: f"{k.split('@')[1]} dB" for k in snrs}
            out[measure.title] = rows_table(rows, [*index, *snrs], titles)
    return out
