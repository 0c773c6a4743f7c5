"""Every verdict sentence of the study, in one place: the README generator and the notebooks
call these and build no prose of their own. A verdict names the training budget it rests on
beside the paper's (`Budget`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..data.audio import SAMPLE_RATE
from ..metrics import MEASURE
from .paper import PAPER_MVAT_BUDGET, PAPER_MVAT_TRAINING, SNR_PAPER_BUDGET, SNR_PAPER_CLAIM
from .stats import DIRECTIONS, direction, verdict

# what a reader calls each Table 3 row (the paper's names where it has one)
ROW_TITLES = {
    "mvat_dual_q1": "MV-AT",
    "mvat_dual_kd": "MV-AT + KD",
    "kd_only": "KD alone",
    "single_view_at_dual": "single-view AT",
    "mvat_same_depth": "MV-AT with same-depth pairing",
    "mvat_dual_q2": "MV-AT with the l2 norm",
    "mvat_dual_mean": "MV-AT with eq. 2 as a per-frame mean",
    "mvat_dual_q1_at50": "MV-AT, AT weighted to ~50 % of the objective",
    "mvat_dual_kd_at50": "MV-AT + KD, AT weighted to ~50 %",
    "mvat_dual_q1_at10": "MV-AT, AT weighted to ~10 % of the objective",
    "mvat_dual_kd_at10": "MV-AT + KD, AT weighted to ~10 %",
    "5p3gf_baseline": "5.3GF baseline student",
    "5p3gf_mvat_dual_q1": "5.3GF MV-AT",
    "5p3gf_mvat_dual_kd": "5.3GF MV-AT + KD",
    "baseline_30k": "baseline student, 30,000 steps",
    "mvat_dual_kd_30k": "MV-AT + KD, 30,000 steps",
}
# what a reader calls the other models of the tables
MODEL_TITLES = {
    "noisy": "noisy input",
    "spectral_gating": "spectral gating",
    "teacher": "teacher",
    "student_baseline": "baseline student",
}


def model_title(name: str) -> str:
    """A model's or a Table 3 row's name for a reader (the name itself when it has none)."""
    return MODEL_TITLES.get(name) or ROW_TITLES.get(name.removeprefix("student_"), name)


@dataclass(frozen=True)
class Budget:
    """What a run of the study was trained with: its steps, batch x segment, the teacher."""

    steps: int
    batch: int
    segment: int  # samples
    teacher_params: int | None = None
    teachers: int = 1  # how many teachers supervise (the SNR study's band teachers)

    @property
    def hours(self) -> float:
        return self.steps * self.batch * self.segment / SAMPLE_RATE / 3600

    def phrase(self) -> str:
        return f"{self.training()}{self.teacher_phrase()}"

    def training(self) -> str:
        return (
            f"{self.steps:,} steps of {self.batch} x {self.segment / SAMPLE_RATE:g} s "
            f"(about {self.hours:.0f} h of audio)"
        )

    def teacher_phrase(self) -> str:
        if not self.teacher_params:
            return ""
        size = f"{self.teacher_params / 1e6:.1f}M-parameter"
        if self.teachers == 1:
            return f", a {size} teacher"
        return f", {self.teachers} teachers of up to {self.teacher_params / 1e6:.1f}M parameters"


def _parameters(profile: str, run: str) -> int:
    """The parameter count of a run's model (its config's preset)."""
    from ..models import build, count_parameters
    from .runs import run_config

    return count_parameters(build(run_config(profile, run).model.preset))


def study_budget(profile: str, run: str = "student_baseline", teacher: str = "teacher") -> Budget:
    """The budget of a profile's students (`run`'s config) and their teacher's size."""
    from .runs import run_config

    cfg = run_config(profile, run)
    params = _parameters(profile, teacher)
    return Budget(cfg.train.max_steps, cfg.train.batch_size, cfg.data.segment, params)


def snr_budget(profile: str) -> Budget:
    """The budget of the SNR study's students (S2's config) and its band teachers' sizes."""
    from .runs import run_config
    from .snr import band_teacher_runs

    cfg = run_config(profile, "snr_s2")
    teachers = band_teacher_runs(profile)
    params = max(_parameters(profile, t) for t in teachers)
    return Budget(
        cfg.train.max_steps, cfg.train.batch_size, cfg.data.segment, params, len(teachers)
    )


def signed(v, nd: int = 3) -> str:
    """`v` with its sign and `nd` decimals, or n/a for a missing (null / NaN) value."""
    return "n/a" if v is None or v != v else f"{v:+.{nd}f}"


def nan_if_none(v) -> float:
    """A value read from strict JSON, where NaN was written as null."""
    return float("nan") if v is None else v


def seeds_phrase(n: int) -> str:
    """ "1 seed", "3 seeds"."""
    return f"{n} seed" + ("" if n == 1 else "s")


def _per_seed(e: dict, nd: int) -> str:
    """ "; per seed d1, d2, ..." of an effect row over several seeds, else nothing."""
    if e.get("seeds", 1) > 1 and "diff_per_seed" in e:
        return f"; per seed {', '.join(signed(d, nd) for d in e['diff_per_seed'])}"
    return ""


def mvat_effect_sentence(e: dict, budget: Budget | None = None) -> str:
    """One distillation effect (a `distillation_effect` row) as a sentence: the difference to
    the baseline, its interval, its seeds and, where the paper reports the row, how it stands
    against the paper's effect; with `budget`, both budgets are named in the sentence (without,
    a `budget_sentence` before it names them)."""
    lo, hi = nan_if_none(e["ci_low"]), nan_if_none(e["ci_high"])
    title = model_title(e["method"])
    baseline = model_title(e.get("baseline", "baseline"))
    seeds = e.get("seeds", 1)
    nd = MEASURE[e["metric"]].decimals
    per_seed = _per_seed(e, nd)
    sentence = (
        f"{title} is {signed(e['diff'], nd)} [{signed(lo, nd)}, {signed(hi, nd)}] "
        f"{MEASURE[e['metric']].title} {direction(lo, hi)} the {baseline} over {e['pairs']} files "
        f"({e.get('interval', 't-interval over files')}; {seeds_phrase(seeds)}{per_seed})"
    )
    if budget is not None:
        sentence = f"At {budget.phrase()}, {sentence}"
    paper = e.get("paper")
    if not paper:
        return sentence + "."
    at_its_budget = f" ({PAPER_MVAT_BUDGET})" if budget is not None else ""
    judged = verdict(lo, hi, paper)
    return f"{sentence}; the paper{at_its_budget} reports {paper:+.2f}: this {judged} it."


def budget_sentence(budget: Budget, paper_budget: str = PAPER_MVAT_BUDGET) -> str:
    """The budget the verdicts after it rest on, beside the paper's."""
    return f"Every student here was trained for {budget.phrase()}; the paper's, for {paper_budget}."


TEACHER_FAILS = (
    "**The teacher does not meet every precondition: the distillation comparison below cannot "
    "test the paper's claim, whatever its sign.**"
)
TEACHER_HOLDS = "**The teacher meets every precondition.**"


def teacher_verdict(teacher_ok: bool) -> str:
    return TEACHER_HOLDS if teacher_ok else TEACHER_FAILS


def mvat_conclusion(effects: dict, teacher_ok: bool, budget: Budget, methods, sets: dict) -> str:
    """Notebook 06's conclusion: the budget beside the paper's, then per test set the PESQ
    effect of each of `methods` (`mvat_effect_sentence`), after the teacher's precondition
    when it fails."""
    parts = [] if teacher_ok else [TEACHER_FAILS]
    parts.append(budget_sentence(budget))
    for set_name, rows in effects.items():
        said = [mvat_effect_sentence(e) for e in rows
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


# The SNR teachers-student study (Hao et al.): notebook 07 and the README say these.


def band_preconditions_sentence(bands: list[dict]) -> str:
    """Whether every band teacher beats the noisy input in its band (`band_preconditions`)."""
    missing = [b["teacher"] for b in bands if not b["holds"]]
    if not missing:
        return (
            "**Every band teacher beats the noisy input in its band (PESQ and SI-SDR "
            "improvement, cluster-bootstrap interval above 0).**"
        )
    return (
        f"**{', '.join(missing)} does not beat the noisy input in its band**: S2 is then "
        "supervised by a teacher that degrades its band, and S2 - S1 does not test the paper's "
        "idea there."
    )


def band_search_summary(bands: list[dict], search: list[dict]) -> list[dict]:
    """Per band: the kept teacher, how many sets of weights were band-checked on the band's
    test files while it was chosen (`snr.scored_candidates` rows), and which of them passed."""
    out = []
    for band, kept in enumerate(bands):
        scored = [c for c in search if c["band"] == band]
        passed = [c["model"] for c in scored if c["holds"]]
        out.append({"band": band + 1, "teacher": kept["teacher"], "scored": len(scored),
                    "passed": passed})  # fmt: skip
    return out


def band_search_sentence(bands: list[dict], search: list[dict], confirmed: list[dict]) -> str:
    """How many candidates each band's teacher was chosen among, and whether every kept teacher
    also passes on the confirmation grid (`band_confirmation`), which played no part in it."""
    tried = "; ".join(
        f"band {b['band']} (kept: {b['teacher']}): {b['scored']} scored, {len(b['passed'])} passed"
        for b in band_search_summary(bands, search)
        if b["scored"]
    )
    unconfirmed = [c["teacher"] for c in confirmed if not c["holds"]]
    confirmation = (
        "**Every band teacher also beats the noisy input on the confirmation grid.**"
        if not unconfirmed
        else f"**{', '.join(unconfirmed)} does not beat the noisy input on the confirmation "
        "grid**: its pass on the test grid is not confirmed on files that played no part in "
        "choosing it."
    )
    searched = f"Weights band-checked on the test files before a teacher was kept: {tried}. "
    return (searched if tried else "No band check was run. ") + confirmation


def students_vs_noisy_sentence(rows: list[dict]) -> str:
    """Which student runs lower STOI below the noisy input and which do not enhance
    (`students_vs_noisy` rows)."""
    lowering = [r["model"] for r in rows if r["lowers_stoi"]]
    not_enhancing = [r["model"] for r in rows if not r["enhances"]]
    return (
        f"**{', '.join(lowering)} lower(s) STOI below the noisy input.** "
        if lowering
        else "No student lowers STOI below the noisy input. "
    ) + (
        f"**{', '.join(not_enhancing)} do(es) not enhance by the project's rule.**"
        if not_enhancing
        else "Every student run enhances by the project's rule."
    )


def stoi_losses(by_snr: list[dict]) -> dict[str, list[str]]:
    """{model: the test SNRs (with its output gain there) where its STOI is below the noisy
    input's with the interval below 0} of `against_noisy_by_snr` rows."""
    lost: dict[str, list[str]] = {}
    for r in by_snr:
        lost.setdefault(r["model"], [])
        if direction(nan_if_none(r["ci_low"]), nan_if_none(r["ci_high"])) == "below":
            lost[r["model"]].append(f"{r['snr']:+g} dB (gain {r['gain']:.2f})")
    return lost


def stoi_loss_sentence(by_snr: list[dict]) -> str:
    return " ".join(
        f"**{m}** is below the input in STOI at {', '.join(v)}."
        if v
        else f"**{m}** is not below the input in STOI at any test SNR."
        for m, v in stoi_losses(by_snr).items()
    )


def snr_effect_sentence(e: dict) -> str:
    """S2 - S1 on one metric (a `snr_effect` row) with its interval and seeds."""
    nd = MEASURE[e["metric"]].decimals
    seeds = e.get("seeds", 1)
    per_seed = _per_seed(e, nd)
    side = direction(nan_if_none(e["ci_low"]), nan_if_none(e["ci_high"]))
    return (
        f"S2 - S1 = {signed(e['diff'], nd)} [{signed(e['ci_low'], nd)}, "
        f"{signed(e['ci_high'], nd)}] {MEASURE[e['metric']].title} over {e['pairs']} files, "
        f"{seeds_phrase(seeds)}{per_seed} (S2 {side} S1)"
    )


def snr_conclusion(effect: list[dict], bands, confirmed, vs_noisy, budget: Budget) -> str:
    """Notebook 07's conclusion: the teachers' and students' caveats first, then S2 - S1 over
    all files on each metric, and at how many test SNRs S2 is above S1 in PESQ, with budgets."""
    missing = [b["teacher"] for b in bands if not b["holds"]]
    unconfirmed = [c["teacher"] for c in confirmed if not c["holds"]]
    lowering = [r["model"] for r in vs_noisy if r["lowers_stoi"]]
    caveats = [
        f"{title}: {', '.join(names)}."
        for title, names in (
            ("Teachers that miss their precondition", missing),
            ("Teachers not confirmed on the confirmation grid", unconfirmed),
            ("Students that lower STOI below the input", lowering),
        )
        if names
    ]
    overall = [e for e in effect if e["group"] == "all"]
    per_snr = [e for e in effect if e["metric"] == "pesq" and e["group"].endswith("dB")]
    above = [e["group"] for e in per_snr if e["direction"] == "above"]
    lines = [" ".join(caveats), budget_sentence(budget, SNR_PAPER_BUDGET)]
    lines += [f"- {snr_effect_sentence(e)}." for e in overall]
    lines.append(
        f"- S2 is above S1 in PESQ at {len(above)} of {len(per_snr)} test SNRs "
        f"({', '.join(above) or 'none'}); the paper reports {SNR_PAPER_CLAIM}."
    )
    return "\n".join(line for line in lines if line)


def _with_spread(r: dict, nd: int) -> str:
    """A paired difference and, over several seeds, their std (± over seeds)."""
    sd = nan_if_none(r.get("diff_std_over_seeds"))
    return signed(r["diff"], nd) + (f" ± {sd:.{nd}f}" if sd == sd else "")


def trend_sentence(trend: list[dict], metric: str = "pesq") -> str:
    """Does the gap between arms close, hold or grow with training? Per method, the paired
    validation difference (`mvat.paired_trend` rows) at the first and the last step, and how
    it moved: "holds" when the change is within the seeds' spread at either end."""
    parts = []
    for method in dict.fromkeys(r["method"] for r in trend if r["metric"] == metric):
        rows = sorted((r for r in trend if r["method"] == method and r["metric"] == metric),
                      key=lambda r: r["step"])  # fmt: skip
        first, last = rows[0], rows[-1]
        spread = max(
            nan_if_none(first["diff_std_over_seeds"]), nan_if_none(last["diff_std_over_seeds"])
        )
        change = last["diff"] - first["diff"]
        way = "closes" if abs(last["diff"]) < abs(first["diff"]) else "grows"
        moved = (
            f"{way} (one seed: no spread to judge it by)" if spread != spread
            else "holds within the seeds' spread" if abs(change) <= spread
            else way
        )  # fmt: skip
        nd = MEASURE[metric].decimals
        parts.append(
            f"{model_title(method)} - {model_title(first['baseline'])}: "
            f"{_with_spread(first, nd)} at step {first['step']:,}, {_with_spread(last, nd)} at "
            f"step {last['step']:,} ({seeds_phrase(last['seeds'])}): the gap {moved}"
        )
    if not parts:
        return "No paired validation trend is recorded yet (notebook 04)."
    return f"Validation {MEASURE[metric].title}, paired by seed: " + "; ".join(parts) + "."


def _trends(trend: list[dict]) -> str:
    """The trend sentence of every metric `trend` has (PESQ first)."""
    metrics = list(dict.fromkeys(r["metric"] for r in trend))
    return " ".join(trend_sentence(trend, m) for m in metrics) or trend_sentence([])


def _each_against_it(rows: list[dict]) -> str:
    """ "X is d [lo, hi], above it (n seeds); ..." of the PESQ rows of paired differences."""
    parts = []
    for e in (e for e in rows if e["metric"] == "pesq"):
        lo, hi = nan_if_none(e["ci_low"]), nan_if_none(e["ci_high"])
        parts.append(
            f"{model_title(e['method'])} is {signed(e['diff'])} [{signed(lo)}, {signed(hi)}], "
            f"{direction(lo, hi)} it ({seeds_phrase(e['seeds'])})"
        )
    return "; ".join(parts)


def at_over_kd_sentence(over_kd: list[dict]) -> str:
    """The AT term's own contribution: each MV-AT + KD row against KD alone on PESQ
    (`mvat.at_over_kd` rows), or nothing without them."""
    parts = _each_against_it(over_kd)
    if not parts:
        return ""
    return (
        "Against KD alone, the same objective without the AT term, in PESQ over the same "
        f"files: {parts}."
    )


def size_change_sentence(change: list[dict]) -> str:
    """Does distillation gain more at 5.3GF than at 1.5GF? Each 5.3GF arm's effect minus its
    1.5GF arm's (`mvat.size_change` rows) on PESQ, or that there is none yet."""
    parts = _each_against_it(change)
    if not parts:
        return "The 5.3GF runs are not all finished yet: no effect to set against the 1.5GF one."
    return (
        "Against the same arm's effect on the 1.5GF student, each 5.3GF arm's effect on its "
        f"baseline, in PESQ over the same files and seeds: {parts}. The paper's account (a "
        "small student cannot take in the teacher's knowledge) predicts this above 0."
    )


def held_out_sentence(held_out: list[dict]) -> str:
    """The seeded weight rows over the seeds that did not choose them (`mvat.held_out_seeds`
    rows), on PESQ, or nothing without them."""
    said = [mvat_effect_sentence(e) for e in held_out if e["metric"] == "pesq"]
    if not said:
        return ""
    return (
        "A row given more seeds was chosen for its first seed's result, which favours it; over "
        "the other seeds alone: " + " ".join(said)
    )


def in_short(effects: list[dict], against: str) -> str:
    """The rows of `effects` (one metric, all against `against`) grouped by where their
    interval lies, above first, each with its difference, interval and seeds: the answer
    before its sentences."""
    groups: dict[str, list[str]] = {way: [] for way in DIRECTIONS}
    for e in effects:
        lo, hi = nan_if_none(e["ci_low"]), nan_if_none(e["ci_high"])
        nd = MEASURE[e["metric"]].decimals
        groups[direction(lo, hi)].append(
            f"{model_title(e['method'])} {signed(e['diff'], nd)} [{signed(lo, nd)}, "
            f"{signed(hi, nd)}] ({seeds_phrase(e.get('seeds', 1))})"
        )
    return " ".join(
        f"{way[0].upper()}{way[1:]} {against}: {'; '.join(titles)}."
        for way, titles in groups.items()
        if titles
    )


def _lead(where: str, effects: list[dict], against: str) -> list[str]:
    """`in_short` of `effects`, introduced by `where`; nothing without effects."""
    return [f"*{where}:* {in_short(effects, against)}"] if effects else []


def robustness_answers(
    effects: list[dict],
    trend: list[dict],
    budget: Budget,
    over_kd: list[dict] = (),
    held_out: list[dict] = (),
    size_changes: list[dict] = (),
    brief: bool = False,
) -> str:
    """The three questions a reviewer asks of the MV-AT verdict, one line each: does another
    AT weight help (and, against KD alone, does the AT term add to KD), does the paper's
    larger (5.3GF) student gain, and does the gap close with training. `effects` are one test
    set's `distillation_effect` rows, `trend` the `paired_trend` rows, `over_kd` the
    `at_over_kd` rows, `held_out` the `held_out_seeds` rows, `size_changes` the `size_change`
    rows; a question whose runs are not finished says so. `brief`: each answer's grouped
    figures (`in_short`) without the sentence per row that follows them."""
    from .spec import AT_WEIGHT_ROWS, SIZE_ROWS

    pesq = [e for e in effects if e["metric"] == "pesq"]
    weight_rows = [e for e in pesq if e["method"] in AT_WEIGHT_ROWS]
    kd_rows = [e for e in over_kd if e["metric"] == "pesq"] if weight_rows else []
    held_rows = [e for e in held_out if e["metric"] == "pesq"] if weight_rows else []
    size_rows = [e for e in pesq if e["method"] in SIZE_ROWS]
    weight = _lead("PESQ", weight_rows, "the baseline")
    weight += _lead("PESQ on the seeds that did not choose a row", held_rows, "the baseline")
    weight += _lead("PESQ against KD alone", kd_rows, "KD alone")
    changes = [e for e in size_changes if e["metric"] == "pesq"] if size_rows else []
    size = _lead("PESQ", size_rows, f"the {model_title(SIZE_ROWS[0])}")
    size += _lead("PESQ, each arm's 5.3GF effect against its 1.5GF one", changes, "its 1.5GF one")
    if not brief:
        weight += [mvat_effect_sentence(e) for e in weight_rows]
        weight += [held_out_sentence(held_rows)] if held_rows else []
        weight += [at_over_kd_sentence(kd_rows)] if kd_rows else []
        size += [mvat_effect_sentence(e) for e in size_rows]
        size += [size_change_sentence(changes)] if changes else []
    return "\n".join([
        "1. **The AT weight.** " + (" ".join(weight) or
            "The rows with the AT term weighted to about 50 % and 10 % are not finished yet."),
        "2. **The student's size.** " + (" ".join(size) or
            "The paper's 5.3GF student is not finished yet: the study has the 1.5GF student only."),
        f"3. **The budget.** Over the {budget.steps:,} steps trained (the paper: "
        f"{PAPER_MVAT_TRAINING}): {_trends(trend)}",
    ])  # fmt: skip


def at_distance_sentence(utterance: str, distances: dict) -> str:
    """Notebook 05's conclusion: the AT distance to the teacher summed over every (pair, view)
    map, before (`distances["baseline"]`) and after MV-AT (`distances["MV-AT"]`)."""
    b, a = (sum(distances[name].values()) for name in ("baseline", "MV-AT"))
    closer = "closer" if a < b else "not closer"
    return (
        f"Summed over {len(distances['MV-AT'])} (pair, view) maps, the AT distance to the "
        f"teacher is **{b:.3f}** for the baseline student and **{a:.3f}** after MV-AT ({closer} "
        "to the teacher's attention on this utterance)."
    )


def listening_sentence(student: str, signals: dict) -> str:
    """The listening room's conclusion on its selection (`signals`: noisy, <student>, clean):
    the student's SI-SDR improvement over the mixture and its output's gain on the clean."""
    from ..metrics import ls_gain, si_sdr

    clean, out = signals["clean"], signals[student]
    improvement = si_sdr(clean, out) - si_sdr(clean, signals["noisy"])
    return (
        f"On this selection {student} improves SI-SDR by **{improvement:+.2f} dB** over the "
        f"mixture, and its output has a least-squares gain of **{ls_gain(clean, out):.2f}** on "
        "the clean signal (1: the clean level, negative: inverted polarity)."
    )
