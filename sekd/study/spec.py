"""The study's facts, each defined once: its profiles (the folders of configs/), the seeds each
profile compares runs over, the test sets, and how a run of a config and a seed is labelled.
Every module, notebook and report reads them from here."""

from __future__ import annotations

from ..config import SHARED
from ..data.corpus import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"
# The profiles, smallest first: every folder of configs/ but the shared one.
_ORDER = ("smoke", "quick", "cpu", "paper")
PROFILES = tuple(
    sorted(
        (p.name for p in CONFIGS.iterdir() if p.is_dir() and p.name != SHARED),
        key=lambda name: (_ORDER.index(name) if name in _ORDER else len(_ORDER), name),
    )
)
# The seeds each profile's study trains its compared runs with (MV-AT's three main rows, S1 and
# S2); None is the config's own seed. The notebooks' `seeds = None` means these.
STUDY_SEEDS = {"smoke": (None,), "quick": (None,), "cpu": (None, 1, 2), "paper": (None, 1, 2)}

# The MV-AT study's test sets: {name: what a reader calls it}.
SETS = {
    "voicebank": "VoiceBank-DEMAND test pairs",
    "premix": "pre-mixed set",
    "dns": "DNS no-reverb clips",
}

# The rows that test the MV-AT verdict against its confounds, shown once their runs exist: the
# AT weight (beta_at set for about 50 % and 10 % of the objective, `mvat.at_weight_for_share`)
# and the paper's 5.3GF student (its baseline first, every row compared with it).
AT_WEIGHT_ROWS = (
    "mvat_dual_q1_at50",
    "mvat_dual_kd_at50",
    "mvat_dual_q1_at10",
    "mvat_dual_kd_at10",
)
# The AT-weight rows trained with the study's seeds, like the compared rows: those whose
# one-seed PESQ effect was above the baseline with its interval above 0 (docs/history.md).
SEEDED_WEIGHT_ROWS = ("mvat_dual_kd_at50", "mvat_dual_kd_at10")
# Each 5.3GF row and the 1.5GF row it repeats at the larger size (the size question compares
# their effects); the rows in this order, the 5.3GF baseline first.
SIZE_ARMS = {
    "5p3gf_baseline": "baseline",
    "5p3gf_mvat_dual_q1": "mvat_dual_q1",
    "5p3gf_mvat_dual_kd": "mvat_dual_kd",
}
SIZE_ROWS = tuple(SIZE_ARMS)
# The budget question's longer pair (baseline first), one seed: the 1.5GF baseline and MV-AT +
# KD trained three times as long, their paired validation trend shown once both exist.
LENGTH_ROWS = ("baseline_30k", "mvat_dual_kd_30k")

_SEED = "_seed"


def label(name: str, seed: int | None = None) -> str:
    """The label of the run of config `name` with `seed` (None: the config's own seed): its
    folder under runs/ and checkpoints/, and its name in results."""
    return name if seed is None else f"{name}{_SEED}{seed}"


def parse_label(text: str) -> tuple[str, int | None]:
    """(config name, seed) of a run label: the inverse of `label`."""
    name, sep, seed = text.rpartition(_SEED)
    if sep and name and seed.isdigit():
        return name, int(seed)
    return text, None


class RESULTS:
    """The names of the result tables (results/<profile>/<name>.json and .csv): the notebooks
    write them under these names and the report generator reads them by these names."""

    efficiency = "manner_efficiency"
    speed = "manner_speed_notebook"
    teacher_checks = "teacher_preconditions"
    trend = "mvat_trend"
    at_distance = "05_at_distance"
    preconditions = "mvat_preconditions"
    table3 = "mvat_table3_voicebank"
    at_over_kd = "mvat_at_over_kd_voicebank"
    held_out_seeds = "mvat_held_out_seeds_voicebank"
    size_change = "mvat_size_change_voicebank"
    shares = "mvat_objective_shares"
    snr_preconditions = "snr_preconditions"
    snr_search = "snr_band_search"
    snr_confirmation = "snr_band_confirmation"
    snr_vs_noisy = "snr_students_vs_noisy"
    snr_stoi_by_snr = "snr_stoi_by_snr"
    snr_voicebank = "snr_voicebank"
    snr_effect = "snr_effect"

    @staticmethod
    def table1(set_name: str) -> str:
        return f"mvat_table1_{set_name}"

    @staticmethod
    def effect(set_name: str) -> str:
        return f"mvat_effect_{set_name}"

    @staticmethod
    def snr_table(name: str) -> str:  # the SNR paper's table1 .. table3 (`snr.snr_tables`)
        return f"snr_{name}"
