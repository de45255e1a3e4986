"""The simple recurrent layer, with backpropagation through time as one visible loop."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from specc.backend.carry import Carries
from specc.backend.reference.elementwise import sigmoid
from specc.backend.reference.op import Op


def act(name: str, slope: float, a: np.ndarray) -> np.ndarray:
    """The rnn's nonlinearity at the pre-activation ``a``."""
    if name == "tanh":
        return np.tanh(a)
    if name == "sigmoid":
        return sigmoid(a)
    if name == "relu":
        return np.maximum(a, 0)
    return np.where(a > 0, a, slope * a)  # leaky_relu


def act_grad(name: str, slope: float, a: np.ndarray) -> np.ndarray:
    """Its derivative at ``a``."""
    if name == "tanh":
        return 1 - np.tanh(a) ** 2
    if name == "sigmoid":
        s = sigmoid(a)
        return s * (1 - s)
    if name == "relu":
        return (a > 0).astype(a.dtype)
    return np.where(a > 0, 1.0, slope).astype(a.dtype)  # leaky_relu


class Recurrent(Carries, Op):
    """What every recurrent layer shares: the order of the steps, return=last, the
    carried state (see specc.backend.carry: the states start there, not at zero),
    and ``watch`` (which receives dL/dh_t of every step as (B, T, H), zero at padded
    steps)."""

    watch: Callable[[np.ndarray], None] | None = None

    def steps(self, t_len: int) -> range:
        """The order the steps run in."""
        return range(t_len - 1, -1, -1) if self.node.reverse else range(t_len)

    def last_steps(self, mask, batch: int, t_len: int) -> np.ndarray | None:
        """With return=last, the step whose state is returned: the last one run."""
        if self.node.return_ == "sequence":
            return None
        if self.node.reverse:
            return np.zeros(batch, dtype=int)
        if mask is None:
            return np.full(batch, t_len - 1)
        return np.maximum(mask.sum(axis=1).astype(int) - 1, 0)

    def upstream(self, dy: np.ndarray, last, shape: tuple[int, ...]) -> np.ndarray:
        """dL/dh_t from above at every step: only the returned state's with return=last."""
        if last is None:
            return dy
        dhs = np.zeros(shape, dy.dtype)
        dhs[np.arange(len(last)), last] = dy
        return dhs

    @staticmethod
    def mask_of(mask, x: np.ndarray) -> np.ndarray:
        """The (B, T) mask of real steps, all ones without padding."""
        batch, t_len, _ = x.shape
        return np.ones((batch, t_len), x.dtype) if mask is None else mask.astype(x.dtype)


class Rnn(Recurrent):
    """h_t = act(x_t·W_xh + h_{t−1}·W_hh + b), h_0 = 0 (or the carried state, see
    specc.backend.carry); reversed, h_{t+1} feeds h_t.

    A padded step's state is zero (h_t = act(a_t)·m_t), so a reversed row starts
    from zero at its last real token, exactly as if it had been run alone.
    ``watch``, when set, receives dL/dh_t of every step as (B, T, H).
    """

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        w_xh, w_hh, b = params["W_xh"], params["W_hh"], params["b"]
        batch, t_len, _ = x.shape
        m = self.mask_of(mask, x)
        name, slope = self.node.activation.name, self.node.activation.leak
        start = self.carried_in(batch, w_hh.shape[0])
        h = np.zeros((batch, w_hh.shape[0]), x.dtype) if start is None else start[0]
        hs, prevs, pres = (np.zeros((batch, t_len, w_hh.shape[0]), x.dtype) for _ in range(3))
        for t in self.steps(t_len):
            prevs[:, t] = h  # the state this step reads
            pres[:, t] = x[:, t] @ w_xh + h @ w_hh + b
            h = act(name, slope, pres[:, t]) * m[:, t, None]
            hs[:, t] = h
        if start is not None:
            self.carry = (h.copy(),)
        last = self.last_steps(mask, batch, t_len)
        y = hs if last is None else hs[np.arange(batch), last]
        return y, (x, prevs, pres, m, last)

    def backward(self, params, cache, dy, grads):
        x, prevs, pres, m, last = cache
        w_xh, w_hh = params["W_xh"], params["W_hh"]
        name, slope = self.node.activation.name, self.node.activation.leak
        dhs = self.upstream(dy, last, pres.shape)
        dx = np.zeros_like(x)
        dh_all = np.zeros_like(pres)
        carry = np.zeros_like(dhs[:, 0])  # dL/dh_t arriving from the step after it
        for t in reversed(self.steps(x.shape[1])):
            dh = dhs[:, t] + carry  # dL/dh_t
            dh_all[:, t] = dh * m[:, t, None]
            da = dh * act_grad(name, slope, pres[:, t]) * m[:, t, None]  # dL/da_t
            grads["W_xh"] += x[:, t].T @ da
            grads["W_hh"] += prevs[:, t].T @ da
            grads["b"] += da.sum(axis=0)
            dx[:, t] = da @ w_xh.T
            carry = da @ w_hh.T
        if self.watch is not None:
            self.watch(dh_all)
        return [dx]
