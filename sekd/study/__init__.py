"""The study's machinery, by concern: `spec` (its facts: profiles, seeds, sets, run labels),
`runs` (runs trained once and reused), `scoring` (test sets, cached scores), `stats`
(intervals, the verdict rule), `paper` (the papers' numbers), `mvat` and `snr` (the two
studies' tables), `queue` (long runs in the background), `reproduce` (the notebooks,
executed), `readme` (the generated report blocks). Notebooks import from here; every number
they show comes from a file these modules wrote."""

from ..baselines import Identity, SpectralGating
from ..metrics import METRICS, QUALITY
from ..results import load_results, load_table
from .mvat import (
    MAIN_ROWS,
    METHODS,
    MVAT_ROWS,
    TEACHER_OVER_BASELINE,
    TEACHER_OVER_NOISY,
    distillation_effect,
    enhances,
    model_efficiency,
    mvat_study,
    mvat_table,
    objective_shares,
    paired_trend,
    paired_vs,
    passthrough_study,
    robustness_rows,
    seeds_of,
    student_labels,
    teacher_preconditions,
    teacher_study,
    test_sets,
)
from .paper import PAPER_GFLOPS, PAPER_MVAT_TABLE1, PAPER_ROW, SNR_PAPER_CLAIM, paper_effect
from .runs import (
    StaleRunWarning,
    check_profile,
    commit_run,
    committed_runs,
    curves,
    ensure_run,
    ensure_runs,
    finished_rows,
    load_run_model,
    open_profile,
    paths,
    restore_progress,
    run_config,
    run_dir,
    save_figure,
    save_progress,
    study_seeds,
    train_run,
    use_committed,
)
from .scoring import dns_pairs, evaluate, premix_pairs, premix_set, utterance_of, voicebank_pairs
from .snr import (
    SNR_MEASURES,
    against_noisy_by_snr,
    band_check,
    band_confirmation,
    band_preconditions,
    band_teacher_runs,
    oracle_band_check,
    scored_candidates,
    snr_effect,
    snr_study,
    snr_tables,
    snr_voicebank,
    students_vs_noisy,
)
from .spec import AT_WEIGHT_ROWS, PROFILES, SETS, SIZE_ROWS, STUDY_SEEDS, label, parse_label
from .stats import cluster_bootstrap_ci, direction, mean_ci, paired_difference_by_name, verdict
from .verdicts import (
    Budget,
    dominated_rows_sentence,
    mvat_conclusion,
    mvat_effect_sentence,
    study_budget,
    teacher_verdict,
)


def write_table(profile: str, name: str, rows: list[dict]):
    """results/<profile>/<name>.json and .csv of a table's rows (strict JSON)."""
    from ..results import write_table as _write

    return _write(paths(profile).results, name, rows)


def read_table(profile: str, name: str) -> list[dict]:
    """The rows `write_table` wrote to results/<profile>/<name>.json ([] when there is none)."""
    path = paths(profile).results / f"{name}.json"
    return load_table(path) if path.is_file() else []


__all__ = [
    "AT_WEIGHT_ROWS",
    "SIZE_ROWS",
    "finished_rows",
    "open_profile",
    "read_table",
    "robustness_rows",
    "seeds_of",
    "Budget",
    "dominated_rows_sentence",
    "mvat_conclusion",
    "mvat_effect_sentence",
    "study_budget",
    "teacher_verdict",
    "label",
    "parse_label",
    "MAIN_ROWS",
    "METHODS",
    "METRICS",
    "MVAT_ROWS",
    "PAPER_GFLOPS",
    "PAPER_MVAT_TABLE1",
    "PAPER_ROW",
    "PROFILES",
    "QUALITY",
    "SETS",
    "STUDY_SEEDS",
    "SNR_MEASURES",
    "SNR_PAPER_CLAIM",
    "TEACHER_OVER_BASELINE",
    "TEACHER_OVER_NOISY",
    "Identity",
    "SpectralGating",
    "StaleRunWarning",
    "against_noisy_by_snr",
    "band_confirmation",
    "scored_candidates",
    "band_check",
    "band_preconditions",
    "band_teacher_runs",
    "oracle_band_check",
    "check_profile",
    "cluster_bootstrap_ci",
    "commit_run",
    "committed_runs",
    "curves",
    "direction",
    "distillation_effect",
    "dns_pairs",
    "enhances",
    "ensure_run",
    "ensure_runs",
    "evaluate",
    "load_results",
    "load_run_model",
    "load_table",
    "mean_ci",
    "model_efficiency",
    "mvat_study",
    "mvat_table",
    "objective_shares",
    "paired_difference_by_name",
    "paired_trend",
    "paired_vs",
    "passthrough_study",
    "paper_effect",
    "paths",
    "premix_pairs",
    "premix_set",
    "restore_progress",
    "run_config",
    "run_dir",
    "save_figure",
    "save_progress",
    "snr_effect",
    "snr_study",
    "snr_tables",
    "snr_voicebank",
    "students_vs_noisy",
    "student_labels",
    "study_seeds",
    "teacher_preconditions",
    "teacher_study",
    "train_run",
    "test_sets",
    "use_committed",
    "utterance_of",
    "verdict",
    "voicebank_pairs",
    "write_table",
]
