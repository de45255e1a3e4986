"""Shared fixtures for the test suite.

Kept small on purpose: fixtures here are visible to every test module, so
each has a specific name that will not shadow a module's own helpers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# `python -m pytest` puts the checkout on sys.path; a bare `pytest` may not.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The top of the source checkout."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    """The folder of the example specs (`specs/*.spec`)."""
    return REPO_ROOT / "specs"


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write text (or bytes) to a file under tmp_path and return its path."""

    def write(content: str | bytes, name: str = "bad.spec") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return path

    return write


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    """Environment for running `python -m specc.cli.main` in a subprocess from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONWARNINGS", None)
    return env
