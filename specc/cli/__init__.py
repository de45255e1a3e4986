"""The `specc` command line: one module per command, one style.

`main` parses the options and dispatches; each command module registers its
options and its runner with `specc.cli.main.command`.
"""

from specc.cli.main import entry, main

__all__ = ["entry", "main"]
