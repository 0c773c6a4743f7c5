"""`sekd reproduce`: execute the study notebooks in order with papermill, export HTML."""

from __future__ import annotations

import ast
import json
import os
import platform
import sys
import time
from pathlib import Path

from jupyter_client.manager import KernelManager

from ..data.corpus import REPO_ROOT
from ..outputs import check_outputs, write_text
from .runs import check_profile

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def notebooks(only=None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks in order; `only` keeps names or number prefixes (e.g. 03)."""
    books = sorted(Path(notebook_dir).glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return books
    chosen = [
        b
        for b in books
        if any(b.stem == o or b.stem.split("_")[0] == o or b.name == o for o in only)
    ]
    unknown = [
        o for o in only if not any(o in (b.stem, b.stem.split("_")[0], b.name) for b in books)
    ]
    if unknown:
        raise ValueError(f"unknown notebook(s) {unknown}; known: {[b.stem for b in books]}")
    return chosen


def export_html(executed: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    html = executed.with_suffix(".html")
    write_text(html, body)
    return html


def notebook_parameters(book: Path) -> dict[str, str]:
    """{name: default, as written} of a notebook's `parameters` cell."""
    import papermill as pm

    return {name: p["default"] for name, p in pm.inspect_notebook(str(book)).items()}


def _literal(text: str):
    """A value written as JSON (true, null, [null, 1]) or as Python (False, None, [None, 1])."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", list: "a list"}


def _fits(value, kind) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def parse_parameter(name: str, text: str, default: str):
    """`--param name=text` read by the type of the parameter's declared default: a bool takes
    true / false (any case), an int a whole number, a float a number, a list a list, a string
    the text as it is; a parameter whose default is None takes any literal, or the text."""
    try:
        declared = _literal(default)
    except (ValueError, SyntaxError):
        declared = None
    if isinstance(declared, str):
        return text[1:-1] if len(text) > 1 and text[0] == text[-1] == '"' else text
    if isinstance(declared, bool) and text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        value = _literal(text)
    except (ValueError, SyntaxError):
        value = text
    kind = next((k for k in _KINDS if isinstance(declared, k)), None)
    if kind is not None and not _fits(value, kind):
        raise ValueError(f"--param {name}={text}: {name} takes {_KINDS[kind]} (default {default})")
    return value


def check_parameters(books: list[Path], parameters: dict) -> dict[Path, dict]:
    """Each notebook's share of `parameters` ({name: text}), each value read by the type of
    its declared default (`parse_parameter`); a name no selected notebook declares is an error
    that lists the names they do declare."""
    declared = {b: notebook_parameters(b) for b in books}
    known = sorted({n for names in declared.values() for n in names} - {"profile"})
    unknown = sorted(k for k in parameters if k == "profile" or k not in known)
    if unknown:
        raise ValueError(
            f"unknown notebook parameter(s) {unknown} (the profile is --profile); parameters of "
            f"the selected notebooks: {', '.join(known)}"
        )
    return {
        b: {
            k: parse_parameter(k, v, declared[b][k])
            for k, v in parameters.items()
            if k in declared[b]
        }
        for b in books
    }


def record_times(path: Path, profile: str, times, parameters: dict | None) -> dict:
    """Merge this run's notebook times into `path` (<out>/reproduce_times.json): a
    notebook run again replaces its own entry, the others' entries are kept, so a study run in
    parts (`--only 06`, later `--only 07`) keeps every notebook's last time and parameters."""
    path = Path(path)
    record = json.loads(path.read_text()) if path.is_file() else {}
    books = record.get("notebooks", {})
    # a record holding one run's times as {"seconds": {notebook: s}} becomes per-notebook entries
    for name, seconds in record.get("seconds", {}).items():
        books.setdefault(
            name,
            {
                "seconds": seconds,
                "parameters": record.get("parameters", {}),
                "omp_num_threads": record.get("omp_num_threads", ""),
            },
        )
    for name, seconds in times:
        books[name] = {
            "seconds": seconds,
            "parameters": parameters or {},
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
            "recorded": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    record = {
        "profile": profile,
        "notebooks": dict(sorted(books.items())),
        "total_seconds": sum(b["seconds"] for b in books.values()),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    write_text(path, json.dumps(record, indent=1))
    return record


class IPCKernelManager(KernelManager):
    """A kernel manager on IPC sockets: a kernel on this machine needs no TCP port, and over TCP
    ipykernel warns on every start that the traffic is unencrypted."""

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)


def _progress(name: str, book: Path):
    """A callback printing one line per executed code cell: cell i of N, seconds so far."""
    import nbformat

    cells = nbformat.read(book, as_version=4).cells
    total = sum(c.cell_type == "code" for c in cells) + 1  # papermill injects the parameters
    done, t0 = [0], time.perf_counter()

    def on_cell_executed(cell, cell_index, execute_reply):
        if cell.cell_type == "code":
            done[0] += 1
            print(f"  {name}: cell {done[0]} of {total}, {time.perf_counter() - t0:.0f} s",
                  flush=True)  # fmt: skip

    return on_cell_executed


def _execute(book: Path, target: Path, parameters: dict, notebook_dir: Path) -> None:
    import papermill as pm

    pm.execute_notebook(
        str(book),
        str(target),
        parameters=parameters,
        cwd=str(notebook_dir),
        kernel_name="python3",
        progress_bar=False,
        kernel_manager_class=IPCKernelManager,
        on_cell_executed=_progress(book.stem, book),
    )


def _relative(path: str) -> str:
    """A path under the repository as relative to it (an executed copy names no machine)."""
    p = Path(path).resolve()
    return str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else p.name


def portable_metadata(executed: Path) -> None:
    """Papermill records the absolute input and output paths in an executed notebook; keep
    them relative to the repository, so a committed copy is the same on every machine."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = _relative(meta[key])
    write_text(executed, nbformat.writes(nb) + "\n")


def reproduce(
    profile: str,
    only=None,
    out=None,
    parameters: dict | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
) -> int:
    """Execute the selected notebooks in order into `out` (reports/<profile> by default), each
    with its HTML export, and record their times in `out`/reproduce_times.json. Returns 0, or 1
    at the first failing notebook (named with its cell)."""
    import papermill as pm

    check_profile(profile)
    books = notebooks(only, notebook_dir)
    out = Path(out) if out else REPO_ROOT / "reports" / profile
    check_outputs([out / b.name for b in books], True, books, protected_folders=[notebook_dir])
    shares = check_parameters(books, parameters or {})
    out.mkdir(parents=True, exist_ok=True)
    times = []
    for book in books:
        t0 = time.perf_counter()
        print(f"[{profile}] {book.name} ...", flush=True)
        target = out / book.name
        try:
            _execute(book, target, {"profile": profile, **shares[book]}, notebook_dir)
        except pm.PapermillExecutionError as err:
            print(
                f"FAILED: {book.name}, cell {err.cell_index} (execution count {err.exec_count}): "
                f"{err.ename}: {err.evalue}\nexecuted copy with the traceback: {target}",
                file=sys.stderr,
            )
            portable_metadata(target)
            export_html(target)
            return 1
        portable_metadata(target)
        export_html(target)
        times.append((book.name, time.perf_counter() - t0))
    used = {k: v for share in shares.values() for k, v in share.items()}
    record_times(out / "reproduce_times.json", profile, times, used)
    total = sum(t for _, t in times)
    print(f"\nprofile {profile}: {len(times)} notebook(s) in {total / 60:.1f} min -> {out}")
    for name, t in times:
        print(f"  {name:<34} {t:7.1f} s")
    return 0


def parse_params(items) -> dict[str, str]:
    """KEY=VALUE pairs, the values as text: each is read by its parameter's type when the
    notebooks are known (`check_parameters`)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key] = value
    return out


def run(args) -> int:
    return reproduce(args.profile, args.only, args.out, parse_params(args.param))


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="execute the study notebooks in order (papermill)")
    p.add_argument("--profile", required=True, help="smoke | quick | cpu | paper")
    p.add_argument("--only", nargs="+", default=None, help="notebook names or numbers (03 ...)")
    p.add_argument(
        "--out", default=None, help="folder for executed notebooks and HTML (reports/<profile>)"
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="notebook parameter, e.g. retrain=true, committed=cpu or seeds=[null,1,2] "
        "(repeatable); each notebook gets the ones its parameters cell declares, and a name "
        "no selected notebook declares is an error",
    )
    p.set_defaults(func=run)
