"""sekd.study.spec: the study's facts, each defined once."""

from pathlib import Path

import pytest

from sekd.study import spec

ROOT = Path(__file__).resolve().parents[2]


def test_profiles_are_the_config_folders_smallest_first():
    folders = {p.name for p in (ROOT / "configs").iterdir() if p.is_dir()} - {"shared"}
    assert set(spec.PROFILES) == folders
    assert spec.PROFILES[:4] == ("smoke", "quick", "cpu", "paper")
    assert set(spec.STUDY_SEEDS) == set(spec.PROFILES)


@pytest.mark.parametrize(
    "name, seed, text",
    [
        ("student_baseline", None, "student_baseline"),
        ("student_baseline", 1, "student_baseline_seed1"),
        ("snr_s2", 12, "snr_s2_seed12"),
        ("student_5p3gf_mvat_dual_kd", 2, "student_5p3gf_mvat_dual_kd_seed2"),
    ],
)
def test_label_and_parse_label_are_inverse(name, seed, text):
    assert spec.label(name, seed) == text
    assert spec.parse_label(text) == (name, seed)


@pytest.mark.parametrize("text", ["noisy", "teacher", "x_seed", "_seed1", "a_seedling"])
def test_a_label_without_a_seed_parses_as_itself(text):
    assert spec.parse_label(text) == (text, None)


def test_no_module_builds_a_seed_label_of_its_own():
    """The label format lives in spec alone (a second home would drift)."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "sekd").rglob("*.py")
        if p.name != "spec.py" and ("_seed{" in p.read_text() or '"_seed"' in p.read_text())
    ]
    assert offenders == []


def test_result_tables_are_named_once_in_the_spec():
    """Notebooks write and the report generator reads result tables by `spec.RESULTS` names:
    no name is spelled out in a notebook or in the generator."""
    import json
    import re

    from sekd.data.corpus import REPO_ROOT
    from sekd.study.spec import RESULTS

    literal = re.compile(r"(write|read)_table\(\s*profile,\s*f?[\"']")
    for book in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        code = "".join("".join(c["source"]) for c in json.loads(book.read_text())["cells"])
        assert not literal.search(code), book.name
    readme = (REPO_ROOT / "sekd" / "study" / "readme.py").read_text()
    names = [v for k, v in vars(RESULTS).items() if isinstance(v, str) and not k.startswith("_")]
    assert not [n for n in names if f'"{n}' in readme or f"/{n}." in readme]
    assert (
        RESULTS.table1("dns") == "mvat_table1_dns" and RESULTS.snr_table("table3") == "snr_table3"
    )
