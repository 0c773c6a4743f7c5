import json
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from sekd.complexity import complexity, count_macs
from sekd.models import build

# MV-AT paper, Table 1 "FLOPs (G)" column (the paper's numbers, thop-style MACs at 8 s).
PAPER_GMACS = {
    "manner_b": 61.92,
    "manner_s_38gf": 38.34,
    "student_1p5gf": 1.46,
    "student_5p3gf": 5.32,
    "student_8p1gf": 8.14,
}


@pytest.mark.parametrize("preset", sorted(PAPER_GMACS))
def test_paper_macs_within_half_percent(preset):
    c = complexity(preset, 128_000)
    assert abs(c.macs_paper / 1e9 / PAPER_GMACS[preset] - 1) < 0.005


def test_true_flops_match_torch_flop_counter():
    """On the literal path (explicit attention matmuls): the fast path's fused CPU attention
    kernel is an op torch.utils.flop_counter does not count, though it does the same matmuls."""
    from sekd.models.manner import set_literal

    m = set_literal(build("tiny_teacher").eval(), True)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(torch.randn(1, 1, 12_345))
    assert fc.get_total_flops() == 2 * count_macs(m, 12_345)[1]


def test_cli_json():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sekd",
            "complexity",
            "--preset",
            "student_1p5gf",
            "tiny_student",
            "--samples",
            "16000",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = json.loads(out)
    assert [r["preset"] for r in rows] == ["student_1p5gf", "tiny_student"]
    assert set(rows[0]) == {"preset", "params", "macs_paper", "flops", "samples"}
    assert rows[0]["params"] == 257_785 and rows[0]["samples"] == 16_000


def test_cli_unknown_preset_is_an_error(sekd_cli):
    r = sekd_cli("complexity", "--preset", "nope")
    assert r.returncode == 2 and "unknown preset 'nope'" in r.stderr and "manner_b" in r.stderr
