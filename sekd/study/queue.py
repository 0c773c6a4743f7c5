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
"""

from __future__ import annotations

import argparse
import json
import time

from .runs import (
    UnfinishedTeacherError,
    budget_line,
    commit_run,
    committed_current,
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
        if (out / "summary.json").is_file():
            lines.append(f"{out.name}: finished, committed to {commit_run(profile, name, seed)}")
        elif (out / "last.pt").is_file():
            lines.append(f"{out.name}: in progress, saved to {save_progress(profile, name, seed)}")
        else:
            lines.append(f"{out.name}: not started, nothing to save")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--save",
        action="store_true",
        help="train nothing: commit the finished runs, save the unfinished ones' state",
    )
    ap.add_argument("runs", nargs="+", help="config names, each optionally NAME:SEED")
    args = ap.parse_args(argv)
    for item in args.runs:  # every config must exist before anything trains
        run_config(args.profile, *parse_item(item))
    if args.save:
        print("\n".join([*save_queue(args.profile, args.runs), budget_line()]))
        return 0
    run_queue(args.profile, args.runs, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
