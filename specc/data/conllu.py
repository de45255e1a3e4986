"""Universal Dependencies treebanks in CoNLL-U, reduced to (word, tag) pairs.

Only what a tagger needs is kept: the surface words and one tag column. The
rest of each line is still checked for shape, because a file with a broken
line is usually broken in a way that would silently misalign words and tags.
"""

from __future__ import annotations

from pathlib import Path

from specc.data._files import read_utf8
from specc.errors import DataError

TaggedSentence = list[tuple[str, str]]

COLUMNS: tuple[str, ...] = ("upos", "xpos")
_FIELD_INDEX = {"upos": 3, "xpos": 4}
_N_FIELDS = 10
# Real treebanks leave XPOS (and occasionally UPOS) as "_" on some tokens. A
# tagger needs a label for every word, and UD's own tag for "could not be
# assigned" is X.
_MISSING_TAG = "X"


def load_conllu(path: str | Path, column: str = "upos") -> list[TaggedSentence]:
    """Read a CoNLL-U file as sentences of ``(FORM, tag)`` pairs.

    Multiword token lines (``3-4``) are skipped and their parts kept, because
    the parts are what UD tags; empty nodes (``5.1``) are skipped because they
    are not words of the text. Word IDs must run 1, 2, 3, ... within each
    sentence: a break in the run almost always means a lost blank line that
    glued two sentences together.

    ``column`` is ``"upos"`` or ``"xpos"``; anything else is a programming or
    spec error and raises ``ValueError``. A ``_`` in that column becomes
    ``"X"`` unless the whole file has no tags there, which is reported as a
    :class:`DataError`, since training on nothing but ``X`` is never intended.
    """
    if column not in _FIELD_INDEX:
        raise ValueError(f"unknown CoNLL-U column {column!r}; expected one of {', '.join(COLUMNS)}")
    shown = str(path)
    field = _FIELD_INDEX[column]
    text = read_utf8(path)

    sentences: list[TaggedSentence] = []
    current: TaggedSentence = []
    tagged_tokens = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != _N_FIELDS:
            hint = " (fields must be separated by tabs)" if len(fields) == 1 and " " in line else ""
            raise DataError(
                shown,
                f"expected {_N_FIELDS} tab-separated fields, found {len(fields)}{hint}",
                line=lineno,
            )
        token_id = fields[0]
        if "-" in token_id:
            _check_range(shown, token_id, lineno)
            continue
        if "." in token_id:
            _check_empty_node(shown, token_id, lineno)
            continue
        if not _is_int(token_id) or int(token_id) < 1:
            raise DataError(shown, f"ID {token_id!r} is not a positive integer", line=lineno)
        expected = len(current) + 1
        if int(token_id) != expected:
            raise DataError(
                shown,
                f"expected word ID {expected}, found {token_id} "
                "(is a blank line missing between sentences?)",
                line=lineno,
            )
        form = fields[1]
        if not form:
            raise DataError(shown, "empty FORM field", line=lineno)
        tag = fields[field]
        if tag == "_" or not tag:
            tag = _MISSING_TAG
        else:
            tagged_tokens += 1
        current.append((form, tag))
    if current:  # the last sentence need not end with a blank line
        sentences.append(current)

    if not sentences:
        raise DataError(shown, "CoNLL-U file has no sentences")
    if tagged_tokens == 0:
        raise DataError(shown, f"column {column} is empty")
    return sentences


def _check_range(shown: str, token_id: str, lineno: int) -> None:
    start, _, end = token_id.partition("-")
    if not (_is_int(start) and _is_int(end) and 0 < int(start) < int(end)):
        raise DataError(shown, f"ID {token_id!r} is not a valid multiword range", line=lineno)


def _check_empty_node(shown: str, token_id: str, lineno: int) -> None:
    word, _, sub = token_id.partition(".")
    if not (_is_int(word) and _is_int(sub) and int(sub) > 0):
        raise DataError(shown, f"ID {token_id!r} is not a valid empty-node ID", line=lineno)


def _is_int(text: str) -> bool:
    # str.isdigit alone accepts characters such as "²" that int() rejects.
    return text.isascii() and text.isdigit()
