"""`specc lsp`: the language server, over stdin and stdout, for editors to start."""

from __future__ import annotations

import argparse

from specc.cli.common import EXIT_OK, EXIT_USAGE, EXIT_USER, say_error

NAME = "lsp"

#: What to run when the optional dependency is missing.
INSTALL = "specc lsp needs the language server extra: pip install 'specc[lsp]'"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc lsp` and its options."""
    p = sub.add_parser(
        NAME,
        help="run the language server (for editors)",
        description="Run specc's language server over stdin and stdout: diagnostics, "
        "hover with shapes and parameter counts, completion, go to definition, "
        "references and formatting for .spec files. Editors start it; see README.md "
        "(Editors). Needs the optional extra: pip install 'specc[lsp]'.",
    )
    # Clients such as vscode-languageclient pass --stdio; stdio is the only transport.
    p.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    p.add_argument(
        "--debounce",
        type=float,
        default=0.3,
        metavar="SECONDS",
        help="quiet time after an edit before the file is checked again (default 0.3)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until the client says exit; exit 1 with one line when pygls is missing."""
    try:
        from specc.lsp.server import serve
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith(("pygls", "lsprotocol")):
            raise
        say_error(INSTALL)
        return EXIT_USER
    if not args.debounce >= 0:
        say_error(f"--debounce must be 0 or more seconds, got {args.debounce}")
        return EXIT_USAGE
    serve(args.debounce)
    return EXIT_OK
