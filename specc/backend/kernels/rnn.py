"""Simple (Elman) recurrent layer with hand-written backpropagation through time.

Speed comes from keeping Python and extra array passes out of the time loop.
Data is time-major inside, and each step's row ``[x_t | h_{t-1} | 1]`` sits
contiguous in one buffer ``z``, so a step is one matmul with the stacked
weights ``[W_xh; W_hh; b]`` (a view of the executor's flat parameters, which
hold them in that order) and one activation written into the slot of ``h_t``.
The output is a time-major view of those slots (see `token_rows`), not a copy.
Backward is three calls per step, and all weight gradients are a single
matmul over the stacked steps after BPTT.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.init import RNN_INITS, rnn_params
from specc.backend.kernels.base import (
    BLOCK_SIZE,
    Kernel,
    Params,
    Shapes,
    feature_dim,
    float_dtype,
)

RNN_ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu")


def stacked_rows(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, dtype: Any, view_only: bool = False
) -> np.ndarray | None:
    """The matrix [a; b; c] (c a single row), as a view when the three already lie
    back to back in one buffer, as the executor's flat parameters and gradients do
    (`param_names` order); otherwise a copy, or ``None`` with ``view_only``."""
    if (
        a.dtype == b.dtype == c.dtype == dtype
        and a.ndim == b.ndim == 2
        and a.shape[1] == b.shape[1] == c.shape[0]
        and a.flags.c_contiguous
        and b.flags.c_contiguous
        and c.flags.c_contiguous
        and a.ctypes.data + a.nbytes == b.ctypes.data
        and b.ctypes.data + b.nbytes == c.ctypes.data
    ):
        rows = a.shape[0] + b.shape[0] + 1
        return np.lib.stride_tricks.as_strided(a, shape=(rows, a.shape[1]), strides=a.strides)
    if view_only:
        return None
    return np.concatenate((a, b, c[None, :]), axis=0).astype(dtype, copy=False)


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
        self._stack: tuple[Any, Any] = (None, None)
        self._grad_stack: tuple[Any, Any] = (None, None)
        self.record_dh: list[np.ndarray] | None = None
        self.last_dh_norms: np.ndarray | None = None

    def param_shapes(self, in_shapes: Shapes) -> dict[str, tuple[int, ...]]:
        n, h = feature_dim(in_shapes), self.hidden
        return {"W_xh": (n, h), "W_hh": (h, h), "b": (h,)}

    def init_params(self, in_shapes: Shapes, rng: np.random.Generator, dtype: Any) -> Params:
        return rnn_params(self.init, feature_dim(in_shapes), self.hidden, rng, float_dtype(dtype))

    def _activate(self, out: np.ndarray, src: np.ndarray) -> None:
        """Apply the nonlinearity for one step, from ``src`` into ``out``."""
        act = self.activation
        if act == "tanh":
            np.tanh(src, out=out)
        elif act == "relu":
            np.maximum(src, 0, out=out)
        elif act == "sigmoid":
            # 0.5 * (1 + tanh(x/2)) never overflows, unlike 1 / (1 + exp(-x)).
            np.multiply(src, 0.5, out=out)
            np.tanh(out, out=out)
            out += 1
            out *= 0.5
        else:
            # leaky: the larger of x and slope*x when slope <= 1, the smaller otherwise.
            np.multiply(src, self.slope, out=out)
            if self.slope <= 1.0:
                np.maximum(out, src, out=out)
            else:
                np.minimum(out, src, out=out)

    def _needs_pre(self) -> bool:
        """Whether act'(pre) cannot be read off the output: only a negative leaky slope,
        where a positive output may come from a negative pre-activation."""
        return self.activation == "leaky_relu" and self.slope < 0

    def _derivative(self, hs: np.ndarray, pre: np.ndarray | None, out: np.ndarray) -> None:
        """act'(pre) for all steps at once, into ``out``, from the outputs ``hs``."""
        act = self.activation
        if act == "tanh":
            np.multiply(hs, hs, out=out)
            np.subtract(1, out, out=out)
        elif act == "sigmoid":
            np.subtract(1, hs, out=out)
            out *= hs
        else:
            # relu and leaky (slope >= 0): the output is positive exactly where pre is.
            np.greater(hs if pre is None else pre, 0, out=out, casting="unsafe")  # 1 or 0
            slope = 0.0 if act == "relu" else self.slope
            if 0.0 <= slope <= 1.0:
                np.maximum(out, slope, out=out)  # 1 where positive, slope elsewhere
            else:
                out *= 1.0 - slope
                out += slope

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
        if x.ndim != 3:
            raise ValueError(f"rnn expects (batch, time, features), got shape {x.shape}")
        b_sz, t_len, n_in = x.shape
        hid = self.hidden
        w_xh, w_hh, bias = params["W_xh"], params["W_hh"], params["b"]
        dt = np.result_type(x.dtype, w_hh.dtype)
        k = hid + n_in + 1

        # z[t] is the row [x_t | h_{t-1} | 1] of step t, time-major and in processing
        # order, so one matmul with W = [W_xh; W_hh; b] is a whole step's
        # pre-activation: no separate input projection, bias pass or add.
        # h_t is written into z[t+1, :, N:N+H]; z[0, :, N:N+H] is h_0 = 0.
        z = self._empty((t_len + 1, b_sz, k), dt)
        xt = x.transpose(1, 0, 2)
        z[:t_len, :, :n_in] = xt[::-1] if self.reverse else xt
        z[:t_len, :, k - 1] = 1
        z[0, :, n_in : n_in + hid] = 0
        z[t_len, :, :n_in] = 0
        z[t_len, :, k - 1] = 0
        if inplace:
            self._recycle(x)  # copied into z; nothing else reads it
        w = self._stack[1] if w_xh is self._stack[0] and w_xh.dtype == dt else None
        if w is None:
            w = stacked_rows(w_xh, w_hh, bias, dt)

        m = None
        if mask is not None:
            if mask.shape != (b_sz, t_len):
                raise ValueError(f"mask shape {mask.shape} does not match input {x.shape[:2]}")
            mt = mask.T.astype(dt)
            if self.reverse:
                mt = mt[::-1]
            m = np.ascontiguousarray(mt)[:, :, None]  # (T, B, 1)

        # Each step's product goes to a contiguous row block (np.dot, cheaper than
        # np.matmul for small products, needs one), then the activation writes h_t.
        # A negative leaky slope keeps every pre-activation for backward.
        pre = np.empty((t_len, b_sz, hid), dtype=dt) if self._needs_pre() else None
        step_pre = self._empty((b_sz, hid), dt) if pre is None else None
        hs = z[1:, :, n_in : n_in + hid]
        dot = np.dot
        if self.activation == "tanh" and m is None:
            tanh = np.tanh
            for z_t, h_t in zip(z[:t_len], hs, strict=True):  # the common case: two calls a step
                dot(z_t, w, out=step_pre)
                tanh(step_pre, out=h_t)
        else:
            for t in range(t_len):
                p_t = step_pre if pre is None else pre[t]
                dot(z[t], w, out=p_t)
                h_t = hs[t]
                self._activate(h_t, p_t)
                if m is not None:
                    h_t *= m[t]
        self._recycle(step_pre)

        if self.return_last:
            if m is None or self.reverse:
                last = np.full(b_sz, t_len - 1, dtype=np.intp)
            else:
                last = np.maximum(mask.sum(axis=1).astype(np.intp) - 1, 0)
            y = hs[last, np.arange(b_sz)]
        elif self.reverse:
            last = None
            yt = self._empty((t_len, b_sz, hid), dt)
            np.copyto(yt, hs[::-1])
            y = yt.transpose(1, 0, 2)  # time-major, see `token_rows`
        else:
            last = None
            y = hs.transpose(1, 0, 2)  # a time-major view into z: no copy
        return y, (z, pre, m, last)

    @property
    def fresh_output(self) -> bool:
        # The full-sequence forward output is a view into the cached step buffer.
        return self.reverse or self.return_last

    def bind(self, params: Params, grads: Params) -> None:
        # The executor keeps W_xh, W_hh and b back to back (in `param_names` order),
        # and their gradients too: one view of each trio is the stacked weight matrix
        # a step multiplies by, and where its gradient goes, with no copy.
        if set(params) == set(self.param_names) and set(grads) == set(self.param_names):
            w = params["W_xh"]
            self._stack = (w, stacked_rows(w, params["W_hh"], params["b"], w.dtype, True))
            g = grads["W_xh"]
            self._grad_stack = (g, stacked_rows(g, grads["W_hh"], grads["b"], g.dtype, True))

    def release(self, cache: Any) -> None:
        # Called once the output is dead too: it may be a view into z.
        self._recycle(cache[0], cache[1])

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
    ) -> list[np.ndarray | None]:
        z, pre, m, last = cache
        t_len, b_sz, k = z.shape
        t_len -= 1
        hid = self.hidden
        n_in = k - hid - 1
        dt = z.dtype
        hs = z[1:, :, n_in : n_in + hid]
        w_hh_t = np.ascontiguousarray(params["W_hh"].T, dtype=dt)  # a transposed view is slower

        zeros = None
        if last is not None:
            dhs = zeros = self._empty((t_len, b_sz, hid), dt)
            dhs.fill(0)
            dhs[last, np.arange(b_sz)] = dy
        else:
            dhs = dy.transpose(1, 0, 2)
            if self.reverse:
                dhs = dhs[::-1]

        # dpre[t] becomes dL/dpre_t. When dy is ours it takes dy's place: step t reads
        # slot t of dy once, just before writing it.
        if zeros is not None or (inplace and dhs.flags.c_contiguous):
            dpre = dhs
        else:
            dpre = self._empty((t_len, b_sz, hid), dt)
        # act'(pre) is computed from the stored outputs for a block of steps at a time,
        # just before the loop reaches them, so it is read back from cache: a pass over
        # all steps at once would go through main memory twice for long sequences.
        span = max(1, BLOCK_SIZE // max(b_sz * hid, 1))
        d_blk = self._empty((min(span, t_len), b_sz, hid), dt)

        record = isinstance(self.record_dh, list)
        norms = np.zeros(t_len) if record else None
        carry = np.zeros((b_sz, hid), dtype=dt)  # dL/dh_t arriving from step t+1
        add, multiply, dot = np.add, np.multiply, np.dot
        # A vanishing gradient sinks into subnormal numbers, which the CPU handles
        # in microcode at a hundredfold cost; a carry that small is flushed to zero.
        flush_below = float(np.finfo(dt).tiny) * 1e6
        for start in reversed(range(0, t_len, span)):
            stop = min(start + span, t_len)
            d = d_blk[: stop - start]
            self._derivative(hs[start:stop], None if pre is None else pre[start:stop], d)
            if m is not None:
                d *= m[start:stop]  # padded steps pass no gradient
            for t in reversed(range(start, stop)):
                g = dpre[t]
                add(dhs[t], carry, out=g)  # total dL/dh_t
                if norms is not None:
                    norms[t] = np.linalg.norm(g if m is None else g * m[t])
                multiply(g, d[t - start], out=g)
                if t:  # dL/dh_0 is not needed: h_0 = 0 is no parameter
                    dot(g, w_hh_t, out=carry)
                    if t % 8 == 0 and not np.abs(carry).max() > flush_below:
                        carry.fill(0)

        flat = dpre.reshape(t_len * b_sz, hid)
        # One matmul gives the gradients of W_xh, W_hh and b together (rows of [W_xh; W_hh; b]).
        dw = z[:t_len].reshape(t_len * b_sz, k).T @ flat
        gw = self._grad_stack[1] if grads["W_xh"] is self._grad_stack[0] else None
        if gw is not None and gw.dtype == dt:
            gw += dw  # the executor's flat gradients hold the three in this order
        else:
            grads["W_xh"] += dw[:n_in]
            grads["W_hh"] += dw[n_in : n_in + hid]
            grads["b"] += dw[k - 1]
        w_xh_t = np.ascontiguousarray(params["W_xh"].T)
        dxt = np.matmul(flat, w_xh_t, out=self._empty((t_len * b_sz, n_in), dt))
        dxt = dxt.reshape(t_len, b_sz, n_in)
        if self.reverse:
            flipped = self._empty((t_len, b_sz, n_in), dt)
            np.copyto(flipped, dxt[::-1])
            self._recycle(dxt)
            dxt = flipped
        dx = dxt.transpose(1, 0, 2)  # a time-major (B, T, N) view, see `token_rows`
        self._recycle(d_blk, zeros)
        if dpre is not dhs:
            self._recycle(dpre)
        if inplace:
            self._recycle(z, pre, dy)

        if norms is not None:
            self.last_dh_norms = norms[::-1].copy() if self.reverse else norms
            self.record_dh.append(self.last_dh_norms)
        return [dx]
