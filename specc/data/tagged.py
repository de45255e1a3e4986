"""Part-of-speech corpora in the one-sentence-per-line ``word/TAG`` format.

This format is easy to write by hand and to read in a diff, which is why the
project's own corpus uses it; CoNLL-U (see :mod:`specc.data.conllu`) is the
format for data that comes from treebanks.
"""

from __future__ import annotations

from pathlib import Path

from specc.data._files import read_utf8
from specc.errors import DataError

TaggedSentence = list[tuple[str, str]]


def load_tagged(path: str | Path) -> list[TaggedSentence]:
    """Read sentences of ``(word, tag)`` pairs.

    The tag is whatever follows the *last* slash, so words that contain a
    slash themselves (``1/2/NUM``, ``and/or/CCONJ``) need no escaping. Blank
    lines and lines whose first non-blank character is ``#`` are skipped so a
    corpus can carry comments; a sentence therefore cannot start with a
    ``#`` token.
    """
    shown = str(path)
    text = read_utf8(path)
    sentences: list[TaggedSentence] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        sentence: TaggedSentence = []
        for token in stripped.split():
            word, slash, tag = token.rpartition("/")
            if not slash:
                raise DataError(shown, f"token {token!r} has no /TAG", line=lineno)
            if not word:
                raise DataError(shown, f"token {token!r} has an empty word", line=lineno)
            if not tag:
                raise DataError(shown, f"token {token!r} has an empty tag", line=lineno)
            sentence.append((word, tag))
        sentences.append(sentence)
    if not sentences:
        raise DataError(shown, "tagged corpus has no sentences")
    return sentences
