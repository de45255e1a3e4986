"""The gated recurrent unit layer, fast: PyTorch's gru with hand-written BPTT.

PyTorch's gate order r, z, n is kept inside: r and z (the sigmoid gates) are
one contiguous block, and ``h_{t-1} @ W_hh + b_hh`` of every step is kept
whole, since the candidate ``n`` needs its own block of it before the reset
gate multiplies it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.numpy.base import colsum
from specc.backend.numpy.blas import gemm
from specc.backend.numpy.gated import Blocks, GatedKernel, arrange


def gate_blocks(hidden: int) -> Blocks:
    """PyTorch's (r, z, n) columns as they are, the sigmoid gates r, z halved (see
    specc.backend.numpy.gated)."""
    return ((0, 0, 2 * hidden, 0.5), (2 * hidden, 2 * hidden, hidden, 1.0))


class GRU(GatedKernel):
    """``r, z = σ(..)``, ``n = tanh(x_t W_xn + b_xn + r⊙(h_{t-1} W_hn + b_hn))``,
    ``h_t = (1−z)⊙n + z⊙h_{t-1}``, h_0 = 0.

    Under a mask, ``h_t`` is forced to zero at padded steps: a forward run never
    reads them, and a reversed run starts each row from zero at its true last
    token, as if the row had been run alone.
    """

    def forward(self, params, state, xs, mask, train, rng, inplace=False):
        x = xs[0]
        hid = self.hidden
        w_hh = params["W_hh"]
        dt = np.result_type(x.dtype, w_hh.dtype)
        xz, m = self._inputs(x, mask, dt, inplace)
        t_len, b_sz, _ = xz.shape
        sig = slice(0, 2 * hid)
        blocks = gate_blocks(hid)
        n_in = params["W_xh"].shape[0]
        w_in = self._kept("w_in", (n_in + 1, 3 * hid), dt)
        arrange(params["W_xh"], blocks, w_in[:n_in])
        arrange(params["b_xh"][None, :], blocks, w_in[n_in:])
        gates = self._projection(xz, w_in)  # (T, B, 3H): r, z, then n's input part
        hp = self._empty((t_len, b_sz, 3 * hid), dt)  # h_{t-1} @ W_hh + b_hh (r, z halved)
        arrange(np.broadcast_to(params["b_hh"], (t_len * b_sz, 3 * hid)), blocks,
                hp.reshape(t_len * b_sz, 3 * hid))  # fmt: skip
        hs_all = self._empty((t_len + 1, b_sz, hid), dt)
        start = self.carried_in(b_sz, hid)  # see specc.backend.carry
        hs_all[0] = 0 if start is None else start[0]
        w_rec = arrange(w_hh, blocks, self._kept("w_hh", (hid, 3 * hid), dt))
        recur, packed = self._stepper(w_rec, hs_all, hp, True)
        tmp = self._kept("tmp", (b_sz, hid), dt)
        tanh, multiply, add, subtract = np.tanh, np.multiply, np.add, np.subtract
        rz_s, rz_h = gates[:, :, sig], hp[:, :, sig]
        r_s, z_s, n_s = (gates[:, :, k * hid : (k + 1) * hid] for k in range(3))
        hn_s = hp[:, :, 2 * hid :]
        h_prev, h_next = hs_all[:t_len], hs_all[1:]
        for t in range(t_len):
            rz, n, h = rz_s[t], n_s[t], h_next[t]
            recur(t, t)
            add(rz, rz_h[t], rz)
            tanh(rz, rz)
            multiply(rz, 0.5, rz)
            add(rz, 0.5, rz)
            multiply(r_s[t], hn_s[t], tmp)
            add(n, tmp, n)
            tanh(n, n)
            subtract(h_prev[t], n, h)
            multiply(z_s[t], h, h)
            add(h, n, h)
            if m is not None:
                multiply(h, m[t], h)
        self._recycle(packed)
        y, last = self._outputs(h_next, mask)
        if start is not None:
            self.carry = (hs_all[t_len].copy(),)
        return y, (xz, gates, hp, hs_all, m, last)

    def release(self, cache: Any) -> None:
        self._recycle(*cache[:4])

    def backward(self, params, cache, dy, grads, inplace=False, fresh_grads=False):
        xz, gates, hp, hs_all, m, last = cache
        t_len, b_sz, n_in1 = xz.shape
        hid, dt = self.hidden, xz.dtype
        dhs, zeros = self._upstream(dy, last, t_len)
        r_s, z_s, n_s = (gates[:, :, k * hid : (k + 1) * hid] for k in range(3))
        hn_s = hp[:, :, 2 * hid :]

        # gx[t], gh[t]: dL/d(x_t W_xh + b_xh) and dL/d(h_{t-1} W_hh + b_hh), as (B, 3, H).
        gx = self._empty((t_len, b_sz, 3 * hid), dt)
        gh = self._empty((t_len, b_sz, 3 * hid), dt)
        gx3, gh3 = gx.reshape(t_len, b_sz, 3, hid), gh.reshape(t_len, b_sz, 3, hid)
        carry = np.zeros((1, b_sz, hid), dtype=dt)  # dL/dh_t arriving from step t+1
        w_t = self._kept("w_hh_t", params["W_hh"].shape[::-1], dt)
        np.copyto(w_t, params["W_hh"].T, casting="same_kind")
        back, packed = self._stepper(w_t, gh, carry, True)
        watching = self.watch is not None
        dh_all = self._empty((t_len, b_sz, hid), dt) if watching else None
        dh_one = self._kept("dh", (b_sz, hid), dt)

        # Per block of steps, before the loop reaches it: what multiplies dL/dh_t into
        # each of gx (CX) and gh (CH), and into what reaches h_{t-1} directly (Z).
        span = self._span(b_sz, 7 * hid)
        cx_blk = self._empty((min(span, t_len), b_sz, 3, hid), dt)
        ch_blk = self._empty((min(span, t_len), b_sz, 3, hid), dt)
        z_blk = self._empty((min(span, t_len), b_sz, hid), dt)
        add, multiply = np.add, np.multiply
        for start in reversed(range(0, t_len, span)):
            stop = min(start + span, t_len)
            k_n = stop - start
            r, z, n = r_s[start:stop], z_s[start:stop], n_s[start:stop]
            hn, hprev = hn_s[start:stop], hs_all[start:stop]
            CX, CH, Z = cx_blk[:k_n], ch_blk[:k_n], z_blk[:k_n]
            c_r, c_z, c_n = CX[:, :, 0], CX[:, :, 1], CX[:, :, 2]
            np.multiply(n, n, c_n)
            np.subtract(1, c_n, c_n)
            np.subtract(1, z, Z)
            c_n *= Z  # (1−z)⊙tanh'(n)
            np.subtract(hprev, n, c_z)
            c_z *= z
            c_z *= Z  # (h_{t-1} − n)⊙σ'(z)
            np.subtract(1, r, c_r)
            c_r *= r
            c_r *= hn
            c_r *= c_n  # through n's reset product: hn⊙σ'(r)⊙(n's own)
            np.copyto(Z, z)  # what reaches h_{t-1} directly
            if m is not None:
                mb = m[start:stop]
                CX *= mb[:, :, :, None]
                Z *= mb
            CH[:, :, :2] = CX[:, :, :2]
            np.multiply(CX[:, :, 2], r, CH[:, :, 2])
            for t in reversed(range(start, stop)):
                k = t - start
                dh = dh_all[t] if watching else dh_one
                add(dhs[t], carry[0], dh)  # dL/dh_t
                dh3 = dh[:, None, :]
                multiply(dh3, CX[k], gx3[t])
                multiply(dh3, CH[k], gh3[t])
                if t:
                    multiply(dh, Z[k], carry[0])
                    back(t, 0)  # carry += gh_t @ W_hh.T
                    if t % self.FLUSH_EVERY == 0:
                        self._flush(carry)
        self._recycle(packed)
        if watching:
            self._hand_to_watch(dh_all, m)

        rows = t_len * b_sz
        gx2, gh2 = gx.reshape(rows, 3 * hid), gh.reshape(rows, 3 * hid)
        d_in = self._empty((n_in1, 3 * hid), dt)
        gemm(xz.reshape(rows, n_in1), gx2, d_in, trans_a=True)
        grads["W_xh"] += d_in[:-1]
        grads["b_xh"] += d_in[-1]
        gemm(hs_all[:t_len].reshape(rows, hid), gh2, grads["W_hh"], trans_a=True,
             accumulate=not fresh_grads)  # fmt: skip
        grads["b_hh"] += colsum(gh2)
        dx = self._input_grad(gx, np.asarray(params["W_xh"], dtype=dt))
        self._recycle(d_in, gx, gh, cx_blk, ch_blk, z_blk, dh_all, zeros)
        if inplace:
            self._recycle(xz, gates, hp, hs_all, dy)
        return [dx]
