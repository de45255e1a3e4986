"""Elementwise nonlinearities and softmax.

Each forward caches the cheapest thing its backward needs (usually the
output, or a precomputed derivative array) so backward is one multiply and
never re-evaluates a comparison or a transcendental.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.numpy.base import Kernel, Params, ones, softmax_shift
from specc.ir import ops


def stable_sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function via tanh: no overflow warnings for large |x|, and dtype-preserving."""
    y = np.multiply(x, 0.5, out=out)
    np.tanh(y, out=y)
    y += 1
    y *= 0.5
    return y


def activate(name: str, slope: float, src: np.ndarray, out: np.ndarray) -> None:
    """The nonlinearity ``name`` (an rnn's, or the op of that name) from ``src`` into
    ``out``; ``out`` may be ``src`` except for leaky_relu, which needs both."""
    if name == "tanh":
        np.tanh(src, out=out)
    elif name == "relu":
        np.maximum(src, 0, out=out)
    elif name == "sigmoid":
        stable_sigmoid(src, out=out)
    else:  # leaky: the larger of x and slope*x when slope <= 1, the smaller otherwise
        np.multiply(src, slope, out=out)
        (np.maximum if slope <= 1.0 else np.minimum)(out, src, out=out)


def derivative_from_output(name: str, slope: float, y: np.ndarray, out: np.ndarray) -> None:
    """The derivative of ``name`` at the inputs that gave outputs ``y``, into ``out``
    (which may be ``y``). For relu and leaky_relu (slope >= 0) the output is positive
    exactly where the input is, so ``y`` may also be the input itself."""
    if name == "tanh":
        np.multiply(y, y, out=out)
        np.subtract(1, out, out=out)
    elif name == "sigmoid":
        if out is y:
            np.multiply(y, np.subtract(1, y), out=out)
        else:
            np.subtract(1, y, out=out)
            out *= y
    else:
        positive_part(y, out)
        if name == "leaky_relu":
            _step_to_slope(out, slope)


class _Elementwise(Kernel):
    """Shared plumbing: one input, same-shape output, no parameters, mask ignored.

    The mask is irrelevant here: values at padded positions are harmless as long
    as the loss ignores them, which keeps their gradient at zero.

    With ``inplace`` the output is written over the input, and backward writes
    the gradient over ``dy`` and the derivative over the cached output (both
    the executor's to give away then). Without it nothing passed in changes.
    """

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
        return self._apply(xs[0], xs[0] if inplace else None)

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        if inplace:
            # Cache and dy are ours: the derivative is written over the cached
            # array where the formula allows, so backward allocates nothing.
            d = self._cache_array(cache)
            if d is None or d.shape != dy.shape:
                d = self._empty_like(dy)
            self._derivative(cache, d)
            dy *= d
            self._recycle(d)
            return [dy]
        d = self._empty_like(dy)
        self._derivative(cache, d)
        d *= dy
        return [d]

    def _apply(self, x: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _derivative(self, cache: Any, out: np.ndarray) -> None:
        """The local derivative, into ``out``, from what forward cached."""
        raise NotImplementedError

    def _cache_array(self, cache: Any) -> np.ndarray | None:
        """The cached array `_derivative` may also write its result over, if any."""
        return None

    #: Whether a batchnorm may apply this op to its own output block by block
    #: (the executor's fusion, see `Network._plan`): then only `act_block` and
    #: `deriv_block` are used, which see the output and never the input.
    fusable = False

    def act_block(self, v: np.ndarray, scratch: np.ndarray) -> None:
        """Apply the op to ``v`` in place; ``scratch`` is a temporary of v's shape."""
        raise NotImplementedError

    def deriv_block(self, y: np.ndarray, out: np.ndarray) -> None:
        """The derivative at the inputs that gave outputs ``y``, into ``out`` (may be ``y``)."""
        raise NotImplementedError


class LeakyReLU(_Elementwise):
    """``x if x > 0 else slope * x``.

    Forward caches only its output: for a slope >= 0 the output is positive
    exactly where the input is, so backward reads the derivative (1 or slope)
    off its sign. That output is usually the next dense layer's cached input
    anyway, so it costs no memory. A negative slope caches the derivative.
    """

    def __init__(self, node: ops.LeakyRelu, sizes: Any = None, dtype: Any = np.float32) -> None:
        super().__init__(node, sizes, dtype)
        self.slope = node.slope

    @property
    def fusable(self) -> bool:
        return self.slope >= 0  # a negative slope's output does not tell the input's sign

    def act_block(self, v: np.ndarray, scratch: np.ndarray) -> None:
        np.multiply(v, self.slope, out=scratch)
        (np.maximum if self.slope <= 1.0 else np.minimum)(v, scratch, out=v)

    def deriv_block(self, y: np.ndarray, out: np.ndarray) -> None:
        derivative_from_output("leaky_relu", self.slope, y, out)

    def _apply(self, x: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, Any]:
        s = self.slope
        scaled = np.multiply(x, s, out=self._empty_like(x))
        if s < 0:
            d = np.greater(x, 0).astype(x.dtype)
            _step_to_slope(d, s)
            y = np.maximum(x, scaled, out=scaled if out is None else out)
            return y, ("d", d)
        if s <= 1.0:
            y = np.maximum(x, scaled, out=scaled if out is None else out)
        else:
            y = np.minimum(x, scaled, out=scaled if out is None else out)
        if out is not None:
            self._recycle(scaled)  # only a temporary when the result went into x
        return y, ("y", y)

    def _derivative(self, cache: Any, out: np.ndarray) -> None:
        kind, a = cache
        if kind == "d":
            np.copyto(out, a)
        else:
            positive_part(a, out)
            _step_to_slope(out, self.slope)

    def _cache_array(self, cache: Any) -> np.ndarray | None:
        return cache[1]


def positive_part(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = 1.0 where a > 0 else 0.0``, in one pass; ``out`` may be ``a`` itself.

    (A comparison written straight into a float array: several times faster
    than np.sign, which is also ~10x slower still when run in place.)
    """
    return np.greater(a, 0, out=out, casting="unsafe")


def _step_to_slope(d: np.ndarray, slope: float) -> None:
    """Turn a 0/1 step into the leaky derivative: 1 where it is 1, else slope."""
    if 0.0 <= slope <= 1.0:
        np.maximum(d, slope, out=d)
    else:
        d *= 1.0 - slope
        d += slope


class ReLU(_Elementwise):
    """``max(x, 0)``; backward reads the derivative off the output's sign."""

    def _apply(self, x: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, Any]:
        y = np.maximum(x, 0, out=out)
        return y, y

    def _derivative(self, cache: Any, out: np.ndarray) -> None:
        positive_part(cache, out)  # the output is positive exactly where the input is

    def _cache_array(self, cache: Any) -> np.ndarray | None:
        return cache

    fusable = True

    def act_block(self, v: np.ndarray, scratch: np.ndarray) -> None:
        activate("relu", 0.0, v, v)

    def deriv_block(self, y: np.ndarray, out: np.ndarray) -> None:
        derivative_from_output("relu", 0.0, y, out)


class Tanh(_Elementwise):
    """Hyperbolic tangent; backward uses ``1 - y^2`` from the cached output."""

    def _apply(self, x: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, Any]:
        y = np.tanh(x, out=out)
        return y, y

    def _derivative(self, cache: Any, out: np.ndarray) -> None:
        derivative_from_output("tanh", 0.0, cache, out)

    def _cache_array(self, cache: Any) -> np.ndarray | None:
        return cache

    fusable = True

    def act_block(self, v: np.ndarray, scratch: np.ndarray) -> None:
        activate("tanh", 0.0, v, v)

    def deriv_block(self, y: np.ndarray, out: np.ndarray) -> None:
        derivative_from_output("tanh", 0.0, y, out)


class Gelu(_Elementwise):
    """The tanh form of GELU (see specc.backend.reference.elementwise.Gelu).

    Forward caches its input, which its producer keeps anyway, and backward
    recomputes the tanh: the output stays free for the next op to overwrite.
    """

    fresh_output = True
    _C, _A = float(np.sqrt(2 / np.pi)), 0.044715

    def _inner_tanh(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """tanh(√(2/π)·(x + 0.044715·x³)) into ``out``."""
        np.multiply(x, x, out=out)
        out *= self._A
        out += 1.0
        out *= x
        out *= self._C
        return np.tanh(out, out=out)

    def _apply(self, x: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, Any]:
        y = self._inner_tanh(x, self._empty_like(x))  # x is kept: never written over
        y += 1.0
        y *= x
        y *= 0.5
        return y, x

    def _derivative(self, x: np.ndarray, out: np.ndarray) -> None:
        t = self._inner_tanh(x, out)
        x2 = np.multiply(x, x)
        x2 *= 3 * self._A
        x2 += 1.0
        x2 *= self._C  # du/dx
        sech2 = np.multiply(t, t)
        np.subtract(1.0, sech2, out=sech2)
        sech2 *= x
        sech2 *= x2  # x·(1 − t²)·du/dx
        out += 1.0
        out += sech2
        out *= 0.5


class Sigmoid(_Elementwise):
    """Logistic function; backward uses ``y (1 - y)`` from the cached output."""

    def _apply(self, x: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, Any]:
        y = stable_sigmoid(x, out=out)
        return y, y

    def _derivative(self, cache: Any, out: np.ndarray) -> None:
        derivative_from_output("sigmoid", 0.0, cache, out)


class Softmax(_Elementwise):
    """Softmax over the last axis, shifted by a max so exp never overflows.

    The shift is the global max when the spread of ``x`` is small enough for
    every exp to stay a normal float (see `softmax_shift`), else the row max;
    row sums are a matrix-vector product.
    """

    def _apply(self, x: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, Any]:
        # The result is C-ordered whatever x's layout (a time-major x is read in place):
        # scaling 2-D rows by their sums is several times faster than broadcasting over
        # a strided 3-D view, and a model's output is then already in the order its
        # users get, with no copy at the end. A donated x that cannot take the result
        # goes back to the pool.
        y = out if out is not None and out.flags.c_contiguous else self._empty(x.shape, x.dtype)
        if x.size == 0:
            return y, y
        shift = softmax_shift(x)
        if shift is None:
            np.exp(x, out=y)
        else:
            np.exp(np.subtract(x, shift, out=y), out=y)
        if out is x and y is not x:
            self._recycle(x)
        rows = y.reshape(-1, y.shape[-1])
        sums = rows @ ones(rows.shape[-1], rows.dtype)
        np.divide(1.0, sums, out=sums)
        rows *= sums[:, None]
        return y, y

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        # Jacobian-vector product of diag(y) - y y^T without forming the Jacobian.
        y = cache
        dot = (dy * y).sum(axis=-1, keepdims=True)
        dx = np.subtract(dy, dot, out=dy if inplace else None)
        dx *= y
        return [dx]
