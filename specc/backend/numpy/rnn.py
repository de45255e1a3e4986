"""Simple (Elman) recurrent layer with hand-written backpropagation through time.

Speed comes from keeping Python and extra array passes out of the time loop.
Everything is time-major inside. One matrix product computes the input
projection and bias of all steps at once, straight into the buffer of hidden
states, so a step is one product with ``W_hh`` added to its slot and one
activation there, all on contiguous rows. The output is a time-major view of
those states (see `token_rows`), not a copy. Backward is three calls per
step; the weight and input gradients are matrix products over all steps,
made after BPTT, or with MKL and two threads beside it, a chunk of the
steps it has passed at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from specc.backend.numpy import blas
from specc.backend.numpy.activations import activate, derivative_from_output
from specc.backend.numpy.base import BLOCK_SIZE, Params
from specc.backend.numpy.blas import gemm, row_addresses, step_product, takes_step
from specc.backend.numpy.recurrent import RecurrentKernel
from specc.ir import ops

#: Backward makes the products over all steps on a second thread (see `RNN.backward`)
#: from this much work (multiply-adds), in chunks of at least this many rows.
BACKGROUND_MIN_WORK = 1 << 25
BACKGROUND_CHUNK_ROWS = 512


class RNN(RecurrentKernel):
    """``h_t = act(x_t @ W_xh + h_{t-1} @ W_hh + b)`` with ``h_0 = 0``.

    Under a mask, ``h_t`` at padded steps is forced to zero. Because padding
    is only at the end of each row, a forward run never reads a padded state,
    and a reversed run starts every row from a zero state at its true last
    token, exactly as if the row had been run alone.

    ``reverse`` is implemented by flipping time once on the way in and once on
    the way out, so the loop itself always runs forwards and BPTT backwards.

    Observing: while ``watch`` is set (see `Network.backward`), every backward
    hands it dL/dh_t, the whole gradient at each hidden state (what arrives
    through time included), as (B, T, H) in the original time order, zero at
    padded steps. It is made after BPTT, so the time loop never pays for it.
    """

    watch: Callable[[np.ndarray], None] | None = None

    def __init__(self, node: ops.Rnn, sizes: Any = None, dtype: Any = np.float32) -> None:
        super().__init__(node, sizes, dtype)
        self.hidden = self._size(node.hidden)
        self.activation = node.activation.name
        self.slope = node.activation.leak
        self.reverse = node.reverse
        self.return_last = node.return_ == "last"

    def _activate(self, out: np.ndarray, src: np.ndarray) -> None:
        """Apply the nonlinearity for one step, from ``src`` into ``out``."""
        activate(self.activation, self.slope, src, out)

    def _needs_pre(self) -> bool:
        """Whether act'(pre) cannot be read off the output: only a negative leaky slope,
        where a positive output may come from a negative pre-activation."""
        return self.activation == "leaky_relu" and self.slope < 0

    def _derivative(self, hs: np.ndarray, pre: np.ndarray | None, out: np.ndarray) -> None:
        """act'(pre) for all steps at once, into ``out``, from the outputs ``hs`` (or from
        ``pre`` itself where the output cannot tell its sign: see `_needs_pre`)."""
        derivative_from_output(self.activation, self.slope, hs if pre is None else pre, out)

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
        w_xh, w_hh, bias = params["W_xh"], params["W_hh"], params["b"]
        dt = np.result_type(x.dtype, w_hh.dtype)
        xz, m = self._inputs(x, mask, dt, inplace)
        b_sz, t_len, n_in = x.shape
        hid = self.hidden

        # xz[t] = [x_t | 1], time-major and in processing order; hs[t + 1] = h_t with
        # hs[0] = h_0 = 0. One product with [W_xh; b] puts every step's input
        # projection and bias into the slots of hs, where each step adds h_{t-1} W_hh.
        hs_all = self._empty((t_len + 1, b_sz, hid), dt)
        start = self.carried_in(b_sz, hid)  # see specc.backend.carry
        hs_all[0] = 0 if start is None else start[0]
        w_in = np.concatenate((w_xh, bias[None, :])).astype(dt, copy=False)
        rows = t_len * b_sz
        gemm(xz.reshape(rows, n_in + 1), w_in, hs_all[1:].reshape(rows, hid))
        w_rec = w_hh.astype(dt, copy=False)

        # With MKL (see specc.backend.numpy.blas), h_{t-1} W_hh is added to the projection
        # in h_t's slot by the product itself. numpy's np.dot (cheaper than np.matmul
        # for small products) writes it to a scratch row block, and an add follows.
        # The hot loops pass `out` by position: a keyword costs a ufunc ~0.1 us to parse.
        # A negative leaky slope keeps every pre-activation for backward.
        pre = np.empty((t_len, b_sz, hid), dtype=dt) if self._needs_pre() else None
        step = None  # the numpy loops' scratch row block, where they need one
        hs = hs_all[1:]
        dot, add = np.dot, np.add
        if self.activation == "tanh" and m is None:  # the common case
            tanh = np.tanh
            product = step_product(w_rec, b_sz, accumulate=True)
            if product is not None:
                at = row_addresses(hs_all)
                for t, h_t in enumerate(hs):
                    product(at[t], at[t + 1])
                    tanh(h_t, h_t)
            else:
                step = self._empty((b_sz, hid), dt)
                for h_prev, h_t in zip(hs_all[:t_len], hs, strict=True):
                    dot(h_prev, w_rec, step)
                    add(h_t, step, h_t)
                    tanh(h_t, h_t)
        else:
            product = step_product(w_rec, b_sz)
            if pre is None:
                step = self._empty((b_sz, hid), dt)
            if product is not None:
                at = row_addresses(hs_all)
                p_at = row_addresses(step[None]) * t_len if pre is None else row_addresses(pre)
            for t in range(t_len):
                p_t = step if pre is None else pre[t]
                if product is None:
                    dot(hs_all[t], w_rec, p_t)
                else:
                    product(at[t], p_at[t])
                h_t = hs[t]
                add(p_t, h_t, p_t)
                self._activate(h_t, p_t)
                if m is not None:
                    h_t *= m[t]
        self._recycle(step)

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
            y = hs.transpose(1, 0, 2)  # a time-major view into hs_all: no copy
        if start is not None:
            self.carry = (hs_all[t_len].copy(),)
        return y, (xz, hs_all, pre, m, last)

    @staticmethod
    def _sequence_products(
        xz2: np.ndarray,
        h_prev: np.ndarray,
        flat: np.ndarray,
        w_xh: np.ndarray,
        d_in: np.ndarray,
        g_hh: np.ndarray,
        dxt: np.ndarray | None,
        r0: int,
        r1: int,
        first: bool,
        fresh_grads: bool,
    ) -> None:
        """The products against dL/dpre (``flat``) of rows r0:r1, the first of them
        (the last steps) writing, the others adding: [x_t | 1] @, whose last row is the
        bias gradient (one pass over dL/dpre for both), into ``d_in``; h_{t-1} @ into
        W_hh's gradient ``g_hh`` (written straight into it when it holds zeros);
        and @ W_xh.T into the input gradient ``dxt`` (unless it is None)."""
        rows = slice(r0, r1)
        gemm(xz2[rows], flat[rows], d_in, trans_a=True, accumulate=not first)
        gemm(h_prev[rows], flat[rows], g_hh, trans_a=True, accumulate=not (first and fresh_grads))
        if dxt is not None:
            gemm(flat[rows], w_xh, dxt[rows], trans_b=True)

    @property
    def fresh_output(self) -> bool:
        # The full-sequence forward output is a view into the cached step buffer.
        return self.reverse or self.return_last

    def release(self, cache: Any) -> None:
        # Called once the output is dead too: it may be a view into hs_all.
        self._recycle(*cache[:3])

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        xz, hs_all, pre, m, last = cache
        t_len, b_sz, n_in = xz.shape
        n_in -= 1
        hid = self.hidden
        dt = xz.dtype
        hs = hs_all[1:]

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

        # The products over all steps against dL/dpre (see `_sequence_products`) need
        # only the steps BPTT is done with: with MKL and a second thread they are made
        # there, a chunk of steps at a time, while this thread goes on through time.
        rows = t_len * b_sz
        flat = dpre.reshape(rows, hid)
        xz2, h_prev = xz.reshape(rows, n_in + 1), hs_all[:t_len].reshape(rows, hid)
        w_xh = params["W_xh"].astype(dt, copy=False)
        background = (
            blas.runs_beside(b_sz * hid * hid)
            and rows * hid * (n_in + 1 + hid + n_in) >= BACKGROUND_MIN_WORK
        )
        d_in = dxt = None  # what the products write, made when they start
        if background:
            d_in, dxt = self._empty((n_in + 1, hid), dt), self._empty((rows, n_in), dt)
        chunk = max(span, -(-BACKGROUND_CHUNK_ROWS // b_sz))  # steps per chunk
        pending: list[Future[None]] = []

        def sequence_products(begin: int, stop: int) -> None:  # of steps begin:stop
            self._sequence_products(
                xz2, h_prev, flat, w_xh, d_in, grads["W_hh"], dxt,
                begin * b_sz, stop * b_sz, stop == t_len, fresh_grads,
            )  # fmt: skip

        # What reaches each h_t from above, kept for `watch` where the loop overwrites it.
        watched = None if self.watch is None else (dhs.copy() if dpre is dhs else dhs)
        carry = np.zeros((b_sz, hid), dtype=dt)  # dL/dh_t arriving from step t+1
        product = None
        # carry = g @ W_hh.T. At batch 1 numpy computes it as the column W_hh @ g.T,
        # on W_hh as it is. Otherwise W_hh.T is copied, since both libraries multiply
        # by a transposed view more slowly (MKL: 1.3x as long); at batch 1 the copy
        # would be larger than a short sequence's activations, and gain nothing.
        column = b_sz == 1 and not takes_step(hid * hid)
        if column:
            w_hh = params["W_hh"].astype(dt, copy=False)
            g_cols, carry_col = dpre.reshape(t_len, hid, 1), carry.reshape(hid, 1)
        else:
            w_hh_t = np.ascontiguousarray(params["W_hh"].T, dtype=dt)
            product = step_product(w_hh_t, b_sz)
            if product is not None:
                g_at, carry_at = row_addresses(dpre), row_addresses(carry[None])[0]
        add, multiply, dot = np.add, np.multiply, np.dot
        # A vanishing gradient sinks into subnormal numbers, which the CPU handles
        # in microcode at a hundredfold cost; a carry that small is flushed to zero.
        flush_below = float(np.finfo(dt).tiny) * 1e6
        done = t_len  # steps before this are through BPTT, but their products not made
        try:
            for start in reversed(range(0, t_len, span)):
                stop = min(start + span, t_len)
                d = d_blk[: stop - start]
                self._derivative(hs[start:stop], None if pre is None else pre[start:stop], d)
                if m is not None:
                    d *= m[start:stop]  # padded steps pass no gradient
                for t in reversed(range(start, stop)):
                    g = dpre[t]
                    add(dhs[t], carry, g)  # total dL/dh_t
                    multiply(g, d[t - start], g)
                    if t:  # dL/dh_0 is not needed: h_0 = 0 is no parameter
                        if column:
                            dot(w_hh, g_cols[t], carry_col)
                        elif product is None:
                            dot(g, w_hh_t, carry)
                        else:
                            product(g_at[t], carry_at)
                        if t % 8 == 0 and not np.abs(carry).max() > flush_below:
                            carry.fill(0)
                if background and (done - start >= chunk or start == 0):
                    pending.append(blas.beside(sequence_products, start, done))
                    done = start
        finally:
            for job in pending:  # every chunk is done before the buffers go
                job.exception()
        for job in pending:
            job.result()
        if watched is not None:
            self.watch(self._state_grads(watched, dpre, params["W_hh"], m))
        if not background:
            d_in = self._empty((n_in + 1, hid), dt)
            sequence_products(0, t_len)  # all but the input's gradient, made below
        grads["W_xh"] += d_in[:n_in]
        grads["b"] += d_in[n_in]
        self._recycle(d_in)
        d_in = None  # below the pool's size nobody else holds it: freed before the next
        if not background:
            dxt = self._empty((rows, n_in), dt)
            gemm(flat, w_xh, dxt, trans_b=True)
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
            self._recycle(xz, hs_all, pre, dy)
        return [dx]

    def _state_grads(
        self, upstream: np.ndarray, dpre: np.ndarray, w_hh: np.ndarray, m: np.ndarray | None
    ) -> np.ndarray:
        """dL/dh_t of every step (see `watch`): what reaches h_t from above plus what
        step t+1 sends back through W_hh, as (B, T, H) in the original time order."""
        dh = np.array(upstream, dtype=dpre.dtype)  # (T, B, H) in processing order
        dh[:-1] += dpre[1:] @ w_hh.T.astype(dpre.dtype, copy=False)
        if m is not None:
            dh *= m
        if self.reverse:
            dh = dh[::-1]
        return np.ascontiguousarray(dh.transpose(1, 0, 2))
