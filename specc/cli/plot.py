"""`specc plot`: learning curves of one or several runs, from their metrics files."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "plot"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc plot` and its options."""
    p = sub.add_parser(
        NAME,
        help="draw learning curves of runs (needs specc[plot])",
        description="Draw the training and held-out loss, a held-out metric and the "
        "learning rate against training steps, from the metrics files `specc run` "
        "writes (DIR/<task>.json); several runs share the axes. Needs matplotlib: "
        "pip install 'specc[plot]'.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN.json", help="metrics files of runs")
    p.add_argument(
        "-o",
        "--out",
        metavar="FILE",
        help="the picture to write, .png, .svg or .pdf (default: the first RUN with .png)",
    )


def run(args: argparse.Namespace) -> int:
    """Read the runs, check the output place, draw and save the chart."""
    from specc.cli.show import out
    from specc.fileio import check_writable
    from specc.plotting import check_format, pyplot, save_figure
    from specc.train.curves import describe, learning_curves, read_runs

    target = Path(args.out) if args.out else Path(args.runs[0]).with_suffix(".png")
    check_format(target, "-o")
    pyplot("specc plot")  # say what to install before anything else is done
    runs = read_runs(args.runs)
    check_writable(target)
    save_figure(learning_curves(runs), target)
    out.print(describe(runs))
    out.print(f"wrote {target}")
    return 0
