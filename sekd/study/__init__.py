"""The study's machinery, by concern: `runs` (profiles, runs trained once and reused),
`scoring` (test sets, cached scores), `stats` (intervals, the verdict rule), `paper` (the
papers' numbers), `mvat` and `snr` (the two studies' tables). Notebooks import from here; every
number they show comes from a file these modules wrote."""

from ..baselines import Identity, SpectralGating
from ..metrics import METRICS, QUALITY
from ..results import load_results, load_table
from .mvat import (
    MAIN_ROWS,
    METHODS,
    MVAT_ROWS,
    SETS,
    TEACHER_OVER_BASELINE,
    TEACHER_OVER_NOISY,
    distillation_effect,
    enhances,
    model_efficiency,
    mvat_study,
    mvat_table,
    paired_vs,
    passthrough_study,
    student_labels,
    teacher_preconditions,
    teacher_study,
    test_sets,
)
from .paper import PAPER_GFLOPS, PAPER_MVAT_TABLE1, PAPER_ROW, SNR_PAPER_CLAIM, paper_effect
from .runs import (
    PROFILES,
    StaleRunWarning,
    check_profile,
    commit_run,
    committed_runs,
    curves,
    ensure_run,
    load_run_model,
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
    band_preconditions,
    band_teacher_runs,
    snr_effect,
    snr_study,
    snr_tables,
    snr_voicebank,
    students_vs_noisy,
)
from .stats import cluster_bootstrap_ci, direction, mean_ci, paired_difference_by_name, verdict


def write_table(profile: str, name: str, rows: list[dict]):
    """results/<profile>/<name>.json and .csv of a table's rows (strict JSON)."""
    from ..results import write_table as _write

    return _write(paths(profile).results, name, rows)


__all__ = [
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
    "SNR_MEASURES",
    "SNR_PAPER_CLAIM",
    "TEACHER_OVER_BASELINE",
    "TEACHER_OVER_NOISY",
    "Identity",
    "SpectralGating",
    "StaleRunWarning",
    "against_noisy_by_snr",
    "band_check",
    "band_preconditions",
    "band_teacher_runs",
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
    "evaluate",
    "load_results",
    "load_run_model",
    "load_table",
    "mean_ci",
    "model_efficiency",
    "mvat_study",
    "mvat_table",
    "paired_difference_by_name",
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
