"""`specc sweep`: run a sweep block of a spec as a hyperparameter search on Ray Tune."""

from __future__ import annotations

import argparse
from pathlib import Path

from specc.backend import BACKENDS, DEFAULT_BACKEND
from specc.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USER, say_error
from specc.cli.params import add_set_option, overrides, say_warnings
from specc.errors import OptionError, SpecError
from specc.frontend.suggest import did_you_mean

NAME = "sweep"

EPILOG = """\
examples:
  specc sweep specs/tagger.spec
  specc sweep specs/tagger.spec --sweep size_and_rate --trials 16
  specc sweep specs/tagger.spec --address 10.0.0.5:6379     # an existing Ray cluster
  specc sweep specs/tagger.spec --resume runs/size_and_rate  # after Ctrl-C"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc sweep` and its options."""
    p = sub.add_parser(
        NAME,
        help="search params of a task on Ray Tune (needs specc[sweep])",
        description="Run a sweep block of a spec file: trials train the sweep's task with "
        "params drawn from its search space, in parallel on a local Ray sized to this "
        "machine (or the cluster at --address). Shows a live table of trials, then the "
        "trials sorted by the metric, the best params and the command that reproduces the "
        "best trial; writes DIR/<sweep>/summary.json and each trial's checkpoint and "
        "metrics under DIR/<sweep>/trial_*/. Ctrl-C stops cleanly (exit 130); --resume "
        "continues.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="the spec file")
    p.add_argument("--sweep", metavar="S", help="which sweep to run (default: the first)")
    p.add_argument("--trials", type=int, metavar="N", help="draw N samples instead")
    p.add_argument("--out", metavar="DIR", help="where to write (default: runs/ beside the spec)")
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="join the Ray cluster at ADDR (host:port of `ray start --head`) instead of "
        "starting a local one",
    )
    p.add_argument(
        "--cpus", type=int, metavar="N", help="CPUs of the local Ray (default: all of them)"
    )
    p.add_argument("--resume", metavar="DIR", help="continue the sweep saved in DIR (its folder)")
    p.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default=DEFAULT_BACKEND,
        help="what runs each trial's model (as for `specc run`)",
    )
    add_set_option(p)


def _shown(path: Path) -> Path:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def run(args: argparse.Namespace) -> int:
    """Check the spec and the sweep, then run it; the tables and summary at the end."""
    from specc.api import load
    from specc.sweep import missing_extra

    for option in ("trials", "cpus"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            raise OptionError(f"--{option} must be a positive whole number, got {value}")
    if args.resume is not None and not Path(args.resume).is_dir():
        raise OptionError(f"--resume {args.resume}: no such folder")
    program = load(args.file, overrides(args))
    say_warnings(program)
    sweeps = program.ir.sweeps
    if not sweeps:
        raise SpecError("defines no sweep; add `sweep NAME : TASK { ... }`", path=args.file)
    if args.sweep is None:
        sweep = sweeps[0]
    else:
        names = [w.name for w in sweeps]
        if args.sweep not in names:
            hint = did_you_mean(args.sweep, names)
            raise OptionError(
                f"--sweep: no sweep named '{args.sweep}' in {args.file}"
                + (f"; {hint}" if hint else f" (it has {', '.join(names)})")
            )
        sweep = program.ir.sweep(args.sweep)
    if args.trials is not None:
        sweep = sweep.model_copy(update={"trials": args.trials})
    missing = missing_extra(sweep.search)
    if missing is not None:
        say_error(f"error: {missing}")
        return EXIT_USER
    from specc.cli.show import out
    from specc.fileio import check_writable
    from specc.sweep.report import table
    from specc.sweep.runner import run_sweep

    out_root = Path(args.out) if args.out else Path(args.file).resolve().parent / "runs"
    check_writable(out_root / sweep.name / "summary.json")  # before Ray starts, like every writer
    outcome = run_sweep(
        program,
        sweep,
        program.task(sweep.task),
        spec_path=args.file,
        out_root=out_root,
        backend=args.backend,
        address=args.address,
        cpus=args.cpus,
        resume=Path(args.resume) if args.resume else None,
        console=out,
    )
    summary = outcome.summary
    folder = _shown(outcome.folder)
    if outcome.interrupted:
        say_error(
            f"interrupted; the finished trials are kept in {folder}\n"
            f"resume with: specc sweep {args.file} --sweep {sweep.name} --resume {folder}"
        )
        return EXIT_INTERRUPTED
    out.print(table(summary.trials, sweep, f"sweep {sweep.name}: {sweep.metric}, {sweep.mode}"))
    if summary.best is not None:
        best = ", ".join(f"{k} = {v}" for k, v in summary.best.params.items())
        out.print(
            f"best:      {best}  ({sweep.metric} = {summary.best.metric:.4f})", highlight=False
        )
        out.print(f"reproduce: {summary.command}", highlight=False, soft_wrap=True)
    else:
        out.print("no trial reported the metric; every trial failed", highlight=False)
    out.print(f"summary:   {folder / 'summary.json'}", highlight=False, soft_wrap=True)
    return EXIT_OK if summary.best is not None else EXIT_USER
