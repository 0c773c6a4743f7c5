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
