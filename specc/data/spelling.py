"""Words as letters: the character table and the (words, letters) id arrays `spell` feeds.

A word's letters are its Unicode code points (a Hangul syllable is one), or with
``nfd`` its canonical decomposition (a syllable becomes its two or three jamo,
``é`` becomes ``e`` and a combining accent), which lets a model see the parts a
syllable shares with others. Id 0 is ``<pad>`` (words shorter than the longest
are padded with it, and a word's length is its count of non-zero ids) and a
character never seen in training reads ``<unk>``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from specc.data.vocab import WORD_SPECIALS, Vocab

#: The character table's specials: the same as words', so padding is id 0.
CHAR_SPECIALS = WORD_SPECIALS


def letters(word: str, nfd: bool = False) -> str:
    """The letters `spell` reads ``word`` as."""
    return unicodedata.normalize("NFD", word) if nfd else word


def char_vocab(words: Iterable[str], nfd: bool = False) -> Vocab:
    """The characters of the training words (each occurrence counts), most frequent first."""
    return Vocab.build((c for w in words for c in letters(w, nfd)), specials=CHAR_SPECIALS)


def spell(words: Sequence[str], chars: Vocab, nfd: bool = False) -> np.ndarray:
    """Character ids of each word, (len(words), longest), right-padded with 0."""
    spelled = [chars.encode(letters(w, nfd)) for w in words]
    width = max((len(s) for s in spelled), default=0)
    out = np.zeros((len(words), max(width, 1)), dtype=np.int64)
    for i, s in enumerate(spelled):
        out[i, : len(s)] = s
    return out
