import json
import re
from pathlib import Path

import pytest

from sekd.study.reproduce import notebooks

ROOT = Path(__file__).resolve().parents[1]
BOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_nine_numbered_notebooks_in_order():
    assert [b.stem.split("_")[0] for b in notebooks()] == [f"{i:02d}" for i in range(9)]
    assert notebooks(["03", "05_attention_maps"]) == [
        ROOT / "notebooks" / "03_train_teacher.ipynb",
        ROOT / "notebooks" / "05_attention_maps.ipynb",
    ]
    with pytest.raises(ValueError, match="unknown notebook"):
        notebooks(["99"])


@pytest.mark.parametrize("book", BOOKS, ids=lambda b: b.stem)
def test_committed_without_outputs_and_with_one_parameters_cell(book):
    nb = json.loads(book.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    assert 'profile = "smoke"' in "".join(params[0]["source"])
    src = "".join("".join(c["source"]) for c in code)
    # an unknown profile is an error before anything runs
    assert re.search(r"check_profile\(profile\)|open_profile\(profile", src) and "from sekd" in src
    assert "nn.Module" not in src and "import torch.nn" not in src  # no model defined here
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert "".join(nb["cells"][-2]["source"]).startswith("## Conclusion")
