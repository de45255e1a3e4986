"""The gated recurrent layers, lstm and gru, unrolled step by step so autograd sees
every hidden state (what ``watch`` reads), or fused into PyTorch's own cells.

Semantics are `specc.backend.reference.gated`'s: gates in PyTorch's order (lstm i, f,
g, o; gru r, z, n), one block of ``hidden`` columns each; a padded step neither
reads nor writes state (its h and c are zero), so a reversed layer starts each row
at its own last real token. Because the gate order and the gru's n gate are
PyTorch's, an unmasked layer runs as one call to `torch.nn.LSTM` / `torch.nn.GRU`
(cuDNN on a GPU) with the same weights, transposed; the lstm's single bias is
PyTorch's input bias with a zero hidden bias.
"""

from __future__ import annotations

from typing import Any

from specc.backend.torch.lib import torch
from specc.backend.torch.rnn import Recurrent


class Lstm(Recurrent):
    """i, f, g, o = σ, σ, tanh, σ of x_t·W_xh + h_prev·W_hh + b (one block each);
    c_t = f⊙c_prev + i⊙g; h_t = o⊙tanh(c_t); h_0 = c_0 = 0."""

    torch_cell = "LSTM"
    biases = ("b", None)

    def unroll(self, params, x, mask, start) -> tuple[list[Any], tuple[Any, ...]]:
        w_xh, w_hh, b = params["W_xh"], params["W_hh"], params["b"]
        batch, t_len, _ = x.shape
        zeros = torch.zeros((batch, w_hh.shape[0]), dtype=x.dtype, device=x.device)
        h, c = (zeros, zeros) if start is None else start
        xw = x @ w_xh + b  # every step's input projection in one product
        hs: list[Any] = [None] * t_len
        for t in self.steps(t_len):
            i, f, g, o = (xw[:, t] + h @ w_hh).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            if mask is not None:
                c = c * mask[:, t, None]
            h = torch.sigmoid(o) * torch.tanh(c)
            if mask is not None:
                h = h * mask[:, t, None]
            hs[t] = h
        return hs, (h, c)


class Gru(Recurrent):
    """r, z = σ(x_t·W_x[rz] + b_x[rz] + h_prev·W_h[rz] + b_h[rz]);
    n = tanh(x_t·W_xn + b_xn + r⊙(h_prev·W_hn + b_hn)); h_t = (1−z)⊙n + z⊙h_prev."""

    torch_cell = "GRU"
    biases = ("b_xh", "b_hh")

    def unroll(self, params, x, mask, start) -> tuple[list[Any], tuple[Any, ...]]:
        w_xh, w_hh, b_xh, b_hh = (params[k] for k in ("W_xh", "W_hh", "b_xh", "b_hh"))
        batch, t_len, _ = x.shape
        h = torch.zeros((batch, w_hh.shape[0]), dtype=x.dtype, device=x.device)
        if start is not None:
            (h,) = start
        xw = x @ w_xh + b_xh  # every step's input projection in one product
        hs: list[Any] = [None] * t_len
        for t in self.steps(t_len):
            xr, xz, xn = xw[:, t].chunk(3, dim=1)
            hr, hz, hn = (h @ w_hh + b_hh).chunk(3, dim=1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
            if mask is not None:
                h = h * mask[:, t, None]
            hs[t] = h
        return hs, (h,)
