"""Lookups, the dense layer, dropout, and the ops that join or rename values."""

from __future__ import annotations

import numpy as np

from specc.backend.reference.op import Op
from specc.ir.ops.lookup import one_hot_width


class Embedding(Op):
    """y = E[x]: row x of the table for each token id; dE[x] += dy"""

    def forward(self, params, state, xs, mask, train, rng):
        (ids,) = xs
        _check_ids(ids, params["E"].shape[0], "embedding")  # words or letters
        return params["E"][ids], ids

    def backward(self, params, ids, dy, grads):
        np.add.at(grads["E"], ids.reshape(-1), dy.reshape(-1, dy.shape[-1]))
        return [None]  # ids are integers: no gradient


class OneHot(Op):
    """y = onehot(x): a row of the identity matrix for each token id"""

    def forward(self, params, state, xs, mask, train, rng):
        (ids,) = xs
        width = one_hot_width(self.node)
        vocab = self.sizes[width] if isinstance(width, str) else width
        _check_ids(ids, vocab, "one_hot")
        return np.eye(vocab, dtype=self.dtype)[ids], None

    def backward(self, params, cache, dy, grads):
        return [None]


class Dense(Op):
    """y = x·W + b on the last axis; dW = xᵀ·dy, db = Σ dy, dx = dy·Wᵀ"""

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        y = x @ params["W"]
        if self.node.bias:
            y = y + params["b"]
        return y, x

    def backward(self, params, x, dy, grads):
        x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
        grads["W"] += x2.T @ dy2
        if self.node.bias:
            grads["b"] += dy2.sum(axis=0)
        return [dy @ params["W"].T]


class Dropout(Op):
    """y = x·m/(1−p), m ~ Bernoulli(1−p), while training; y = x otherwise"""

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        p = self.node.p
        if not train or p == 0.0:
            return x, None
        keep = rng.random(x.shape, dtype=x.dtype) >= p
        scale = keep.astype(x.dtype) * (1.0 / (1.0 - p))
        return x * scale, scale

    def backward(self, params, scale, dy, grads):
        return [dy if scale is None else dy * scale]


class Concat(Op):
    """y = [x_1; x_2; …] on the last axis; the gradient is split back"""

    def forward(self, params, state, xs, mask, train, rng):
        return np.concatenate(xs, axis=-1), [x.shape[-1] for x in xs]

    def backward(self, params, widths, dy, grads):
        return np.split(dy, np.cumsum(widths)[:-1], axis=-1)


class Add(Op):
    """y = x_1 + x_2 + …; each input gets dy"""

    def forward(self, params, state, xs, mask, train, rng):
        return sum(xs[1:], xs[0]), len(xs)

    def backward(self, params, count, dy, grads):
        return [dy.copy() for _ in range(count)]


class Identity(Op):
    """y = x"""

    def forward(self, params, state, xs, mask, train, rng):
        return xs[0], None

    def backward(self, params, cache, dy, grads):
        return [dy]


def _check_ids(ids: np.ndarray, vocab: int, op: str) -> None:
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(
            f"{op}: token id out of range [0, {vocab}): min {ids.min()}, max {ids.max()}"
        )
