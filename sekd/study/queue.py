"""Train a list of a profile's runs one after another, resuming unfinished ones, in this
process: the way to run a long study in the background, one queue per core.

    OMP_NUM_THREADS=1 python -m sekd.study.queue --profile cpu teacher student_baseline:1 ...

Each item is a config name of `configs/<profile>/`, optionally `:SEED`. A run whose folder under
runs/<profile>/ holds summary.json, or that is committed with the profile's current config
(`committed_current`), is finished and skipped; one with last.pt is resumed; one with
neither resumes from its committed state under checkpoints/<profile>/<run>/in_progress/ if there
is one, else starts fresh. A student whose teacher run on this machine has not finished is
skipped (said in the log): list the teacher before its students in one queue. A committed
model is never written over here (students read committed teachers where this machine has no
run of them: `committed_teachers`).

Before the machine goes away (a preempted job, the end of a session), `--save` keeps what the
queue has done, for git: each finished run is committed (`commit_run`: its best model and logs
under checkpoints/<profile>/<run>/), each unfinished one's resumable state is copied to
checkpoints/<profile>/<run>/in_progress/ (`save_progress`):

    python -m sekd.study.queue --profile cpu --save teacher student_baseline:1 ...

and its last line says whether the committed models still total under their budget
(`runs.CHECKPOINT_BUDGET_BYTES`).

Before a long queue starts, `--plan SPEED.json` estimates its core-hours (`plan_queue`) from a
`benchmarks/train_speed.py` measurement of the student and from how much longer than their
training steps the profile's committed students took on the wall:

    python -m sekd.study.queue --profile cpu --plan results/benchmarks/train_speed_X.json \
        --json results/cpu/queue_plan.json student_5p3gf_baseline ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from ..outputs import write_text
from ..results import dumps
from ..train import total_steps
from .runs import (
    COMMITTED,
    IN_PROGRESS,
    UnfinishedTeacherError,
    budget_line,
    commit_run,
    committed_current,
    committed_dir,
    log_rows,
    run_config,
    run_dir,
    save_progress,
    train_run,
)


def parse_item(item: str) -> tuple[str, int | None]:
    name, _, seed = item.partition(":")
    return name, (int(seed) if seed else None)


def run_queue(profile: str, items, threads: int | None = None) -> list[dict]:
    if threads:
        import torch

        torch.set_num_threads(threads)
    done = []
    for item in items:
        name, seed = parse_item(item)
        out = run_dir(profile, name, seed)
        if (out / "summary.json").is_file():
            print(f"{out}: finished already", flush=True)
            continue
        if committed_current(profile, name, seed):
            print(f"{out}: committed with this config already", flush=True)
            continue
        try:
            summary = train_run(profile, name, seed, log=lambda line: print(line, flush=True))
        except UnfinishedTeacherError as e:  # the rest of the queue goes on
            print(f"{out}: skipped, its teacher run {e.teacher} has not finished", flush=True)
            continue
        print(f"{time.strftime('%H:%M:%S')} {json.dumps(summary)}", flush=True)
        done.append(summary)
    return done


def save_queue(profile: str, items) -> list[str]:
    """`--save`: commit each finished run, save each unfinished one's resumable state; runs
    never started are skipped. Returns one line per run, saying what was done."""
    lines = []
    for item in items:
        name, seed = parse_item(item)
        out = run_dir(profile, name, seed)
        if _committed_already(profile, name, seed):
            lines.append(f"{out.name}: finished, committed already")
        elif (out / "summary.json").is_file():
            lines.append(f"{out.name}: finished, committed to {commit_run(profile, name, seed)}")
        elif (out / "last.pt").is_file():
            lines.append(f"{out.name}: in progress, saved to {save_progress(profile, name, seed)}")
        else:
            lines.append(f"{out.name}: not started, nothing to save")
    return lines


def _committed_already(profile: str, name: str, seed: int | None) -> bool:
    """Is this finished run's summary the one committed? Then its model is committed too, and
    saving it again would only rewrite the same weights as new bytes for git."""
    mine = run_dir(profile, name, seed) / "summary.json"
    theirs = committed_dir(profile, name, seed) / "summary.json"
    return mine.is_file() and theirs.is_file() and mine.read_bytes() == theirs.read_bytes()


def steps_done(profile: str, name: str, seed: int | None = None) -> int:
    """The last training step a run logged: on this machine, else in its committed state in
    progress; 0 for a run not started."""
    for folder in (run_dir(profile, name, seed), committed_dir(profile, name, seed) / IN_PROGRESS):
        rows = log_rows(folder, "train")
        if rows:
            return int(rows[-1]["step"])
    return 0


def wall_over_training(profile: str) -> float:
    """How many times longer than their training steps alone (at their logged speed) the
    profile's committed, finished students took on the wall: validation, checkpoints and a
    shared machine included. The median over those runs."""
    ratios = []
    for folder in sorted((COMMITTED / profile).glob("student_*")):
        rows, summary = log_rows(folder, "train"), folder / "summary.json"
        if rows and summary.is_file():
            s = json.loads(summary.read_text())
            step_s = statistics.median(1 / r["steps_per_s"] for r in rows if r["steps_per_s"])
            ratios.append(s["seconds"] / (s["steps"] * step_s))
    if not ratios:
        raise ValueError(f"checkpoints/{profile}/ holds no finished student to time the wall by")
    return statistics.median(ratios)


def planned_steps(cfg) -> int:
    """A run's length in steps, known before it starts (`train.total_steps`): train.max_steps,
    or its epochs of on-the-fly mixtures (a folder's size is known only once it is read)."""
    if cfg.train.max_steps or cfg.data.source == "corpus":
        return total_steps(cfg.train, cfg.data.examples_per_epoch)
    raise ValueError(
        f"{cfg.name}: set train.max_steps to plan a run on data.source {cfg.data.source!r}"
    )


def plan_queue(profile: str, items, speed: dict) -> dict:
    """Core-hours the queue `items` still needs: each run's steps left times the measured
    seconds per step of its arm (`speed`, a train_speed.py result: the student alone, or with
    a teacher for MV-AT + KD) times `wall_over_training`."""
    wall = wall_over_training(profile)
    runs = []
    for item in items:
        name, seed = parse_item(item)
        cfg = run_config(profile, name, seed)
        arm = "student alone" if cfg.teacher.routing == "none" else "student + MV-AT + KD"
        left = planned_steps(cfg) - steps_done(profile, name, seed)
        hours = left * speed["seconds_per_step"][arm] * wall / 3600
        runs.append({"run": run_dir(profile, name, seed).name, "arm": arm, "steps_left": left,
                     "core_hours": hours})  # fmt: skip
    total = sum(r["core_hours"] for r in runs)
    return {"speed": speed["args"], "wall_over_training": wall, "runs": runs, "core_hours": total}


def _plan(args) -> int:
    plan = plan_queue(args.profile, args.runs, json.loads(Path(args.plan).read_text()))
    for r in plan["runs"]:
        print(
            f"{r['run']:40s} {r['arm']:22s} {r['steps_left']:>7,d} steps {r['core_hours']:6.2f} h"
        )
    print(f"{plan['core_hours']:.1f} core-hours (x{plan['wall_over_training']:.2f} wall/training)")
    if args.json:
        write_text(args.json, dumps({"speed_file": args.plan, **plan}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--save",
        action="store_true",
        help="train nothing: commit the finished runs, save the unfinished ones' state",
    )
    ap.add_argument(
        "--plan",
        metavar="SPEED_JSON",
        help="train nothing: estimate the core-hours left from a train_speed.py result",
    )
    ap.add_argument("--json", help="with --plan: write the estimate here too")
    ap.add_argument("runs", nargs="+", help="config names, each optionally NAME:SEED")
    args = ap.parse_args(argv)
    for item in args.runs:  # every config must exist before anything trains
        run_config(args.profile, *parse_item(item))
    if args.plan:
        return _plan(args)
    if args.save:
        print("\n".join([*save_queue(args.profile, args.runs), budget_line()]))
        return 0
    run_queue(args.profile, args.runs, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
