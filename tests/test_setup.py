import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip().strip('"'), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    dev = [r for r in extras["dev"] if not r.startswith("sekd[")]
    dev += [r for x in extras["dev"] if x.startswith("sekd[") for r in extras[x[5:-1]]]
    assert "sekd[deploy]" in extras["dev"]  # the tests need the deploy extra
    wanted = {_name(r): r for r in project["dependencies"] + dev}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_name(r): r for r in pip if not r.startswith("-e")}
    assert set(listed) == set(wanted)
    for name, req in wanted.items():
        if name != "torch":
            assert listed[name] == req, name
    pin = re.search(r"^TORCH := (torch==\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert pin in pip and "-e .[dev]" in pip  # the Makefile's pin, the one home of it
    # the oldest Python pyproject admits is the one environment.yml installs and the tests run on
    # (sekd reads its configs with tomllib, new in 3.11)
    floor = project["requires-python"].removeprefix(">=")
    assert f"python={floor}" in env["dependencies"]
    assert f"Python >= {floor}" in (ROOT / "README.md").read_text()


def test_cli_lists_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "sekd", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for cmd in ("complexity", "enhance"):
        assert cmd in out


def test_ci_runs_make_test_only():
    lines = [
        ln
        for ln in (ROOT / ".ci" / "run").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[-1].strip() == "make test"
