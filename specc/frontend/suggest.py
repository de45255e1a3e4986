""" "Did you mean" hints drawn from the real registries."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A help line naming the closest candidate, or None when nothing is close."""
    options = sorted(set(candidates))
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not match and len(word) <= 3:
        return None
    if not match:
        lowered = {o.lower(): o for o in options}
        if word.lower() in lowered:
            match = [lowered[word.lower()]]
    return f"did you mean '{match[0]}'?" if match else None


def one_of(options: Iterable[str]) -> str:
    items = [f"'{o}'" for o in options]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
