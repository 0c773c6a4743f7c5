"""The papers' own numbers and claims, in one place. Shown only labelled as the papers'."""

from __future__ import annotations

# MV-AT paper (Shin et al., Interspeech 2022), Table 1, Valentini test set.
_PAPER_COLUMNS = ("params_m", "gflops", "pesq", "stoi", "csig", "cbak", "covl")
PAPER_MVAT_TABLE1 = {
    name: dict(zip(_PAPER_COLUMNS, values))
    for name, values in (
        ("MANNER-B-Teacher", (24.07, 61.92, 3.21, 0.95, 4.53, 3.65, 3.91)),
        ("MANNER-S-1.5GF (Baseline)", (0.26, 1.46, 2.88, 0.94, 4.32, 3.47, 3.62)),
        ("MANNER-S-1.5GF + MV-AT", (0.26, 1.46, 2.94, 0.94, 4.34, 3.49, 3.67)),
        ("MANNER-S-1.5GF + MV-AT + KD", (0.26, 1.46, 2.95, 0.94, 4.33, 3.50, 3.66)),
    )
}
PAPER_GFLOPS = {"manner_b": 61.92, "manner_s_38gf": 38.34, "student_1p5gf": 1.46,
                "student_5p3gf": 5.32, "student_8p1gf": 8.14}  # fmt: skip

# How the paper trained its students (Section 3): what every verdict sets our budget beside.
PAPER_MVAT_TRAINING = "350 epochs at batch 4"
PAPER_MVAT_BUDGET = (
    f"{PAPER_MVAT_TRAINING}, a MANNER-B teacher of "
    f"{PAPER_MVAT_TABLE1['MANNER-B-Teacher']['params_m']}M parameters"
)

# Our Table 3 row names -> the paper's Table 1 rows they reproduce.
PAPER_ROW = {
    "teacher": "MANNER-B-Teacher",
    "student_baseline": "MANNER-S-1.5GF (Baseline)",
    "student_mvat_dual_q1": "MANNER-S-1.5GF + MV-AT",
    "student_mvat_dual_kd": "MANNER-S-1.5GF + MV-AT + KD",
}


def paper_effect(method: str, metric: str = "pesq") -> float:
    """The paper's improvement of a distilled 1.5GF student over its baseline (Table 1), e.g.
    +0.06 PESQ for MV-AT and +0.07 for MV-AT + KD."""
    row = PAPER_MVAT_TABLE1[PAPER_ROW[f"student_{method}"]]
    base = PAPER_MVAT_TABLE1[PAPER_ROW["student_baseline"]]
    return round(row[metric] - base[metric], 4)


# SNR-based teachers-student (Hao et al., ICME 2020): the claim the study tests.
SNR_PAPER_CLAIM = "S2 better than S1 at every SNR, with the largest gains at low SNRs"
# How the paper trained them (Section 3): batches of 16 x 1.024 s; the student's learning rate
# reduced twice, every 300 epochs; its Figure 4 has S2 above S1 from about epoch 200.
SNR_PAPER_BUDGET = "batches of 16 x 1.024 s for 600+ epochs, S2 above S1 from about epoch 200"
