"""`specc check`: parse and validate spec files, optionally checking gradients."""

from __future__ import annotations

import argparse
import sys

from specc.cli.common import EXIT_OK, EXIT_USER, say_error
from specc.cli.params import add_set_option, overrides, say_warnings
from specc.errors import SpecError

NAME = "check"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc check` and its options."""
    p = sub.add_parser(
        NAME,
        help="parse and validate spec files",
        description="Parse and validate spec files. Prints nothing but diagnostics; "
        "exit status 1 when any file has an error.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="spec files to check")
    p.add_argument(
        "--gradcheck",
        action="store_true",
        help="also check every model's gradients against finite differences (float64)",
    )
    add_set_option(p)


def run(args: argparse.Namespace) -> int:
    """Check every file, reporting each file's errors rather than stopping at the first."""
    from specc.api import load

    status = EXIT_OK
    params = overrides(args)
    for path in args.files:
        try:
            program = load(path, params)
            say_warnings(program)
            if args.gradcheck:
                from specc.diagnose.gradcheck import report_gradcheck

                if not report_gradcheck(program, sys.stdout):
                    status = EXIT_USER
        except SpecError as err:
            say_error(err.render())
            status = EXIT_USER
    return status
