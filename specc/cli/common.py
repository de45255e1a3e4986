"""What every command shares: the exit statuses and the one way errors are printed.

It lives apart from `specc.cli.main` so that command modules can use it while
`main` imports them, without an import cycle.
"""

from __future__ import annotations

import sys

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def say_error(text: str) -> None:
    """Print a user error on stderr, one trailing newline, flushed at once.

    Flushed so the message is not lost or reordered when stdout and stderr
    share a terminal or a pipe and the process exits right after.
    """
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()
