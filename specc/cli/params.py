"""`--set NAME=VALUE`, shared by the commands that compile a spec (check, explain, run, sweep)."""

from __future__ import annotations

import argparse
import sys

from specc.errors import OptionError
from specc.frontend.passes.params import parse_override


def add_set_option(p: argparse.ArgumentParser) -> None:
    """Register the repeatable `--set NAME=VALUE`."""
    p.add_argument(
        "--set",
        dest="set_params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a param the spec declares, value written as in the spec "
        "(repeatable), e.g. --set hidden=128 --set lr=3e-4",
    )


def overrides(args: argparse.Namespace) -> dict[str, str]:
    """The `--set` values by param name; a name given twice is refused."""
    found: dict[str, str] = {}
    for item in getattr(args, "set_params", None) or []:
        name, value = parse_override(item)
        if name in found and found[name] != value:
            raise OptionError(f"--set {name} is given twice ({found[name]} and {value})")
        found[name] = value
    return found


def say_warnings(program) -> None:
    """Print the spec's warnings (a param nothing uses) on stderr; they never fail a command."""
    text = program.compiled.render_warnings()
    if text:
        sys.stderr.write(text)
        sys.stderr.flush()
