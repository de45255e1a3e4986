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

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from specc.backend.carry import Carries
from specc.backend.torch.lib import torch
from specc.backend.torch.op import Op
from specc.backend.torch.rnn import carried_out, carried_tensors


class _Gated(Carries, Op):
    """What both cells share: the order of the steps, return=last, the fused path,
    and ``watch`` (which the network feeds dL/dh_t from the cached states).

    The cache is the list of hidden-state tensors in time order (as the torch
    rnn's), so that `Network._backward` can ask autograd for dL/dh_t. A carried
    state (see specc.backend.carry) starts the states and is detached between passes.
    """

    fusable: ClassVar[bool] = True
    #: The PyTorch module that runs the same cell, and the parameter names whose
    #: values become its ``bias_ih_l0`` and ``bias_hh_l0`` (None: zeros).
    torch_cell: ClassVar[str]
    biases: ClassVar[tuple[str, str | None]]
    watch: Callable[[np.ndarray], None] | None = None

    def steps(self, t_len: int) -> range:
        """The order the steps run in."""
        return range(t_len - 1, -1, -1) if self.node.reverse else range(t_len)

    def forward(self, params, state, xs, mask, train, rng, fused: bool = False):
        (x,) = xs
        start = carried_tensors(self, x, params["W_hh"].shape[0])
        if fused and mask is None:
            return self._fused(params, x, start), None
        hs, final = self.unroll(params, x, mask, start)
        if start is not None:
            self.carry = carried_out(*final)
        return self._output(hs, mask), hs

    def unroll(self, params, x, mask, start) -> tuple[list[Any], tuple[Any, ...]]:
        """Every step's hidden state (B, H) in time order, and the final states (h
        first), from ``start`` (None: zeros)."""
        raise NotImplementedError

    def _output(self, hs: list[Any], mask) -> Any:
        """The whole sequence, or with return=last the state of the last step run."""
        if self.node.return_ == "sequence":
            return torch.stack(hs, dim=1)
        if self.node.reverse:
            return hs[0]
        if mask is None:
            return hs[-1]
        batch = hs[0].shape[0]
        last = (mask.sum(dim=1).long() - 1).clamp(min=0)
        return torch.stack(hs, dim=1)[torch.arange(batch, device=hs[0].device), last]

    def _fused(self, params, x, start=None) -> Any:
        """The whole layer through PyTorch's cell (no mask: every step is real), from
        the carried state ``start`` when given."""
        w_xh, w_hh = params["W_xh"], params["W_hh"]
        if self.node.reverse:
            x = torch.flip(x, dims=[1])
        input_bias, hidden_bias = self.biases
        b_ih = params[input_bias]
        weights = {
            "weight_ih_l0": w_xh.t().contiguous(),
            "weight_hh_l0": w_hh.t().contiguous(),
            "bias_ih_l0": b_ih,
            "bias_hh_l0": torch.zeros_like(b_ih) if hidden_bias is None else params[hidden_bias],
        }
        module = self._module(x, w_hh.shape[0])
        if start is None:
            ys, _ = torch.func.functional_call(module, weights, (x,))
        else:
            hx = tuple(s[None] for s in start)  # (1, B, H): one layer, one direction
            hx = hx if len(hx) > 1 else hx[0]
            ys, final = torch.func.functional_call(module, weights, (x, hx))
            finals = final if isinstance(final, tuple) else (final,)
            self.carry = carried_out(*(s[0] for s in finals))
        if self.node.return_ == "last":
            return ys[:, -1]
        return torch.flip(ys, dims=[1]) if self.node.reverse else ys

    def _module(self, x, hidden: int) -> Any:
        """A PyTorch cell of this layer's shape on x's device, built without
        initialising weights (its own are never used: `_fused` passes ours)."""
        key = (x.device, x.dtype, hidden)
        cached = getattr(self, "_torch_module", None)
        if cached is None or cached[0] != key:
            cls = getattr(torch.nn, self.torch_cell)
            module = cls(x.shape[-1], hidden, batch_first=True, device="meta")
            self._torch_module = (key, module.to_empty(device=x.device).to(x.dtype))
        return self._torch_module[1]


class Lstm(_Gated):
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


class Gru(_Gated):
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
