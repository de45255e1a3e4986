"""Token <-> id tables, built from training data only.

Conventions used by the tasks (kept here so they are decided in one place):

* characters (next-char prediction): no specials. The alphabet is closed, so
  nothing would ever be padded or unknown, and an extra id would only add an
  output class the model must learn never to predict.
* words (tagging inputs): :data:`WORD_SPECIALS`, ``("<pad>", "<unk>")``, so
  ``<pad>`` is id 0 (batches can be zero-filled) and words first seen in the
  validation or test split map to ``<unk>`` instead of leaking into the table.
* tags (tagging labels): :data:`TAG_SPECIALS`, no specials. Padded positions
  are removed by the length mask before the loss and before accuracy, so a
  pad label would be an output class that is never a right answer, and the
  label count stays equal to the number of real tags.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

PAD = "<pad>"
UNK = "<unk>"
WORD_SPECIALS: tuple[str, ...] = (PAD, UNK)
TAG_SPECIALS: tuple[str, ...] = ()


class Vocab(Mapping[str, int]):
    """An immutable, ordered mapping from token to id.

    ``vocab[token]`` is the exact lookup and raises ``KeyError`` for a token
    not in the table; :meth:`index` and :meth:`encode` apply the unknown-token
    rule: if ``<unk>`` is in the table, anything unseen maps to it.
    """

    __slots__ = ("_ids", "_tokens")

    def __init__(self, tokens: Sequence[str]) -> None:
        """Wrap a ready-made token list; use :meth:`build` to count a corpus."""
        ordered = tuple(tokens)
        ids: dict[str, int] = {}
        for i, token in enumerate(ordered):
            if not isinstance(token, str):
                raise TypeError(f"vocabulary entries must be str, got {type(token).__name__}")
            if token in ids:
                raise ValueError(f"duplicate vocabulary entry {token!r}")
            ids[token] = i
        self._tokens = ordered
        self._ids = ids

    @classmethod
    def build(
        cls, tokens: Iterable[str], specials: Sequence[str] = (), *, min_count: int = 1
    ) -> Vocab:
        """Count ``tokens`` (the training split only) and order them.

        Specials come first in the order given, then tokens by descending
        frequency, ties broken alphabetically, so the same data always gives
        the same ids regardless of dict or set ordering.

        ``min_count`` leaves out tokens seen fewer times. With ``<unk>`` among
        the specials this is how ``<unk>`` gets trained: otherwise every
        training word is known and its embedding is never updated, yet it is
        what every new word at test time looks up.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if len(set(specials)) != len(specials):
            raise ValueError(f"duplicate specials: {list(specials)}")
        counts = Counter(tokens)
        special_set = set(specials)
        rest = sorted(
            (t for t, c in counts.items() if c >= min_count and t not in special_set),
            key=lambda t: (-counts[t], t),
        )
        return cls([*specials, *rest])

    @property
    def tokens(self) -> tuple[str, ...]:
        """All entries, in id order."""
        return self._tokens

    @property
    def unk_id(self) -> int | None:
        """The id unknown tokens map to, or ``None`` if they are an error."""
        return self._ids.get(UNK)

    def index(self, token: str) -> int:
        """The id of ``token``, falling back to ``<unk>`` when it is present."""
        found = self._ids.get(token)
        if found is not None:
            return found
        unk = self.unk_id
        if unk is None:
            raise KeyError(f"token {token!r} is not in the vocabulary (and it has no {UNK})")
        return unk

    def encode(self, seq: Iterable[str]) -> np.ndarray:
        """Ids of ``seq`` as an int64 array (a string encodes per character)."""
        return np.fromiter((self.index(t) for t in seq), dtype=np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray) -> list[str]:
        """Tokens for ``ids``; negative ids are refused rather than wrapped."""
        out: list[str] = []
        n = len(self._tokens)
        for raw in ids:
            i = int(raw)
            if not 0 <= i < n:
                raise IndexError(f"id {i} is outside the vocabulary of size {n}")
            out.append(self._tokens[i])
        return out

    def to_json(self) -> list[str]:
        """A plain list of tokens in id order, for storing in a checkpoint."""
        return list(self._tokens)

    @classmethod
    def from_json(cls, data: Any) -> Vocab:
        """Rebuild from :meth:`to_json` output.

        Raises ``ValueError`` on anything else, so the checkpoint loader can
        report a corrupt file instead of crashing on it.
        """
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise ValueError("vocabulary must be a JSON list of strings")
        return cls(data)

    def __getitem__(self, token: str) -> int:
        return self._ids[token]

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self._tokens[:5])
        more = ", ..." if len(self._tokens) > 5 else ""
        return f"Vocab([{head}{more}], size={len(self._tokens)})"
