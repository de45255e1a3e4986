"""Simple (Elman) recurrent layer with hand-written backpropagation through time.

Speed comes from keeping Python out of everything but the time loop: the
input projection for all steps is one matmul, data is time-major inside so
each step reads a contiguous ``(B, H)`` slab, buffers are preallocated, and
all weight gradients are single matmuls over the stacked steps after BPTT.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.init import RNN_INITS, rnn_params
from specc.backend.kernels.base import Kernel, Params, Shapes, feature_dim, float_dtype

RNN_ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu")


class RNN(Kernel):
    """``h_t = act(x_t @ W_xh + h_{t-1} @ W_hh + b)`` with ``h_0 = 0``.

    Under a mask, ``h_t`` at padded steps is forced to zero. Because padding
    is only at the end of each row, a forward run never reads a padded state,
    and a reversed run starts every row from a zero state at its true last
    token, exactly as if the row had been run alone.

    ``reverse`` is implemented by flipping time once on the way in and once on
    the way out, so the loop itself always runs forwards and BPTT backwards.

    Diagnostics: set ``record_dh`` to a list and every backward stores the
    per-step norm of dL/dh_t (including what arrives through time) in
    ``last_dh_norms`` (indexed by original t) and appends it to the list.
    """

    param_names = ("W_xh", "W_hh", "b")

    def __init__(
        self,
        hidden: int,
        activation: str = "tanh",
        slope: float = 0.01,
        init: str = "default",
        reverse: bool = False,
        return_last: bool = False,
    ) -> None:
        if int(hidden) <= 0:
            raise ValueError(f"rnn hidden size must be positive, got {hidden}")
        if activation not in RNN_ACTIVATIONS:
            raise ValueError(f"unknown rnn activation {activation!r}; expected {RNN_ACTIVATIONS}")
        if init not in RNN_INITS:
            raise ValueError(f"unknown rnn init {init!r}; expected one of {RNN_INITS}")
        self.hidden = int(hidden)
        self.activation = activation
        self.slope = float(slope)
        self.init = init
        self.reverse = bool(reverse)
        self.return_last = bool(return_last)
        self.record_dh: list[np.ndarray] | None = None
        self.last_dh_norms: np.ndarray | None = None

    def param_shapes(self, in_shapes: Shapes) -> dict[str, tuple[int, ...]]:
        n, h = feature_dim(in_shapes), self.hidden
        return {"W_xh": (n, h), "W_hh": (h, h), "b": (h,)}

    def init_params(self, in_shapes: Shapes, rng: np.random.Generator, dtype: Any) -> Params:
        return rnn_params(self.init, feature_dim(in_shapes), self.hidden, rng, float_dtype(dtype))

    def _activate(self, pre: np.ndarray, out: np.ndarray) -> None:
        """Apply the nonlinearity for one step into ``out`` without temporaries."""
        act = self.activation
        if act == "tanh":
            np.tanh(pre, out=out)
        elif act == "relu":
            np.maximum(pre, 0, out=out)
        elif act == "sigmoid":
            # 0.5 * (1 + tanh(x/2)) never overflows, unlike 1 / (1 + exp(-x)).
            np.multiply(pre, 0.5, out=out)
            np.tanh(out, out=out)
            out += 1
            out *= 0.5
        else:
            # leaky: the larger of x and slope*x when slope <= 1, the smaller otherwise.
            np.multiply(pre, self.slope, out=out)
            if self.slope <= 1.0:
                np.maximum(out, pre, out=out)
            else:
                np.minimum(out, pre, out=out)

    def _derivative(self, pre: np.ndarray, hs: np.ndarray) -> np.ndarray:
        """act'(pre) for all steps at once, written over ``pre`` where possible."""
        act = self.activation
        if act == "tanh":
            np.multiply(hs, hs, out=pre)
            np.subtract(1, pre, out=pre)
            return pre
        if act == "sigmoid":
            np.subtract(1, hs, out=pre)
            pre *= hs
            return pre
        d = (pre > 0).astype(pre.dtype)
        if act == "leaky_relu":
            d *= 1.0 - self.slope
            d += self.slope
        return d

    def forward(
        self,
        params: Params,
        state: Params,
        xs: list[np.ndarray],
        mask: np.ndarray | None,
        train: bool,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, Any]:
        x = xs[0]
        if x.ndim != 3:
            raise ValueError(f"rnn expects (batch, time, features), got shape {x.shape}")
        b_sz, t_len, n_in = x.shape
        hid, dt = self.hidden, x.dtype
        w_xh, w_hh, bias = params["W_xh"], params["W_hh"], params["b"]

        xt = x.transpose(1, 0, 2)
        if self.reverse:
            xt = xt[::-1]
        xt = np.ascontiguousarray(xt)  # (T, B, N), in processing order

        # One matmul for every step's input projection; the loop adds the recurrence in place.
        pre = np.matmul(xt.reshape(t_len * b_sz, n_in), w_xh).reshape(t_len, b_sz, hid)
        pre += bias

        m = None
        if mask is not None:
            if mask.shape != (b_sz, t_len):
                raise ValueError(f"mask shape {mask.shape} does not match input {x.shape[:2]}")
            mt = mask.T.astype(dt)
            if self.reverse:
                mt = mt[::-1]
            m = np.ascontiguousarray(mt)[:, :, None]  # (T, B, 1)

        # hbuf[0] is h_0 = 0 and hbuf[t+1] is h_t, so hbuf[:-1] is every step's h_{t-1}.
        hbuf = np.empty((t_len + 1, b_sz, hid), dtype=dt)
        hbuf[0] = 0
        rec = np.empty((b_sz, hid), dtype=dt)
        for t in range(t_len):
            np.matmul(hbuf[t], w_hh, out=rec)
            pre_t = pre[t]
            pre_t += rec
            h_t = hbuf[t + 1]
            self._activate(pre_t, h_t)
            if m is not None:
                h_t *= m[t]

        hs = hbuf[1:]
        d = self._derivative(pre, hs)  # mask folded in: padded steps pass no gradient
        if m is not None:
            d *= m

        if self.return_last:
            if m is None or self.reverse:
                last = np.full(b_sz, t_len - 1, dtype=np.intp)
            else:
                last = np.maximum(mask.sum(axis=1).astype(np.intp) - 1, 0)
            y = hs[last, np.arange(b_sz)]
        else:
            last = None
            y = hs[::-1] if self.reverse else hs
            y = np.ascontiguousarray(y.transpose(1, 0, 2))
        return y, (xt, hbuf, d, m, last)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, grads: Params
    ) -> list[np.ndarray | None]:
        xt, hbuf, d, m, last = cache
        t_len, b_sz, hid = d.shape
        n_in = xt.shape[2]
        dt = d.dtype
        w_hh_t = params["W_hh"].T

        if last is not None:
            dhs = np.zeros((t_len, b_sz, hid), dtype=dt)
            dhs[last, np.arange(b_sz)] = dy
        else:
            dhs = dy.transpose(1, 0, 2)
            if self.reverse:
                dhs = dhs[::-1]

        record = isinstance(self.record_dh, list)
        norms = np.zeros(t_len) if record else None
        dpre = np.empty((t_len, b_sz, hid), dtype=dt)
        carry = np.zeros((b_sz, hid), dtype=dt)  # dL/dh_t arriving from step t+1
        for t in reversed(range(t_len)):
            g = dpre[t]
            np.add(dhs[t], carry, out=g)  # total dL/dh_t
            if norms is not None:
                norms[t] = np.linalg.norm(g if m is None else g * m[t])
            g *= d[t]
            np.matmul(g, w_hh_t, out=carry)

        flat = dpre.reshape(t_len * b_sz, hid)
        grads["W_hh"] += hbuf[:-1].reshape(t_len * b_sz, hid).T @ flat
        grads["W_xh"] += xt.reshape(t_len * b_sz, n_in).T @ flat
        grads["b"] += flat.sum(axis=0)
        dxt = (flat @ params["W_xh"].T).reshape(t_len, b_sz, n_in)
        if self.reverse:
            dxt = dxt[::-1]
        dx = np.ascontiguousarray(dxt.transpose(1, 0, 2))

        if norms is not None:
            self.last_dh_norms = norms[::-1].copy() if self.reverse else norms
            self.record_dh.append(self.last_dh_norms)
        return [dx]
