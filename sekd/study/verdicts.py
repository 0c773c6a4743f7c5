"""Every verdict sentence of the study, in one place: the README generator and the notebooks
call these and build no prose of their own. A verdict names the training budget it rests on
beside the paper's (`Budget`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..data.audio import SAMPLE_RATE
from .paper import PAPER_MVAT_BUDGET
from .stats import direction, verdict

# what a reader calls each Table 3 row (the paper's names where it has one)
ROW_TITLES = {
    "mvat_dual_q1": "MV-AT",
    "mvat_dual_kd": "MV-AT + KD",
    "kd_only": "KD alone",
    "single_view_at_dual": "single-view AT",
    "mvat_same_depth": "MV-AT with same-depth pairing",
    "mvat_dual_q2": "MV-AT with the l2 norm",
    "mvat_dual_mean": "MV-AT with eq. 2 as a per-frame mean",
}


@dataclass(frozen=True)
class Budget:
    """What a run of the study was trained with: its steps, batch x segment, the teacher."""

    steps: int
    batch: int
    segment: int  # samples
    teacher_params: int | None = None

    @property
    def hours(self) -> float:
        return self.steps * self.batch * self.segment / SAMPLE_RATE / 3600

    def phrase(self) -> str:
        teacher = (
            f", a {self.teacher_params / 1e6:.1f}M-parameter teacher" if self.teacher_params else ""
        )
        return (
            f"{self.steps:,} steps of {self.batch} x {self.segment / SAMPLE_RATE:g} s "
            f"(about {self.hours:.0f} h of audio){teacher}"
        )


def study_budget(profile: str, run: str = "student_baseline", teacher: str = "teacher") -> Budget:
    """The budget of a profile's students (`run`'s config) and their teacher's size."""
    from ..models import build, count_parameters
    from .runs import run_config

    cfg = run_config(profile, run)
    params = count_parameters(build(run_config(profile, teacher).model.preset))
    return Budget(cfg.train.max_steps, cfg.train.batch_size, cfg.data.segment, params)


def signed(v, nd: int = 3) -> str:
    """`v` with its sign and `nd` decimals, or n/a for a missing (null / NaN) value."""
    return "n/a" if v is None or v != v else f"{v:+.{nd}f}"


def nan_if_none(v) -> float:
    """A value read from strict JSON, where NaN was written as null."""
    return float("nan") if v is None else v


def mvat_effect_sentence(e: dict, budget: Budget) -> str:
    """One distillation effect (a `distillation_effect` row) as a sentence with its budget:
    the difference to the baseline, its interval, its seeds and, where the paper reports the
    row, how it stands against the paper's effect at the paper's budget."""
    lo, hi = nan_if_none(e["ci_low"]), nan_if_none(e["ci_high"])
    title = ROW_TITLES.get(e["method"], e["method"])
    seeds = e.get("seeds", 1)
    per_seed = (
        f"; per seed {', '.join(signed(d) for d in e['diff_per_seed'])}"
        if seeds > 1 and "diff_per_seed" in e
        else ""
    )
    sentence = (
        f"At {budget.phrase()}, {title} is {signed(e['diff'])} [{signed(lo)}, {signed(hi)}] "
        f"{e['metric'].upper()} {direction(lo, hi)} the baseline over {e['pairs']} files "
        f"({e.get('interval', 't-interval over files')}; {seeds} seed(s){per_seed})"
    )
    paper = e.get("paper")
    if not paper:
        return sentence + "."
    return (
        f"{sentence}; the paper ({PAPER_MVAT_BUDGET}) reports {paper:+.2f}: this "
        f"{verdict(lo, hi, paper)} it."
    )


TEACHER_FAILS = (
    "**The teacher does not meet every precondition: the distillation comparison below cannot "
    "test the paper's claim, whatever its sign.**"
)
TEACHER_HOLDS = "**The teacher meets every precondition.**"


def teacher_verdict(teacher_ok: bool) -> str:
    return TEACHER_HOLDS if teacher_ok else TEACHER_FAILS


def mvat_conclusion(effects: dict, teacher_ok: bool, budget: Budget, methods, sets: dict) -> str:
    """Notebook 06's conclusion: per test set, the PESQ effect of each of `methods` with its
    budget (`mvat_effect_sentence`), after the teacher's precondition when it fails."""
    parts = [] if teacher_ok else [TEACHER_FAILS]
    for set_name, rows in effects.items():
        said = [mvat_effect_sentence(e, budget) for e in rows
                if e["metric"] == "pesq" and e["method"] in methods]  # fmt: skip
        if said:
            parts.append(f"**{sets[set_name]}.** " + " ".join(said))
    return "\n\n".join(parts)


def dominated_rows_sentence(shares: list[dict], over: float = 0.9) -> str:
    """Which rows' objective is over `over` one distillation term (`objective_shares` rows)."""
    rows = sorted({r["row"] for r in shares for k, v in r.items()
                   if k.endswith("_share") and k != "supervised_share" and v > over})  # fmt: skip
    if not rows:
        return f"No row's objective is over {over:.0%} one distillation term."
    return f"Rows whose objective is over {over:.0%} one distillation term: {', '.join(rows)}."
