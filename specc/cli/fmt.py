"""`specc fmt`: print, check or rewrite a spec in its canonical layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specc.cli.common import EXIT_OK, EXIT_USER, say_error

NAME = "fmt"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc fmt` and its options."""
    p = sub.add_parser(
        NAME,
        help="print a spec in canonical layout",
        description="Print the canonical layout of a spec file, keeping every comment. "
        "With --check, print nothing and exit 1 when the file is not in canonical layout.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--check", action="store_true", help="exit 1 when the file differs")
    p.add_argument("--write", action="store_true", help="rewrite the file in place")


def run(args: argparse.Namespace) -> int:
    """Format the file; with --write, touch it only when the layout changes."""
    from specc.frontend.compile import read_spec
    from specc.frontend.fmt import format_spec
    from specc.frontend.lower import lower
    from specc.frontend.syntax import parse

    if args.write:
        from specc.fileio import check_writable

        check_writable(args.file)
    text = read_spec(args.file)
    tree, comments = parse(text.replace("\r\n", "\n"), args.file)
    formatted = format_spec(lower(tree, comments))
    if args.check:
        if formatted != text:
            say_error(f"{args.file}: not in canonical layout (run `specc fmt --write {args.file}`)")
            return EXIT_USER
        return EXIT_OK
    if args.write:
        if formatted != text:
            from specc.fileio import write_text

            write_text(Path(args.file), formatted)
        return EXIT_OK
    sys.stdout.write(formatted)
    return EXIT_OK
