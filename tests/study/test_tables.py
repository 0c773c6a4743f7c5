"""sekd.study.tables: what a reader sees of a result row, decided once."""

from sekd.metrics import MEASURE, QUALITY
from sekd.study.tables import effect_table, number, quality_table, rows_table


def _lines(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]


def test_numbers_are_blank_when_missing_and_integers_have_separators():
    assert (number(None), number(float("nan")), number(2_827_171.0, 0)) == ("", "", "2,827,171")
    assert (number(1.23456), number(1.5, 2), number("0.26M")) == ("1.235", "1.50", "0.26M")


def test_a_quality_table_titles_from_the_registry_marks_the_best_and_sets_the_paper_beside():
    metrics = {k: 1.0 for k in QUALITY}
    rows = [
        {"model": "noisy", "seeds": 1, **metrics, "pesq": 1.9, "si_sdri": float("nan"),
         "enhances": None},
        {"model": "teacher", "seeds": 1, "params": 2827171, "gmacs_paper": 7.964, **metrics,
         "pesq": 2.5, "enhances": True},
        {"model": "student_baseline", "seeds": 3, "params": 257785, **metrics, "pesq": 2.0,
         "pesq_std_over_seeds": 0.0421, "enhances": False},
    ]  # fmt: skip
    header, rule, *body = _lines(quality_table(rows, with_paper=True))
    assert header == ["model", "seeds", "params", "GMACs @ 8 s",
                      *(MEASURE[k].title for k in QUALITY), "enhances"]  # fmt: skip
    # numbers right-aligned, words (the model, yes / no) left
    assert rule[0] == rule[-1] == "---" and set(rule[1:-1]) == {"---:"}
    titles = [cells[0] for cells in body]
    assert titles == ["noisy input", "teacher", "*paper: MANNER-B-Teacher*", "baseline student",
                      "*paper: MANNER-S-1.5GF (Baseline)*"]  # fmt: skip
    noisy, teacher, paper_teacher, baseline, _ = body
    pesq, si_sdri = header.index("PESQ"), header.index("SI-SDRi (dB)")
    assert teacher[pesq] == "**2.500**" and noisy[pesq] == "1.900"  # the best of ours in bold
    assert paper_teacher[pesq] == "3.21" and paper_teacher[2] == "24.07M"  # as the paper prints
    assert baseline[pesq] == "2.000 ± 0.042" and baseline[2] == "257,785"
    assert noisy[si_sdri] == "" and noisy[-1] == "" and baseline[-1] == "**no**"
    assert teacher[3] == "7.96" and teacher[-1] == "yes"
    assert "gain" in header and teacher[header.index("gain")] == "1.000"  # no better side: no mark


def test_an_effect_table_has_a_row_per_method_and_the_papers_effect_beside_ours():
    effects = [
        {"method": "mvat_dual_q1", "metric": m, "diff": d, "ci_low": d - 0.1, "ci_high": d + 0.1,
         **({"paper": 0.06} if m == "pesq" else {})}
        for m, d in (("pesq", -0.086), ("si_sdri", -1.36))
    ] + [{"method": "kd_only", "metric": "pesq", "diff": 0.056, "ci_low": 0.025,
          "ci_high": 0.087}]  # fmt: skip
    header, _, q1, kd = _lines(effect_table(effects))
    assert header == ["method", "PESQ", "SI-SDRi (dB)"]
    assert q1 == ["MV-AT", "-0.086 [-0.186, +0.014] (paper +0.06)", "-1.36 [-1.46, -1.26]"]
    assert kd == ["KD alone", "+0.056 [+0.025, +0.087]", ""]


def test_any_rows_get_readable_titles_and_each_number_its_measures_precision():
    row = {"model": "student_kd_only", "pesq@-20": 1.23456, "si_sdri_ci_low": 2.345}
    rows = [{**row, "holds": False, "snrs": [-20.0, -15.0], "share": 0.0060123, "margin": 0.3}]
    header, _, cells = _lines(rows_table(rows))
    assert header == [
        "model", "PESQ @ -20 dB", "SI-SDRi (dB) ci low", "holds", "snrs", "share", "margin"
    ]  # fmt: skip
    assert cells == ["KD alone", "1.235", "2.35", "**no**", "-20, -15", "0.006", "0.300"]


def test_wide_per_snr_rows_become_one_table_per_measure():
    from sekd.study.tables import tables_by_measure

    every = [{"noise": "babble", "model": "Noisy", "pesq@-20": 1.0851, "stoi@-20": 0.3346,
              "stoi@+20": 0.9447}]  # fmt: skip
    by = tables_by_measure(every, ["noise", "model"])
    assert list(by) == ["PESQ", "STOI"]
    assert by["STOI"].splitlines()[0] == "| noise | model | -20 dB | +20 dB |"
    assert by["STOI"].splitlines()[2] == "| babble | Noisy | 0.335 | 0.945 |"
    named = [{"metric": "si_sdri", "model": "T1", "seeds": 1, "-20 dB": 1.234, "+0 dB": None}]
    (table,) = tables_by_measure(named, ["model", "seeds"]).values()
    assert table.splitlines()[2] == "| T1 | 1 | 1.23 |  |"  # SI-SDRi's two decimals
