"""What several test modules need: where the checkout is, how to run the real
`specc` command, and how to lay out a spec with its data files.

One place, so that a change to how the command is started (or where the
example specs live) is made once and every test follows it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"

#: How a user starts the command from a checkout: `python -m specc.cli`.
SPECC_COMMAND = (sys.executable, "-m", "specc.cli")


def cli_env() -> dict[str, str]:
    """The environment for a `specc` subprocess: this checkout first on the path,
    so the code under test runs even where an installed specc points elsewhere,
    and no inherited warning filters that would add lines to stderr."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONWARNINGS", None)
    return env


def specc_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `specc ARGS` to the end as a user would, capturing its output."""
    return subprocess.run(
        [*SPECC_COMMAND, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(),
        timeout=timeout,
    )


def start_specc(*args: str, capture: bool = True) -> subprocess.Popen[str]:
    """Start `specc ARGS` without waiting, for tests that signal or kill it.

    With `capture`, stdout and stderr are pipes; without, both are discarded
    (a process that is killed repeatedly need not fill a pipe nobody reads)."""
    stream = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [*SPECC_COMMAND, *args], stdout=stream, stderr=stream, text=True, env=cli_env()
    )


def write_file(path: Path, content: str | bytes) -> Path:
    """Write `content` to `path` byte for byte (text as UTF-8, newlines untranslated),
    so a test controls exactly what the code under test reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def write_spec_and_data(
    folder: Path,
    spec: str,
    data: Mapping[str, str | bytes] | None = None,
    name: str = "t.spec",
) -> Path:
    """Write `spec` as folder/name and each data file beside it; returns the spec's path.

    Data paths in a spec resolve against the spec's folder, so the files go there."""
    for file_name, content in (data or {}).items():
        write_file(folder / file_name, content)
    return write_file(folder / name, spec)
