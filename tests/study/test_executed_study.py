"""The executed CPU-scale study committed under results/cpu/notebooks/: one copy per notebook,
with the notebook's code (the injected parameters cell aside), an output wherever a cell shows
something, no error or warning, no machine's paths, and small enough to browse.

A notebook changed without re-executing its copy fails here: regenerate the copies with
`sekd reproduce --profile cpu --out results/cpu/notebooks --param committed=cpu`."""

from __future__ import annotations

import json
import re

import pytest

from sekd.data.corpus import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXECUTED = REPO_ROOT / "results" / "cpu" / "notebooks"
MAX_BYTES = 30_000_000
# a cell with one of these calls shows something, so its executed copy must have an output
SHOWS = re.compile(r"\b(display|save_figure|show|show_conclusion|print)\(")


def _code(path) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code"]


def _source(cell) -> str:
    return "".join(cell["source"])


def test_every_notebook_has_an_executed_copy_and_they_are_small_enough_to_browse():
    names = [b.name for b in NOTEBOOKS]
    assert len(names) == 9
    assert sorted(p.name for p in EXECUTED.glob("*.ipynb")) == names
    total = sum(p.stat().st_size for p in EXECUTED.glob("*.ipynb"))
    assert total < MAX_BYTES, f"{total / 1e6:.1f} MB of executed notebooks"


@pytest.mark.parametrize("book", NOTEBOOKS, ids=lambda b: b.stem)
def test_an_executed_copy_runs_the_notebooks_code_and_shows_what_it_should(book):
    executed = EXECUTED / book.name
    ran = [c for c in _code(executed) if "injected-parameters" not in c["metadata"].get("tags", [])]
    assert [_source(c) for c in ran] == [_source(c) for c in _code(book)], (
        f"{executed} does not hold {book.name}'s code: re-execute it (see this module's docstring)"
    )
    for cell in ran:
        src = _source(cell)
        assert cell["execution_count"] is not None, src[:80]
        for out in cell["outputs"]:
            assert out["output_type"] != "error", src[:80]
            text = "".join(out.get("text", ""))
            assert not (out.get("name") == "stderr" and text.strip()), f"{src[:60]!r}: {text}"
        tagged = "parameters" in cell["metadata"].get("tags", [])
        if not tagged and any(SHOWS.search(line) for line in src.splitlines()):
            assert cell["outputs"], f"{book.name}: no output from {src[:80]!r}"
    text = executed.read_text()
    assert str(REPO_ROOT) not in text and "/root/" not in text  # no machine's paths
