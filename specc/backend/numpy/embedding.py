"""Ops that turn integer token ids into vectors.

Ids are integers, so these ops return ``None`` as their input gradient.
Every id, padding included, must be a valid index: the executor pads with a
real id (e.g. 0) and the downstream mask makes its value irrelevant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.numpy.base import (
    POOL_MIN_SIZE,
    Kernel,
    Params,
    ids_in_range,
    token_rows,
)
from specc.backend.numpy.blas import gemm
from specc.ir import ops
from specc.ir.ops.lookup import one_hot_width


def _check_ids(ids: np.ndarray, vocab: int, op: str) -> None:
    """Reject out-of-range ids up front; negative ones would otherwise wrap silently."""
    if ids.dtype.kind not in "iu":
        raise ValueError(f"{op} expects integer token ids, got dtype {ids.dtype}")
    if not ids_in_range(ids, vocab):
        raise ValueError(
            f"{op}: token id out of range [0, {vocab}): min {ids.min()}, max {ids.max()}"
        )


# Embedding backward sums the gradient rows of each id with a matrix product against
# an indicator matrix when the vocabulary is small (its cost grows with the vocabulary),
# built for a chunk of tokens at a time so it stays in cache (entries per chunk).
_ONE_HOT_MAX_VOCAB = 256
_ONE_HOT_CHUNK = 1 << 18


class Embedding(Kernel):
    """Row lookup ``E[ids]``: ids (B, T) -> (B, T, dim)."""

    fresh_output = True

    def __init__(self, node: ops.Embedding, sizes: Any = None, dtype: Any = np.float32) -> None:
        super().__init__(node, sizes, dtype)
        self.dim = self._size(node.dim)

    def forward(
        self,
        params: Params,
        state: Params,
        xs: list[np.ndarray],
        mask: np.ndarray | None,
        train: bool,
        rng: np.random.Generator,
        inplace: bool = False,
    ) -> tuple[np.ndarray, Any]:
        ids = xs[0]
        e = params["E"]  # its rows are the vocabulary the ids index (words or letters)
        _check_ids(ids, e.shape[0], "embedding")
        if ids.size * self.dim < POOL_MIN_SIZE:
            return e[ids], ids
        return np.take(e, ids, axis=0, out=self._empty((*ids.shape, self.dim), e.dtype)), ids

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        rows, tm = token_rows(dy)
        ids = (cache.T if tm else cache).reshape(-1)  # in the rows' order
        if ids.size == 0:
            return [None]
        vocab = params["E"].shape[0]
        if vocab <= _ONE_HOT_MAX_VOCAB:
            # Scatter ones into a (tokens, vocab) indicator matrix, a chunk of tokens at
            # a time, and let one matrix product per chunk sum the rows of each id.
            step = max(1, _ONE_HOT_CHUNK // vocab)
            hot = self._empty((min(step, ids.size), vocab), rows.dtype)
            flat_hot = hot.reshape(-1)
            for start in range(0, ids.size, step):
                chunk = ids[start : start + step]
                part = hot[: chunk.size]
                part.fill(0)
                flat_hot[np.arange(0, part.size, vocab) + chunk] = 1
                add = not (fresh_grads and start == 0)
                gemm(part, rows[start : start + step], grads["E"], trans_a=True, accumulate=add)
            self._recycle(hot)
            if inplace:
                self._recycle(dy)
            return [None]
        # Sort once and sum runs of equal ids with reduceat: vectorised, and much faster
        # than np.add.at on 2-D rows. Each unique id then receives exactly one +=.
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
        sums = np.add.reduceat(rows[order], starts, axis=0)
        grads["E"][sorted_ids[starts]] += sums
        if inplace:
            self._recycle(dy)
        return [None]


class OneHot(Kernel):
    """ids (B, T) -> (B, T, vocab) indicator vectors; nothing to learn.

    There are no parameters to take a dtype from: it computes in the
    network's dtype, given to the constructor.
    """

    fresh_output = True

    def __init__(self, node: ops.OneHot, sizes: Any = None, dtype: Any = np.float32) -> None:
        super().__init__(node, sizes, dtype)
        self.vocab = self._size(one_hot_width(node))

    def forward(
        self,
        params: Params,
        state: Params,
        xs: list[np.ndarray],
        mask: np.ndarray | None,
        train: bool,
        rng: np.random.Generator,
        inplace: bool = False,
    ) -> tuple[np.ndarray, Any]:
        ids = xs[0]
        _check_ids(ids, self.vocab, "one_hot")
        out = np.zeros((*ids.shape, self.vocab), dtype=self.dtype)
        np.put_along_axis(out, ids[..., None], 1, axis=-1)
        return out, None

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        return [None]
