"""Shared fixtures for the test suite; plain helpers live in tests/helpers.py.

Kept small on purpose: fixtures here are visible to every test module, so
each has a specific name that will not shadow a module's own helpers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# `python -m pytest` puts the checkout on sys.path; a bare `pytest` may not, and
# tests/helpers.py imports specc, so this comes before any test module loads it.
_CHECKOUT = str(Path(__file__).resolve().parent.parent)
if _CHECKOUT not in sys.path:
    sys.path.insert(0, _CHECKOUT)


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write text (or bytes) to a file under tmp_path, exactly as given (no newline
    translation, so a test controls every byte), and return its path."""

    from helpers import write_file

    def write(content: str | bytes, name: str = "bad.spec") -> Path:
        return write_file(tmp_path / name, content)

    return write
