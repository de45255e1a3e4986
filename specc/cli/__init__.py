"""The `specc` command line: one module per command, one style.

Each command module (check, fmt, explain, run, generate, tag, diagnose) has
`NAME`, `add_parser(sub)` and `run(args)`; `specc.cli.main.COMMANDS` lists
them, and `main` parses the options, dispatches and maps errors to exit codes.
"""

from specc.cli.main import entry, main

__all__ = ["entry", "main"]
