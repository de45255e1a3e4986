"""The `specc` command: parses options, calls the library, maps errors to exit codes.

Exit status: 0 success; 1 an error in what the user gave; 2 a usage error;
130 interrupted. Every user error is printed as a message, never a traceback
(`--debug` shows one).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from specc.errors import SpecError

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Callable[[argparse._SubParsersAction], None], Command]] = {}


def command(register: Callable[[argparse._SubParsersAction], None]):
    """Declare a subcommand: `register` adds its options, the function runs it."""

    def wrap(run: Command) -> Command:
        COMMANDS[run.__name__.removeprefix("cmd_")] = (register, run)
        return run

    return wrap


def _say_error(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


# ----- check ------------------------------------------------------------------


def _check_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
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


@command(_check_args)
def cmd_check(args: argparse.Namespace) -> int:
    from specc.api import load

    status = EXIT_OK
    for path in args.files:
        try:
            program = load(path)
            if args.gradcheck:
                from specc.diagnose.gradcheck import report_gradcheck

                if not report_gradcheck(program, sys.stdout):
                    status = EXIT_USER
        except SpecError as err:
            _say_error(err.render())
            status = EXIT_USER
    return status


# ----- fmt --------------------------------------------------------------------


def _fmt_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fmt",
        help="print a spec in canonical layout",
        description="Print the canonical layout of a spec file, keeping every comment. "
        "With --check, print nothing and exit 1 when the file is not in canonical layout.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--check", action="store_true", help="exit 1 when the file differs")
    p.add_argument("--write", action="store_true", help="rewrite the file in place")


@command(_fmt_args)
def cmd_fmt(args: argparse.Namespace) -> int:
    from specc.frontend.compile import read_spec
    from specc.frontend.fmt import format_spec
    from specc.frontend.lower import lower
    from specc.frontend.syntax import parse

    text = read_spec(args.file)
    tree, comments = parse(text.replace("\r\n", "\n"), args.file)
    formatted = format_spec(lower(tree, comments))
    if args.check:
        if formatted != text:
            _say_error(
                f"{args.file}: not in canonical layout (run `specc fmt --write {args.file}`)"
            )
            return EXIT_USER
        return EXIT_OK
    if args.write:
        if formatted != text:
            from specc.fileio import atomic_write_text

            atomic_write_text(Path(args.file), formatted)
        return EXIT_OK
    sys.stdout.write(formatted)
    return EXIT_OK


# ----- explain ---------------------------------------------------------------------


def _explain_args(sub: argparse._SubParsersAction) -> None:
    from specc.cli.explain import add_parser

    add_parser(sub)


@command(_explain_args)
def cmd_explain(args: argparse.Namespace) -> int:
    from specc.cli.explain import run

    return run(args)


# ----- training and inference ----------------------------------------------------


def _run_args(sub: argparse._SubParsersAction) -> None:
    from specc.cli.train_commands import add_run_parser

    add_run_parser(sub)


@command(_run_args)
def cmd_run(args: argparse.Namespace) -> int:
    from specc.cli.train_commands import run_command

    return run_command(args)


def _generate_args(sub: argparse._SubParsersAction) -> None:
    from specc.cli.train_commands import add_generate_parser

    add_generate_parser(sub)


@command(_generate_args)
def cmd_generate(args: argparse.Namespace) -> int:
    from specc.cli.train_commands import generate_command

    return generate_command(args)


def _tag_args(sub: argparse._SubParsersAction) -> None:
    from specc.cli.train_commands import add_tag_parser

    add_tag_parser(sub)


@command(_tag_args)
def cmd_tag(args: argparse.Namespace) -> int:
    from specc.cli.train_commands import tag_command

    return tag_command(args)


def _diagnose_args(sub: argparse._SubParsersAction) -> None:
    from specc.cli.diagnose import add_parser

    add_parser(sub)


@command(_diagnose_args)
def cmd_diagnose(args: argparse.Namespace) -> int:
    from specc.cli.diagnose import run

    return run(args)


# ----- main -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from specc import __version__

    parser = argparse.ArgumentParser(
        prog="specc",
        description="Compile, explain, train and run sequence models described in .spec files.",
    )
    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register, _ in COMMANDS.values():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except SpecError as err:
        if args.debug:
            raise
        _say_error(err.render())
        return EXIT_USER
    except KeyboardInterrupt:
        if args.debug:
            raise
        _say_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def entry() -> None:
    try:
        status = main()
    except KeyboardInterrupt:  # a Ctrl-C outside any command's own handling
        status = EXIT_INTERRUPTED
    sys.exit(status)


if __name__ == "__main__":
    entry()
