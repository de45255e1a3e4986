"""The long short-term memory layer, fast: PyTorch's lstm with hand-written BPTT.

Inside, the gates of a step sit in the order o, i, f, g (PyTorch's i, f, g, o
with o moved first): then the three sigmoid gates are one contiguous block for
the forward pass, and the three gates whose gradient is a multiple of dL/dc_t
(i, f, g) one block for backward, each handled by a single call per step.
The weights and their gradients keep PyTorch's order; the permutation is
applied once per forward and once per backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.numpy.blas import gemm
from specc.backend.numpy.gated import Blocks, GatedKernel, add_back, arrange, unscaled
from specc.ir import ops


def gate_blocks(hidden: int) -> Blocks:
    """PyTorch's (i, f, g, o) columns in the kernel's order (o, i, f, g), the sigmoid
    gates o, i, f halved (see specc.backend.numpy.gated)."""
    h = hidden
    return ((0, 3 * h, h, 0.5), (h, 0, 2 * h, 0.5), (3 * h, 2 * h, h, 1.0))


class LSTM(GatedKernel):
    """``i, f, g, o`` gates, ``c_t = f⊙c_{t-1} + i⊙g``, ``h_t = o⊙tanh(c_t)``, h_0 = c_0 = 0.

    Under a mask, ``c_t`` (and so ``h_t``) is forced to zero at padded steps: a
    forward run never reads them, and a reversed run starts each row from zero
    at its true last token, as if the row had been run alone.
    """

    def __init__(self, node: ops.Lstm, sizes: Any = None, dtype: Any = np.float32) -> None:
        super().__init__(node, sizes, dtype)
        self.blocks = gate_blocks(self.hidden)
        self.plain = unscaled(self.blocks)

    def forward(self, params, state, xs, mask, train, rng, inplace=False):
        x = xs[0]
        hid = self.hidden
        w_xh, w_hh, bias = params["W_xh"], params["W_hh"], params["b"]
        dt = np.result_type(x.dtype, w_hh.dtype)
        xz, m = self._inputs(x, mask, dt, inplace)
        t_len, b_sz, _ = xz.shape
        sig = slice(0, 3 * hid)
        n_in = w_xh.shape[0]
        w_in = self._kept("w_in", (n_in + 1, 4 * hid), dt)
        arrange(w_xh, self.blocks, w_in[:n_in])
        arrange(bias[None, :], self.blocks, w_in[n_in:])
        w_rec = arrange(w_hh, self.blocks, self._kept("w_hh", (hid, 4 * hid), dt))
        gates = self._projection(xz, w_in)  # (T, B, 4H): o, i, f, g
        hs_all = self._empty((t_len + 1, b_sz, hid), dt)
        cs_all = self._empty((t_len + 1, b_sz, hid), dt)
        tcs = self._empty((t_len, b_sz, hid), dt)  # tanh(c_t)
        start = self.carried_in(b_sz, hid)  # see specc.backend.carry
        hs_all[0] = 0 if start is None else start[0]
        cs_all[0] = 0 if start is None else start[1]
        recur, packed = self._stepper(w_rec, hs_all, gates, True)
        tmp = self._kept("tmp", (b_sz, hid), dt)
        # σ = tanh/2 + 1/2 on the sigmoid gates, g unchanged (x*1 + 0 is x), as two
        # passes over the whole contiguous (B, 4H) block: a pass over its strided
        # sigmoid columns costs three times as much.
        half, shift = (
            self._kept("half", (b_sz, 4 * hid), dt),
            self._kept("shift", (b_sz, 4 * hid), dt),
        )
        half[:, sig], half[:, 3 * hid :] = 0.5, 1
        shift[:, sig], shift[:, 3 * hid :] = 0.5, 0
        tanh, multiply, add = np.tanh, np.multiply, np.add
        o_s, i_s, f_s, g_s = (gates[:, :, k * hid : (k + 1) * hid] for k in range(4))
        c_prev, c_next, h_next = cs_all[:t_len], cs_all[1:], hs_all[1:]
        for t in range(t_len):
            a, c = gates[t], c_next[t]
            recur(t, t)
            tanh(a, a)
            multiply(a, half, a)
            add(a, shift, a)
            multiply(f_s[t], c_prev[t], c)
            multiply(i_s[t], g_s[t], tmp)
            add(c, tmp, c)
            if m is not None:
                multiply(c, m[t], c)  # then h_t = o⊙tanh(0) = 0 too
            tc = tcs[t]
            tanh(c, tc)
            multiply(o_s[t], tc, h_next[t])
        self._recycle(packed)
        y, last = self._outputs(h_next, mask)
        if start is not None:
            self.carry = (hs_all[t_len].copy(), cs_all[t_len].copy())
        return y, (xz, gates, hs_all, cs_all, tcs, m, last)

    def release(self, cache: Any) -> None:
        self._recycle(*cache[:5])

    def backward(self, params, cache, dy, grads, inplace=False, fresh_grads=False):
        xz, gates, hs_all, cs_all, tcs, m, last = cache
        t_len, b_sz, n_in1 = xz.shape
        hid, dt = self.hidden, xz.dtype
        dhs, zeros = self._upstream(dy, last, t_len)
        o_s, i_s, f_s, g_s = (gates[:, :, k * hid : (k + 1) * hid] for k in range(4))

        # dz[t]: dL/d(pre-activation) of step t's gates, o, i, f, g.
        dz = self._empty((t_len, b_sz, 4 * hid), dt)
        dz_o, dz_ifg = dz[:, :, :hid], dz[:, :, hid:].reshape(t_len, b_sz, 3, hid)
        w_t = self._kept("w_hh_t", (4 * hid, hid), dt)  # W_hh.T, rows in the kernel's order
        arrange(params["W_hh"], self.plain, w_t.T)
        carry = np.zeros((1, b_sz, hid), dtype=dt)  # dL/dh_t arriving from step t+1
        back, packed = self._stepper(w_t, dz, carry, False)
        dc = np.zeros((b_sz, hid), dtype=dt)  # dL/dc_t, then what reaches c_{t-1}
        watching = self.watch is not None
        dh_all = self._empty((t_len, b_sz, hid), dt) if watching else None
        dh_one = self._kept("dh", (b_sz, hid), dt)
        tmp = self._kept("tmp", (b_sz, hid), dt)

        # Per block of steps, before the loop reaches it: what multiplies dL/dh_t into
        # dL/dc_t (A) and into o's gradient (B), and dL/dc_t into i's, f's, g's (D).
        span = self._span(b_sz, 5 * hid)
        a_blk = self._empty((min(span, t_len), b_sz, hid), dt)
        k_blk = self._empty((min(span, t_len), b_sz, 4 * hid), dt)
        # K = G⊙(lo - G) + hi, over whole contiguous blocks: σ' = σ(1-σ) on the sigmoid
        # gates (lo 1, hi 0), tanh' = 1 - g² on g (lo 0, hi 1).
        lo, hi = self._kept("lo", (b_sz, 4 * hid), dt), self._kept("hi", (b_sz, 4 * hid), dt)
        lo[:, : 3 * hid], lo[:, 3 * hid :] = 1, 0
        hi[:, : 3 * hid], hi[:, 3 * hid :] = 0, 1
        add, multiply = np.add, np.multiply
        flush_every = self.FLUSH_EVERY
        carry_h, dc_3 = carry[0], dc[:, None, :]  # views made once, not once a step
        for start in reversed(range(0, t_len, span)):
            stop = min(start + span, t_len)
            n = stop - start
            o, i, f, g = o_s[start:stop], i_s[start:stop], f_s[start:stop], g_s[start:stop]
            tc, cp = tcs[start:stop], cs_all[start:stop]
            A, K = a_blk[:n], k_blk[:n]
            np.multiply(tc, tc, A)
            np.subtract(1, A, A)
            A *= o  # o⊙tanh'(c)
            np.subtract(lo, gates[start:stop], K)
            K *= gates[start:stop]
            K += hi
            B = K[:, :, :hid]
            B *= tc  # tanh(c)⊙σ'(o)
            K[:, :, hid : 2 * hid] *= g  # g⊙σ'(i)
            K[:, :, 2 * hid : 3 * hid] *= cp  # c_{t-1}⊙σ'(f)
            K[:, :, 3 * hid :] *= i  # i⊙tanh'(g)
            D = K.reshape(n, b_sz, 4, hid)[:, :, 1:]  # a view: i, f, g
            if m is not None:
                mb = m[start:stop]
                A *= mb
                K *= mb
            for t in reversed(range(start, stop)):
                k = t - start
                dh = dh_all[t] if watching else dh_one
                add(dhs[t], carry_h, dh)  # dL/dh_t
                multiply(dh, A[k], tmp)
                add(dc, tmp, dc)  # dL/dc_t
                multiply(dh, B[k], dz_o[t])
                multiply(dc_3, D[k], dz_ifg[t])
                multiply(dc, f[k], dc)  # what reaches c_{t-1}
                if t:
                    back(t, 0)  # carry = dz_t @ W_hh.T
                    if t % flush_every == 0:
                        self._flush(carry, dc)
        self._recycle(packed)
        if watching:
            self._hand_to_watch(dh_all, m)

        rows = t_len * b_sz
        flat = dz.reshape(rows, 4 * hid)
        d_in = self._empty((n_in1, 4 * hid), dt)
        gemm(xz.reshape(rows, n_in1), flat, d_in, trans_a=True)
        d_hh = self._empty((hid, 4 * hid), dt)
        gemm(hs_all[:t_len].reshape(rows, hid), flat, d_hh, trans_a=True)
        add_back(d_in[:-1], self.plain, grads["W_xh"])
        add_back(d_in[-1], self.plain, grads["b"])
        add_back(d_hh, self.plain, grads["W_hh"])
        w_x = arrange(params["W_xh"], self.plain, self._kept("w_x", (n_in1 - 1, 4 * hid), dt))
        dx = self._input_grad(dz, w_x)
        self._recycle(d_in, d_hh, dz, a_blk, k_blk, dh_all, zeros)
        if inplace:
            self._recycle(xz, gates, hs_all, cs_all, tcs, dy)
        return [dx]
