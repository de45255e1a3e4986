"""Elementwise nonlinearities and softmax.

Each forward caches the cheapest thing its backward needs (usually the
output, or a precomputed derivative array) so backward is one multiply and
never re-evaluates a comparison or a transcendental.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.kernels.base import Kernel, Params


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function via tanh: no overflow warnings for large |x|, and dtype-preserving."""
    y = np.tanh(x * 0.5)
    y += 1
    y *= 0.5
    return y


class _Elementwise(Kernel):
    """Shared plumbing: one input, same-shape output, no parameters, mask ignored.

    The mask is irrelevant here: values at padded positions are harmless as long
    as the loss ignores them, which keeps their gradient at zero.
    """

    def forward(
        self,
        params: Params,
        state: Params,
        xs: list[np.ndarray],
        mask: np.ndarray | None,
        train: bool,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, Any]:
        return self._apply(xs[0])

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, grads: Params
    ) -> list[np.ndarray | None]:
        return [self._grad(cache, dy)]

    def _apply(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _grad(self, cache: Any, dy: np.ndarray) -> np.ndarray:
        return dy * cache  # cache is the local derivative unless a subclass says otherwise


class LeakyReLU(_Elementwise):
    """``x if x > 0 else slope * x``."""

    def __init__(self, slope: float = 0.01) -> None:
        self.slope = float(slope)

    def _apply(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        d = (x > 0).astype(x.dtype)
        d *= 1.0 - self.slope
        d += self.slope  # d is 1 where x > 0, slope elsewhere: output and derivative at once
        return x * d, d


class ReLU(_Elementwise):
    """``max(x, 0)``."""

    def _apply(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        d = (x > 0).astype(x.dtype)
        return x * d, d


class Tanh(_Elementwise):
    """Hyperbolic tangent; backward uses ``1 - y^2`` from the cached output."""

    def _apply(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        y = np.tanh(x)
        return y, y

    def _grad(self, cache: Any, dy: np.ndarray) -> np.ndarray:
        return dy * (1 - cache * cache)


class Sigmoid(_Elementwise):
    """Logistic function; backward uses ``y (1 - y)`` from the cached output."""

    def _apply(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        y = stable_sigmoid(x)
        return y, y

    def _grad(self, cache: Any, dy: np.ndarray) -> np.ndarray:
        return dy * cache * (1 - cache)


class Softmax(_Elementwise):
    """Softmax over the last axis, shifted by the row max so exp never overflows."""

    def _apply(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        z = x - x.max(axis=-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        return z, z

    def _grad(self, cache: Any, dy: np.ndarray) -> np.ndarray:
        # Jacobian-vector product of diag(y) - y y^T without forming the Jacobian.
        y = cache
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
