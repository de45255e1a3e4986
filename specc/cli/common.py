"""What every command shares: the exit statuses and the one way errors are printed.

It lives apart from `specc.cli.main` so that command modules can use it while
`main` imports them, without an import cycle.
"""

from __future__ import annotations

import argparse
import sys

from specc.backend import BACKENDS, DEFAULT_BACKEND
from specc.errors import OptionError

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def say_error(text: str) -> None:
    """Print a user error on stderr, one trailing newline, flushed at once.

    Flushed so the message is not lost or reordered when stdout and stderr
    share a terminal or a pipe and the process exits right after.
    """
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


def add_backend_options(
    p: argparse.ArgumentParser, default: str | None = DEFAULT_BACKEND, what: str = ""
) -> None:
    """`--backend` and `--device`, the same on every command that runs a model
    (``default`` None: the command can tell whether `--backend` was given; ``what``
    ends the help with what the backend does there)."""
    p.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default=default,
        help="what runs the model: numpy (fast, the default), reference (every op "
        "written to be read; slower, the same numbers) or torch (PyTorch, on a CPU or a "
        "GPU, and across processes; needs the torch extra)" + what,
    )
    p.add_argument(
        "--device",
        metavar="D",
        help="where the torch backend runs: cpu (the default), cuda or cuda:N",
    )


def check_device(args: argparse.Namespace) -> None:
    """A device other than the CPU is for the torch backend only."""
    if args.device is not None and args.backend != "torch" and args.device != "cpu":
        raise OptionError(f"--device {args.device} needs --backend torch")
