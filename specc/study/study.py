"""The vanishing-gradient study: which recurrent layers learn long-range tasks?

Runs every task of `specs/study/adding.spec` and `specs/study/copy.spec` at
several sequence lengths, compares each final held-out loss with the task's
trivial baseline (adding: always predicting 1, MSE 1/6; copy: the memoryless
predictor, 10·ln(symbols)/(length+20) nats), and writes a markdown table with
the machine it ran on and how long it took. Nothing in that table is typed
by hand:

    python -m specc.study                 # the full study, writes docs/study.md
    python -m specc.study --quick         # a smoke run: one short length, few steps

Each run stops once it is solved (its loss checked every 250 steps), and runs go
side by side in one process per core, each on one thread, with subnormal numbers
flushed to zero: the numbers are the same whatever the number of processes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import specc
from specc.data.synthetic import ADDING_BASELINE_MSE, copy_baseline
from specc.errors import SpecError
from specc.fileio import check_writable, write_text
from specc.study.machine import describe
from specc.study.subnormal import flush_subnormals
from specc.train.loop import run_task


def _specs_folder() -> Path:
    """The study specs: inside the installed package (the wheel ships them there),
    else in the source tree's `specs/study/`."""
    here = Path(__file__).resolve().parent
    shipped = here / "specs"
    return shipped if shipped.is_dir() else here.parent.parent / "specs" / "study"


SPECS = _specs_folder()
STUDY = {
    "adding": (SPECS / "adding.spec", (25, 50, 100)),
    "copy": (SPECS / "copy.spec", (5, 10, 20)),
}
#: A run counts as solved when its held-out loss is below this fraction of the baseline.
SOLVED_BELOW = 0.25
#: Every run is evaluated this often, and stops at the first evaluation that solves it.
EVAL_EVERY = 250
#: What pins numpy's and MKL's products to one thread in a worker: set before it
#: imports numpy, so every run multiplies the same way whatever ``--jobs`` is.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Row:
    problem: str
    variant: str
    length: int
    steps: int
    loss: float
    baseline: float
    seconds: float
    budget: int = 0  # the steps it could take; `steps` is where it stopped
    cpu: float = 0.0  # processor seconds of the run: what a busy machine does not change

    @property
    def ratio(self) -> float:
        return self.loss / self.baseline

    @property
    def solved(self) -> bool:
        return self.ratio < SOLVED_BELOW


def baseline(problem: str, length: int, symbols: int = 8) -> float:
    return ADDING_BASELINE_MSE if problem == "adding" else copy_baseline(length, symbols)


def run_row(problem: str, task_name: str, length: int, steps: int | None) -> Row:
    """Train one task of the study at one length, until it is solved (checked every
    `EVAL_EVERY` steps) or its steps run out."""
    path, _ = STUDY[problem]
    program = specc.load(path)
    task = program.task(task_name)
    data = task.data.model_copy(update={"length": length})
    sized = task.model_copy(update={"data": data, "eval_every": EVAL_EVERY})
    goal = baseline(problem, length, getattr(data, "symbols", 8))
    started, cpu = time.perf_counter(), time.process_time()
    result = run_task(
        program, sized, steps=steps, save=False, until=lambda val: val["loss"] < SOLVED_BELOW * goal
    )
    return Row(
        problem,
        task.name.removeprefix(f"{problem}_"),
        length,
        result.steps,
        float(result.metrics["val"]["loss"]),
        goal,
        time.perf_counter() - started,
        sized.steps if steps is None else steps,
        time.process_time() - cpu,
    )


@contextmanager
def _one_threaded_workers(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """``jobs`` fresh processes whose products run on one thread each (`ONE_THREAD`),
    with subnormal numbers flushed to zero (`flush_subnormals`): runs side by side,
    each as fast as the machine gives it a core. The environment stays pinned while
    the pool lives, since a pool starts its processes when work first needs them."""
    saved = {k: os.environ.get(k) for k in ONE_THREAD}
    os.environ.update(ONE_THREAD)
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=flush_subnormals) as pool:
            yield pool
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_study(
    lengths: dict[str, tuple[int, ...]], steps: int | None = None, log=print, jobs: int = 1
) -> list[Row]:
    """Every task of the study at every length in ``lengths``, in ``jobs`` worker
    processes (the rows are independent; their order and numbers do not depend on
    ``jobs``)."""
    runs = []
    for problem, (path, _) in STUDY.items():
        for task in specc.load(path).ir.tasks:
            runs += [(problem, task.name, n, steps) for n in lengths[problem]]
    with _one_threaded_workers(jobs) as pool:
        futures = [pool.submit(run_row, *run) for run in runs]
        rows = []
        for future in futures:
            row = future.result()
            rows.append(row)
            log(
                f"{row.problem:<7} {row.variant:<16} T={row.length:<4} loss {row.loss:.4f} "
                f"baseline {row.baseline:.4f} {'solved' if row.solved else '-':<6} "
                f"step {row.steps:<5} {row.seconds:.1f} s"
            )
    return rows


def markdown(rows: list[Row], seconds: float, command: str, jobs: int = 1) -> str:
    cpu = sum(r.cpu for r in rows) / 60
    out = [
        "# The vanishing-gradient study",
        "",
        "Generated by `" + command + "` on " + describe() + f"; it took {seconds / 60:.1f} "
        f"minutes, its runs {cpu:.1f} minutes of processor time in {jobs} "
        f"process{'es' if jobs > 1 else ''} side by side (a machine that other work "
        "shares takes longer than the second figure over the number of processes). "
        "Every number below comes from that run.",
        "",
        "Each task of `specs/study/adding.spec` and `specs/study/copy.spec` is trained at "
        "several sequence lengths with the same seed and settings. The held-out loss is "
        "compared with what a model that learned nothing scores: for adding, always "
        "predicting 1 (MSE 1/6 ≈ 0.167); for copy, the memoryless predictor "
        "(10·ln 8 / (length + 20) nats). A run counts as **solved** when its loss is below "
        f"{SOLVED_BELOW:g} × the baseline. Every run is evaluated every {EVAL_EVERY} steps "
        "and stops at the first evaluation that solves it: a solved cell shows that "
        "loss and step, an unsolved one the loss after its last step.",
        "",
    ]
    for problem in STUDY:
        part = [r for r in rows if r.problem == problem]
        if not part:
            continue
        lengths = sorted({r.length for r in part})
        unit = "mse" if problem == "adding" else "nats"
        out += [
            f"## {problem}",
            "",
            "| layer | " + " | ".join(f"T = {n}" for n in lengths) + " |",
            "|---|" + "---|" * len(lengths),
        ]
        for variant in dict.fromkeys(r.variant for r in part):
            cells = []
            for n in lengths:
                r = next(x for x in part if x.variant == variant and x.length == n)
                mark = f" **solved** at step {r.steps}" if r.solved else ""
                cells.append(f"{r.loss:.4f} {unit} ({r.ratio:.2f}× baseline){mark}")
            out.append(f"| {variant} | " + " | ".join(cells) + " |")
        base = ", ".join(f"T = {n}: {baseline(problem, n):.4f}" for n in lengths)
        budget = max(r.budget or r.steps for r in part)
        out += ["", f"Baseline: {base}. Steps per run: at most {budget}.", ""]
    out += [
        "Read with `specc diagnose`: at initialisation the gradient of the last step's loss "
        "with respect to early hidden states shrinks geometrically for the sigmoid and tanh "
        "layers, while an identity-initialised rectified layer keeps it (see README); the "
        "lstm's forget gate (initialised near 1 by `forget_bias`) and the gru's update gate "
        "carry it through their additive state.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m specc.study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one short length per problem and 100 steps (a smoke test)",
    )
    parser.add_argument("--out", default="docs/study.md", help="where to write the markdown table")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="runs side by side, one process each (default: one per core); the numbers "
        "do not depend on it",
    )
    args = parser.parse_args(argv)
    if args.quick:
        lengths = {"adding": (10,), "copy": (5,)}
        steps: int | None = 100
    else:
        lengths = {p: ls for p, (_, ls) in STUDY.items()}
        steps = None
    try:
        check_writable(args.out)  # before the minutes of training, not after
        started = time.perf_counter()
        jobs = max(1, args.jobs)
        rows = run_study(lengths, steps, jobs=jobs)
        seconds = time.perf_counter() - started
        command = "python -m specc.study" + (" --quick" if args.quick else "")
        write_text(args.out, markdown(rows, seconds, command, jobs))
    except SpecError as err:
        sys.stderr.write(err.render() + "\n")
        return 1
    print(f"wrote {args.out} ({seconds:.0f} s, {sum(r.cpu for r in rows):.0f} s of processor time)")
    return 0
