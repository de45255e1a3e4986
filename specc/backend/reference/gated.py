"""The gated recurrent layers, lstm and gru, with backpropagation through time as one
visible loop each, written like the equations of docs/language.md.

Gates follow PyTorch's order (lstm: i, f, g, o; gru: r, z, n), one block of
``hidden`` columns each in ``W_xh``, ``W_hh`` and the biases. Padding works as
for the rnn: a padded step neither reads nor writes state (its h and c are
zero), so a reversed layer starts each row at its own last real token.
"""

from __future__ import annotations

import numpy as np

from specc.backend.reference.elementwise import sigmoid
from specc.backend.reference.rnn import Recurrent


class Lstm(Recurrent):
    """i, f, g, o = σ, σ, tanh, σ of x_t·W_xh + h_prev·W_hh + b (one block each);
    c_t = f⊙c_prev + i⊙g; h_t = o⊙tanh(c_t); h_0 = c_0 = 0."""

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        w_xh, w_hh, b = params["W_xh"], params["W_hh"], params["b"]
        batch, t_len, _ = x.shape
        hid = w_hh.shape[0]
        m = self.mask_of(mask, x)
        h, c = np.zeros((batch, hid), x.dtype), np.zeros((batch, hid), x.dtype)
        start = self.carried_in(batch, hid)
        if start is not None:
            h, c = start
        hs = np.zeros((batch, t_len, hid), x.dtype)
        kept = []  # per step: the states read, the four gates, tanh(c_t)
        for t in self.steps(t_len):
            a = x[:, t] @ w_xh + h @ w_hh + b
            i, f = sigmoid(a[:, :hid]), sigmoid(a[:, hid : 2 * hid])
            g, o = np.tanh(a[:, 2 * hid : 3 * hid]), sigmoid(a[:, 3 * hid :])
            h_prev, c_prev = h, c
            c = (f * c_prev + i * g) * m[:, t, None]
            tc = np.tanh(c)
            h = o * tc * m[:, t, None]
            hs[:, t] = h
            kept.append((t, h_prev, c_prev, i, f, g, o, tc))
        if start is not None:
            self.carry = (h.copy(), c.copy())
        last = self.last_steps(mask, batch, t_len)
        y = hs if last is None else hs[np.arange(batch), last]
        return y, (x, kept, m, last, hs.shape)

    def backward(self, params, cache, dy, grads):
        x, kept, m, last, shape = cache
        w_xh, w_hh = params["W_xh"], params["W_hh"]
        dhs = self.upstream(dy, last, shape)
        dx = np.zeros_like(x)
        dh_all = np.zeros(shape, dy.dtype)
        dh_next = np.zeros_like(dhs[:, 0])  # dL/dh_t arriving from the step after it
        dc_next = np.zeros_like(dhs[:, 0])  # dL/dc_t arriving from the step after it
        for t, h_prev, c_prev, i, f, g, o, tc in reversed(kept):
            mt = m[:, t, None]
            dh = (dhs[:, t] + dh_next) * mt  # dL/dh_t
            dh_all[:, t] = dh
            dc = dc_next * mt + dh * o * (1 - tc**2)  # dL/dc_t
            da = np.concatenate(
                [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g**2),
                 dh * tc * o * (1 - o)], axis=1,
            )  # fmt: skip
            grads["W_xh"] += x[:, t].T @ da
            grads["W_hh"] += h_prev.T @ da
            grads["b"] += da.sum(axis=0)
            dx[:, t] = da @ w_xh.T
            dh_next = da @ w_hh.T
            dc_next = dc * f
        if self.watch is not None:
            self.watch(dh_all)
        return [dx]


class Gru(Recurrent):
    """r, z = σ(x_t·W_x[rz] + b_x[rz] + h_prev·W_h[rz] + b_h[rz]);
    n = tanh(x_t·W_xn + b_xn + r⊙(h_prev·W_hn + b_hn)); h_t = (1−z)⊙n + z⊙h_prev."""

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        w_xh, w_hh, b_xh, b_hh = (params[k] for k in ("W_xh", "W_hh", "b_xh", "b_hh"))
        batch, t_len, _ = x.shape
        hid = w_hh.shape[0]
        m = self.mask_of(mask, x)
        start = self.carried_in(batch, hid)
        h = np.zeros((batch, hid), x.dtype) if start is None else start[0]
        hs = np.zeros((batch, t_len, hid), x.dtype)
        kept = []  # per step: the state read, the gates, h_prev·W_hn + b_hn
        for t in self.steps(t_len):
            ax = x[:, t] @ w_xh + b_xh
            ah = h @ w_hh + b_hh
            r = sigmoid(ax[:, :hid] + ah[:, :hid])
            z = sigmoid(ax[:, hid : 2 * hid] + ah[:, hid : 2 * hid])
            hn = ah[:, 2 * hid :]
            n = np.tanh(ax[:, 2 * hid :] + r * hn)
            h_prev = h
            h = ((1 - z) * n + z * h_prev) * m[:, t, None]
            hs[:, t] = h
            kept.append((t, h_prev, r, z, n, hn))
        if start is not None:
            self.carry = (h.copy(),)
        last = self.last_steps(mask, batch, t_len)
        y = hs if last is None else hs[np.arange(batch), last]
        return y, (x, kept, m, last, hs.shape)

    def backward(self, params, cache, dy, grads):
        x, kept, m, last, shape = cache
        w_xh, w_hh = params["W_xh"], params["W_hh"]
        dhs = self.upstream(dy, last, shape)
        dx = np.zeros_like(x)
        dh_all = np.zeros(shape, dy.dtype)
        dh_next = np.zeros_like(dhs[:, 0])
        for t, h_prev, r, z, n, hn in reversed(kept):
            dh = (dhs[:, t] + dh_next) * m[:, t, None]  # dL/dh_t
            dh_all[:, t] = dh
            dn = dh * (1 - z) * (1 - n**2)  # dL/d(pre-activation of n)
            dz = dh * (h_prev - n) * z * (1 - z)
            dr = dn * hn * r * (1 - r)
            dax = np.concatenate([dr, dz, dn], axis=1)  # through x_t·W_xh + b_xh
            dah = np.concatenate([dr, dz, dn * r], axis=1)  # through h_prev·W_hh + b_hh
            grads["W_xh"] += x[:, t].T @ dax
            grads["b_xh"] += dax.sum(axis=0)
            grads["W_hh"] += h_prev.T @ dah
            grads["b_hh"] += dah.sum(axis=0)
            dx[:, t] = dax @ w_xh.T
            dh_next = dah @ w_hh.T + dh * z
        if self.watch is not None:
            self.watch(dh_all)
        return [dx]
