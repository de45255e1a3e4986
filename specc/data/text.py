"""Raw text corpora for character-level models.

Two sources: a file the user names, and texts that come with the Python
installation itself, so that a spec can train on real prose with no download
and nothing large checked into this repository.
"""

from __future__ import annotations

from pathlib import Path

from specc.data._files import read_utf8
from specc.errors import DataError

BUILTIN_TEXTS: tuple[str, ...] = ("python-docs",)


def load_text(path: str | Path) -> str:
    """Read a UTF-8 text corpus.

    A file with nothing but whitespace is refused here rather than later,
    because a model trained on it would fail with an empty-vocabulary or
    division-by-zero error far from the cause.
    """
    text = read_utf8(path)
    if not text.strip():
        what = "is empty" if not text else "contains only whitespace"
        raise DataError(str(path), f"text corpus {what}")
    return text


def builtin_text(name: str) -> str:
    """Return a named text that ships with Python.

    ``python-docs`` is the interactive help shown by ``help("TOPIC")``: about
    460k characters of edited English prose mixed with code. Topics are
    joined in sorted-key order so the corpus, and every split made from it,
    is the same on every run with the same Python.

    Raises ``ValueError`` for an unknown name; the caller knows where in the
    spec the name came from and turns it into a spec error there.
    """
    if name == "python-docs":
        return _python_docs()
    known = ", ".join(BUILTIN_TEXTS)
    raise ValueError(f"unknown builtin text {name!r}; known builtins: {known}")


def _python_docs() -> str:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some minimal Python builds leave pydoc_data out
        raise ValueError(
            "builtin text 'python-docs' needs the pydoc_data module, "
            "which this Python installation does not have"
        ) from None
    parts = [str(topics[key]).replace("\r\n", "\n").strip("\n") for key in sorted(topics)]
    return "\n\n".join(parts) + "\n"
