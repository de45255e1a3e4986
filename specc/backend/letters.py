"""A recurrent layer run along the letters of each word, on any backend.

A layer on letters (B, T, C, N) is the same layer on a batch of words: the
words of the batch become the rows, the letters its time axis, and each
word's length (its non-zero letter ids) its mask, so a reversed layer starts
at each word's last letter and `return=last` reads the state after it.
Positions past a sentence's end (no letters) are skipped and cost nothing.
The words run in groups of similar length (1, 2, 3-4, 5-8, 9-16 letters, ...),
each group only as many steps as its longest word, so one long word in a
batch does not make every short word run its length. Where the layer's input
is the same for every occurrence of a spelling (it comes from `spell` by ops
that treat each word alike: no dropout, no batch statistics), a word that
occurs several times in a batch runs once, and its occurrences share the
result; backward then hands the whole gradient of its occurrences to the
first, which is what the embedding of the letters sums anyway. The backend's own
kernel does the work, fast paths included; this only gathers the words in
and scatters the results back.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def length_groups(lengths: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """The rows of the words (length > 0), grouped by ⌈log2 length⌉, each group with
    its longest length: groups of words within a factor of two of each other."""
    real = np.flatnonzero(lengths)
    keys = np.ceil(np.log2(lengths[real])).astype(np.int64)
    groups = []
    for key in np.unique(keys):
        rows = real[keys == key]
        groups.append((rows, int(lengths[rows].max())))
    return groups


def shared_runs(words: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Where a spelling occurs more than once among the rows ``words`` (B·T, C): each
    row's representative (the first row with its spelling; None when every word is
    spelled once), and the lengths with every other occurrence's set to 0 so it does
    not run."""
    real = np.flatnonzero(lengths)
    _, first, inverse = np.unique(words[real], axis=0, return_index=True, return_inverse=True)
    if len(first) == len(real):
        return None, lengths
    reps = real[first]
    src = np.arange(len(words))
    src[real] = reps[inverse.reshape(-1)]
    only = np.zeros_like(lengths)
    only[reps] = lengths[reps]
    return src, only


class Letters:
    """Wraps a backend's recurrent kernel; reads ``xs = [x (B, T, C, N), letters (B, T, C)]``.

    Everything else (``watch``, the buffer pool, traits) is the wrapped kernel's.
    """

    def __init__(self, kernel: Any, alike: bool = False) -> None:
        object.__setattr__(self, "kernel", kernel)
        #: the input is the same for every occurrence of a spelling: run each once
        object.__setattr__(self, "alike", alike)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kernel, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.kernel, name, value)

    # The array library: NumPy here, torch in its subclass.
    def _numpy(self, letters: Any) -> np.ndarray:
        return letters

    def _index(self, rows: np.ndarray, like: Any) -> Any:
        return rows

    def _zeros(self, like: Any, shape: tuple[int, ...]) -> Any:
        return np.zeros(shape, dtype=like.dtype)

    def _mask(self, rows: Any, width: int, letters: Any, like: Any) -> Any:
        return (letters[rows, :width] > 0).astype(like.dtype)

    def forward(self, params, state, xs, mask, train, rng, **options):
        x, letters = xs
        b, t, c = letters.shape
        last = self.kernel.node.return_ == "last"
        hidden = int(params["W_hh"].shape[0])
        words = letters.reshape(b * t, c)
        xw = x.reshape(b * t, c, x.shape[-1])
        flat = self._numpy(letters).reshape(b * t, c)
        lengths = (flat > 0).sum(-1)
        src = None
        if self.alike:
            src, lengths = shared_runs(flat, lengths)
        out = self._zeros(x, (b * t, hidden) if last else (b * t, c, hidden))
        if "inplace" in options:
            options["inplace"] = True  # the gathered words are ours
        caches = []
        for found, width in length_groups(lengths):
            rows = self._index(found, x)
            group = [xw[rows, :width]]
            m = self._mask(rows, width, words, x)
            y, cache = self.kernel.forward(params, state, group, m, train, rng, **options)
            if last:
                out[rows] = y
            else:
                out[rows, :width] = y
            caches.append((rows, width, cache))
        if src is not None:
            src = self._index(src, x)
            out = out[src]
        shape = (b, t, hidden) if last else (b, t, c, hidden)
        return out.reshape(shape), (caches, x.shape, src)

    def backward(self, params, cache, dy, grads, **options):
        caches, shape, src = cache
        b, t = shape[:2]
        last = self.kernel.node.return_ == "last"
        dyw = dy.reshape(b * t, *dy.shape[2:])
        if src is not None:  # every occurrence's gradient, to the one that ran
            summed = np.zeros_like(dyw)
            np.add.at(summed, src, dyw)
            dyw = summed
        dx = self._zeros(dy, (b * t, *shape[2:]))
        fresh = options.get("fresh_grads", False)
        if "inplace" in options:
            options["inplace"] = True  # the gathered gradients are ours
        for i, (rows, width, inner) in enumerate(caches):
            if "fresh_grads" in options:  # only the first group may write over the gradients
                options["fresh_grads"] = fresh and i == 0
            dyg = dyw[rows] if last else dyw[rows, :width]
            (dxg,) = self.kernel.backward(params, inner, dyg, grads, **options)
            dx[rows, :width] = dxg
        if fresh and not caches:  # nothing ran: the gradients promised fresh are zero
            for g in grads.values():
                g.fill(0)
        return [dx.reshape(shape), None]

    def release(self, cache: Any) -> None:
        for _, _, inner in cache[0]:
            self.kernel.release(inner)
