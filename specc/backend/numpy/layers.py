"""Dense projection, dropout, and the ops that join several inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.numpy.base import (
    Kernel,
    Params,
    colsum,
    from_rows,
    token_rows,
)
from specc.backend.numpy.blas import gemm
from specc.ir import ops


class Dense(Kernel):
    """``x @ W + b`` on the last axis of (..., N); N is learnt from ``in_shapes``.

    (B, T, N) inputs are multiplied as one (B*T, N) matrix: a 3-D ``@`` would
    be B separate small matrix products.
    """

    fresh_output = True
    #: Its product can be made a block of rows at a time (see specc.backend.numpy.fusion).
    projects_rows = True

    def __init__(self, node: ops.Dense, sizes: Any = None, dtype: Any = np.float32) -> None:
        super().__init__(node, sizes, dtype)
        self.units = self._size(node.units)
        self.bias = node.bias

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
        x = xs[0]
        x2, tm = token_rows(x)
        y = self.empty_rows(x2.shape[0], params, x2.dtype)
        self.project_rows(params, x2, y)
        return from_rows(y, x.shape, tm), (x2, tm)

    def empty_rows(self, rows: int, params: Params, dtype: Any) -> np.ndarray:
        """An uninitialised output for ``rows`` input rows of ``dtype``."""
        return self._empty((rows, self.units), np.result_type(dtype, params["W"].dtype))

    def project_rows(self, params: Params, x2: np.ndarray, out: np.ndarray) -> None:
        """``out = x2 @ W + b`` for a block of rows (see `BatchNorm.forward`'s ``project``)."""
        gemm(x2, params["W"].astype(out.dtype, copy=False), out)
        if self.bias:
            out += params["b"]

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        dy2 = self.weight_grads(cache, dy, grads, fresh_grads)
        w = params["W"]
        dx = self._empty((dy2.shape[0], w.shape[0]), dy2.dtype)
        self.input_grad_rows(params, dy2, dx)
        if inplace:
            self._recycle(dy)
        return [from_rows(dx, dy.shape, cache[1])]

    def weight_grads(
        self, cache: Any, dy: np.ndarray, grads: Params, fresh_grads: bool = False
    ) -> np.ndarray:
        """The gradients of W and b (see `Kernel.backward`); returns ``dy`` as rows in
        the order of the cached input's rows, for `input_grad_rows`."""
        x2, tm = cache
        dy2, _ = token_rows(dy, tm)
        gemm(x2, dy2, grads["W"], trans_a=True, accumulate=not fresh_grads)
        if self.bias:
            grads["b"] += colsum(dy2)
        return dy2

    def transposed_weight(self, params: Params, dtype: Any) -> np.ndarray:
        """A C-ordered copy of W.T for `input_grad_rows`: both BLAS libraries are
        slower on a transposed operand, and one copy serves every block."""
        return np.ascontiguousarray(params["W"].T, dtype=dtype)

    def input_grad_rows(
        self, params: Params, dy2: np.ndarray, out: np.ndarray, w_t: np.ndarray | None = None
    ) -> None:
        """``out = dy2 @ W.T`` for a block of rows (see `BatchNorm.backward`'s
        ``project``); ``w_t``, a C-ordered copy of W.T, serves many blocks."""
        if w_t is None:
            gemm(dy2, params["W"].astype(out.dtype, copy=False), out, trans_b=True)
        else:
            gemm(dy2, w_t, out)


class Dropout(Kernel):
    """Inverted dropout: scale kept units by 1/(1-p) in training so eval is the identity."""

    def __init__(self, node: ops.Dropout, sizes: Any = None, dtype: Any = np.float32) -> None:
        super().__init__(node, sizes, dtype)
        self.p = node.p

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
        x = xs[0]
        if not train or self.p == 0.0:
            return x, None
        keep = rng.random(x.shape, dtype=x.dtype) >= self.p
        scale = keep.astype(x.dtype)
        scale *= 1.0 / (1.0 - self.p)
        if inplace:
            x *= scale
            return x, scale
        return x * scale, scale

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        if cache is None:
            return [dy]
        if inplace:
            dy *= cache
            return [dy]
        return [dy * cache]


class Concat(Kernel):
    """Join inputs along the last axis; backward splits the gradient back."""

    fresh_output = True

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
        sizes = [x.shape[-1] for x in xs]
        return np.concatenate(xs, axis=-1), np.cumsum(sizes)[:-1]

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        return list(np.split(dy, cache, axis=-1))


class Add(Kernel):
    """Sum of equal-shape inputs; each input gets its own copy of the gradient.

    Copies, not one shared array, so an executor that accumulates into an
    input's gradient in place cannot corrupt a sibling's.
    """

    fresh_output = True

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
        shape = xs[0].shape
        if any(x.shape != shape for x in xs[1:]):
            raise ValueError(f"add needs equal shapes, got {[x.shape for x in xs]}")
        y = xs[0].copy()
        for x in xs[1:]:
            y += x
        return y, len(xs)

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        first = dy if inplace else dy.copy()
        return [first, *(dy.copy() for _ in range(cache - 1))]
