"""`specc run`: train a task, evaluate it, save a checkpoint and show the results."""

from __future__ import annotations

import argparse
import sys

from specc.backend import BACKENDS, DEFAULT_BACKEND
from specc.cli.params import add_set_option, overrides, say_warnings
from specc.errors import OptionError, SpecError

NAME = "run"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc run` and its options."""
    p = sub.add_parser(
        NAME,
        help="train a task, evaluate it and show what the model does",
        description="Train a task of a spec file, evaluate it on held-out data after every "
        "epoch, and show inference (sampled text for next_char, tagged sentences for tag). "
        "Writes DIR/<task>.npz (checkpoint) and DIR/<task>.json (metrics).",
    )
    p.add_argument("file", metavar="FILE", help="the spec file")
    p.add_argument("--task", metavar="T", help="which task to run (default: the first)")
    p.add_argument("--epochs", type=int, metavar="N", help="train for N epochs instead")
    p.add_argument("--steps", type=int, metavar="N", help="train for N steps instead")
    p.add_argument("--seed", type=int, metavar="S", help="override the task's seed")
    p.add_argument("--out", metavar="DIR", help="where to write (default: runs/ beside the spec)")
    p.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default=DEFAULT_BACKEND,
        help="what runs the model: numpy (fast, the default) or reference (every op "
        "written to be read; slower, the same numbers)",
    )
    p.add_argument(
        "--resume",
        metavar="CKPT",
        help="continue a checkpoint of this task up to the task's total length",
    )
    add_set_option(p)


def _positive(name: str, value: int | None) -> None:
    """Reject 0 and negatives before any data is read, naming the option."""
    if value is not None and value <= 0:
        raise OptionError(f"--{name} must be a positive whole number, got {value}")


def run(args: argparse.Namespace) -> int:
    """Train the task, then show its metrics and what the model does."""
    from specc.api import load
    from specc.cli.show import out, show_demo, show_metrics
    from specc.train.loop import Diverged, Interrupted, run_task
    from specc.train.progress import reporter_for

    _positive("epochs", args.epochs)
    _positive("steps", args.steps)
    if args.epochs is not None and args.steps is not None:
        raise OptionError("give --epochs or --steps, not both")
    if args.seed is not None and args.seed < 0:
        raise OptionError(f"--seed must be 0 or more, got {args.seed}")
    program = load(args.file, overrides(args))
    say_warnings(program)
    try:
        result = run_task(
            program,
            args.task,
            epochs=args.epochs,
            steps=args.steps,
            seed=args.seed,
            out_dir=args.out,
            resume=args.resume,
            reporter=reporter_for(out),
            backend=args.backend,
        )
    except SpecError as err:
        if err.path is None and type(err) in (SpecError, Diverged):
            err.path = args.file  # found after reading the data: say which spec
        raise
    except Interrupted as stop:
        where = f"; checkpoint saved to {stop.checkpoint}" if stop.checkpoint else ""
        sys.stderr.write(f"interrupted at a step boundary{where}\n")
        return stop.exit_status
    show_metrics(result)
    show_demo(result)
    out.print(f"checkpoint: {result.checkpoint}\nmetrics:    {result.metrics_path}")
    return 0
