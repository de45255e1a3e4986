"""Lookups, the dense layer, dropout, and the ops that join or rename values."""

from __future__ import annotations

from specc.backend.torch.lib import check_ids, torch, torch_dtype
from specc.backend.torch.op import Op
from specc.ir.ops.lookup import one_hot_width


class Embedding(Op):
    """y = E[x]: row x of the table for each token id."""

    def forward(self, params, state, xs, mask, train, rng):
        (ids,) = xs
        check_ids(ids, params["E"].shape[0], "embedding")  # words or letters
        return torch.nn.functional.embedding(ids, params["E"]), None


class OneHot(Op):
    """y = onehot(x): a row of the identity matrix for each token id."""

    def forward(self, params, state, xs, mask, train, rng):
        (ids,) = xs
        width = one_hot_width(self.node)
        vocab = self.sizes[width] if isinstance(width, str) else width
        check_ids(ids, vocab, "one_hot")
        table = torch.eye(vocab, dtype=torch_dtype(self.dtype), device=ids.device)
        return table[ids], None


class Dense(Op):
    """y = x·W + b on the last axis."""

    def forward(self, params, state, xs, mask, train, rng):
        y = xs[0] @ params["W"]
        return (y + params["b"] if self.node.bias else y), None


class Dropout(Op):
    """y = x·m/(1−p), m ~ Bernoulli(1−p), while training; y = x otherwise.

    The keep mask is drawn from the network's NumPy generator exactly as the other
    backends draw it, so a seed gives the same masks on every backend and device.
    In a distributed run (``rows`` set: this process's rows of the global batch)
    every process draws the whole batch's mask and keeps its rows, so the masks
    are the one-process run's.
    """

    rows: tuple[int, int, int] | None = None  # (start, stop, global batch)

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        p = self.node.p
        if not train or p == 0.0:
            return x, None
        shape = tuple(x.shape)
        if self.rows is not None and self.rows[1] - self.rows[0] == shape[0]:
            start, stop, total = self.rows
            keep = (rng.random((total, *shape[1:]), dtype=self.dtype) >= p)[start:stop]
        else:
            keep = rng.random(shape, dtype=self.dtype) >= p
        scale = keep.astype(self.dtype) * (1.0 / (1.0 - p))
        return x * torch.from_numpy(scale).to(x.device), None


class Concat(Op):
    """y = [x_1; x_2; …] on the last axis."""

    def forward(self, params, state, xs, mask, train, rng):
        return torch.cat(xs, dim=-1), None


class Add(Op):
    """y = x_1 + x_2 + …"""

    def forward(self, params, state, xs, mask, train, rng):
        return sum(xs[1:], xs[0]), None


class Identity(Op):
    """y = x"""

    def forward(self, params, state, xs, mask, train, rng):
        return xs[0], None
