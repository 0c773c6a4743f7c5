"""sekd.study.reproduce."""

import json
import re

import nbformat
import pytest

from sekd.study.reproduce import parse_params, record_times, reproduce


def test_cli_takes_params():
    from sekd.cli import build_parser

    args = build_parser().parse_args(
        ["reproduce", "--profile", "smoke", "--param", "retrain=true", "--param", "seeds=[0]"]
    )
    assert parse_params(args.param) == {"retrain": "true", "seeds": "[0]"}


def test_unknown_profile_is_a_clear_error(sekd_cli):
    r = sekd_cli("reproduce", "--profile", "huge")
    assert r.returncode == 2 and "unknown profile 'huge'" in r.stderr and "smoke" in r.stderr


def _book(path, code):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('profile = "smoke"')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# t"),
        p,
        *[nbformat.v4.new_code_cell(c) for c in code],
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def test_reproduce_stops_at_first_failure_naming_notebook_and_cell(tmp_path, capsys):
    books = tmp_path / "books"
    books.mkdir()
    _book(books / "00_ok.ipynb", ["x = 1", "print(profile)"])
    _book(books / "01_broken.ipynb", ["y = 2", "raise ValueError('boom')"])
    _book(books / "02_never.ipynb", ["z = 3"])
    rc = reproduce("quick", out=tmp_path / "out", notebook_dir=books)
    err = capsys.readouterr().err
    assert rc == 1
    assert "01_broken.ipynb" in err and "ValueError: boom" in err and "cell" in err
    done = nbformat.read(tmp_path / "out" / "00_ok.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in done.cells for o in c.get("outputs", []))
    assert "quick" in printed  # the profile was injected
    assert (tmp_path / "out" / "00_ok.html").is_file()
    assert not (tmp_path / "out" / "02_never.ipynb").exists()


def test_reproduce_shows_progress_per_cell_without_the_kernels_tcp_warning(tmp_path, capfd):
    books = tmp_path / "books"
    books.mkdir()
    _book(books / "00_a.ipynb", ["x = 1", "y = 2"])
    assert reproduce("smoke", out=tmp_path / "out", notebook_dir=books) == 0
    out, err = capfd.readouterr()
    # the parameters cell, the injected one and the two others, in order
    lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("00_a: cell")]
    assert [ln.split(",")[0] for ln in lines] == [f"00_a: cell {i} of 4" for i in range(1, 5)]
    assert "without encryption" not in out + err
    times = json.loads((tmp_path / "out" / "reproduce_times.json").read_text())
    assert list(times["notebooks"]) == ["00_a.ipynb"]


def test_record_times_keeps_other_notebooks_and_replaces_a_rerun(tmp_path, monkeypatch):
    path = tmp_path / "reproduce_times.json"
    path.write_text(
        json.dumps({"profile": "cpu", "parameters": {}, "seconds": {"03_t.ipynb": 700.0}})
    )
    record_times(path, "cpu", [("06_m.ipynb", 40.0)], {"seeds": [None, 1]})
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rec = record_times(path, "cpu", [("06_m.ipynb", 30.0), ("07_s.ipynb", 5.0)], None)
    assert rec == json.loads(path.read_text())
    assert list(rec["notebooks"]) == ["03_t.ipynb", "06_m.ipynb", "07_s.ipynb"]
    assert rec["notebooks"]["03_t.ipynb"]["seconds"] == 700.0  # kept from the old format
    assert rec["notebooks"]["06_m.ipynb"]["seconds"] == 30.0  # the rerun replaced it
    assert rec["notebooks"]["06_m.ipynb"]["parameters"] == {}
    assert rec["notebooks"]["06_m.ipynb"]["omp_num_threads"] == "1"
    assert rec["total_seconds"] == 735.0


def test_param_parsing():
    assert parse_params(["retrain=true", "seeds=[0, 1]", "name=a=b"]) == {
        "retrain": "true",
        "seeds": "[0, 1]",
        "name": "a=b",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_params(["retrain"])


@pytest.mark.parametrize(
    "text, default, value",
    [
        ("False", "False", False),  # the string "False" would be truthy
        ("false", "False", False),
        ("TRUE", "False", True),
        ("3", "0", 3),
        ("2", "5.0", 2),
        ("-2.5", "5.0", -2.5),
        ("[null, 1, 2]", "None", [None, 1, 2]),
        ("[None, 1]", "None", [None, 1]),
        ("cpu", "None", "cpu"),
        ("cpu", '"smoke"', "cpu"),
        ("123", '"p232_005"', "123"),  # a string parameter keeps the text
        ('"x y"', '"a"', "x y"),
        ('["a"]', '["baseline"]', ["a"]),
    ],
)
def test_parameters_are_read_by_their_declared_type(text, default, value):
    from sekd.study.reproduce import parse_parameter

    got = parse_parameter("p", text, default)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "text, default", [("no", "False"), ("1", "False"), ("1.5", "0"), ("x", "5.0"), ("3", "[1]")]
)
def test_a_parameter_of_the_wrong_type_is_an_error_naming_it(text, default):
    from sekd.study.reproduce import parse_parameter

    with pytest.raises(ValueError, match=rf"--param p={re.escape(text)}: p takes"):
        parse_parameter("p", text, default)


def test_reproduce_refuses_to_write_over_the_notebooks(tmp_path):
    books = tmp_path / "nb"
    books.mkdir()
    (books / "00_a.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="reads from"):
        reproduce("smoke", out=books, notebook_dir=books)
    with pytest.raises(ValueError, match="reads from"):
        reproduce("smoke", out=books / "sub", notebook_dir=books)
    assert (books / "00_a.ipynb").read_text() == "{}"
