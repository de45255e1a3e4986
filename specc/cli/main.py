"""The `specc` command: parses options, dispatches, maps errors to exit codes.

Exit status: 0 success; 1 an error in what the user gave; 2 a usage error;
130 interrupted. Every user error is printed as a message, never a traceback
(`--debug` shows one).

Each command is a module of `specc.cli` with the same three names: `NAME`
(the subcommand), `add_parser(sub)` (registers its options) and `run(args)`
(runs it, returning the exit status). `COMMANDS` below is the one table that
lists them, in the order `specc --help` shows them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from specc.cli import (
    check,
    diagnose,
    explain,
    export,
    fmt,
    generate,
    lsp,
    plot,
    run,
    sweep,
    tag,
)  # fmt: skip
from specc.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, EXIT_USER, say_error
from specc.errors import SpecError

__all__ = [
    "COMMANDS",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_USER",
    "build_parser",
    "entry",
    "main",
]


class Command(Protocol):
    """What a command module provides (a module satisfies this structurally)."""

    NAME: str

    def add_parser(self, sub: argparse._SubParsersAction) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


COMMANDS: tuple[Command, ...] = (
    check, fmt, explain, run, sweep, generate, tag, diagnose, plot, export, lsp,
)  # fmt: skip
_BY_NAME: dict[str, Command] = {command.NAME: command for command in COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    """The whole `specc` parser: global options, then each command's own."""
    from specc import __version__

    parser = argparse.ArgumentParser(
        prog="specc",
        description="Compile, explain, train and run sequence models described in .spec files.",
    )
    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `specc` command line and return its exit status (never raises a user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = _BY_NAME[args.command]
    try:
        return command.run(args)
    except SpecError as err:
        if args.debug:
            raise
        say_error(err.render())
        return EXIT_USER
    except KeyboardInterrupt:
        if args.debug:
            raise
        say_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def entry() -> None:
    """The console script: `main` on sys.argv, its status as the process's exit code."""
    try:
        status = main()
    except KeyboardInterrupt:  # a Ctrl-C outside any command's own handling
        status = EXIT_INTERRUPTED
    sys.exit(status)


if __name__ == "__main__":
    entry()
