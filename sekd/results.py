"""Result files: per-file scores and tables as strict JSON (no NaN literals) and CSV.

NaN and infinities are written as JSON `null` (CSV: empty), so every file parses with any
JSON reader; `load_results` / `load_table` turn the nulls of the measure columns back into NaN.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .metrics import METRICS
from .outputs import atomic_path, write_text


def _strict(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    return x


def dumps(obj) -> str:
    """JSON with NaN / inf as null (strict: `allow_nan=False` holds)."""
    return json.dumps(_strict(obj), indent=1, allow_nan=False)


def _nan(x):
    return float("nan") if x is None else x


def load_results(path) -> dict:
    """A per-file result file ({"files": rows, "mean": ..., ...}) with nulls back to NaN."""
    res = json.loads(Path(path).read_text())
    for r in res.get("files", []):
        for k in METRICS:
            if k in r:
                r[k] = _nan(r[k])
    res["mean"] = {k: _nan(v) for k, v in res.get("mean", {}).items()}
    return res


def write_results(
    rows: list[dict], summary: dict, json_path=None, csv_path=None, overwrite: bool = True
) -> None:
    """Per-file rows (every measure, `error`) and the summary, as JSON and/or CSV (each
    written atomically; `overwrite=False` refuses an existing file)."""
    if json_path:
        write_text(json_path, dumps({"files": rows, **summary}), overwrite)
    if csv_path:
        extra = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in METRICS]
        extra = [k for k in extra if k not in ("name", "error")]
        _write_csv(csv_path, rows, ["name", *METRICS, *extra, "error"], overwrite)


def write_table(folder, name: str, rows: list[dict]) -> Path:
    """<folder>/<name>.json and .csv of a table's rows (atomically); returns the JSON path."""
    folder = Path(folder)
    write_text(folder / f"{name}.json", dumps(rows))
    _write_csv(folder / f"{name}.csv", rows, list(dict.fromkeys(k for r in rows for k in r)))
    return folder / f"{name}.json"


def load_table(path) -> list[dict]:
    rows = json.loads(Path(path).read_text())
    return [{k: (_nan(v) if k in METRICS else v) for k, v in r.items()} for r in rows]


def _write_csv(path, rows, fields, overwrite: bool = True) -> None:
    with atomic_path(path, overwrite) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(_strict(rows))
