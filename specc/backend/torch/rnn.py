"""The simple recurrent layer, unrolled step by step so autograd sees every state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from specc.backend.carry import Carries
from specc.backend.torch.lib import torch
from specc.backend.torch.op import Op


def act(name: str, slope: float, a):
    """The rnn's nonlinearity at the pre-activation ``a``."""
    if name == "tanh":
        return torch.tanh(a)
    if name == "sigmoid":
        return torch.sigmoid(a)
    if name == "relu":
        return torch.relu(a)
    return torch.where(a > 0, a, slope * a)  # leaky_relu


class Rnn(Carries, Op):
    """h_t = act(x_t·W_xh + h_{t−1}·W_hh + b), h_0 = 0; reversed, h_{t+1} feeds h_t.

    As in `specc.backend.reference.rnn`: a padded step's state is zero, so a
    reversed row starts from zero at its last real token. The cache is the list of
    hidden-state tensors in time order, so that `_backward` can ask autograd for
    dL/dh_t when ``watch`` is set.

    ``fused`` (set by the network for its fast paths, never for `trace`) runs an
    unmasked tanh or relu layer as one call to PyTorch's own RNN (cuDNN on a GPU),
    which computes the same recurrence without a Python loop but keeps no
    per-step states to watch.

    A carried state (see specc.backend.carry) comes in and goes out as NumPy
    arrays: it is detached between passes, so no gradient crosses a window.
    """

    fusable: ClassVar[bool] = True
    watch: Callable[[np.ndarray], None] | None = None

    def steps(self, t_len: int) -> range:
        """The order the steps run in."""
        return range(t_len - 1, -1, -1) if self.node.reverse else range(t_len)

    def forward(self, params, state, xs, mask, train, rng, fused: bool = False):
        (x,) = xs
        name = self.node.activation.name
        w_xh, w_hh, b = params["W_xh"], params["W_hh"], params["b"]
        batch, t_len, _ = x.shape
        start = carried_tensors(self, x, w_hh.shape[0])
        if fused and mask is None and name in ("tanh", "relu"):
            return self._fused(params, x, start), None
        slope = self.node.activation.leak
        xw = x @ w_xh + b  # every step's input projection in one product
        h = torch.zeros((batch, w_hh.shape[0]), dtype=x.dtype, device=x.device)
        if start is not None:
            (h,) = start
        hs: list[Any] = [None] * t_len
        for t in self.steps(t_len):
            h = act(name, slope, xw[:, t] + h @ w_hh)
            if mask is not None:
                h = h * mask[:, t, None]
            hs[t] = h
        if start is not None:
            self.carry = carried_out(h)
        if self.node.return_ == "sequence":
            return torch.stack(hs, dim=1), hs
        if self.node.reverse:
            return hs[0], hs
        if mask is None:
            return hs[-1], hs
        last = (mask.sum(dim=1).long() - 1).clamp(min=0)
        return torch.stack(hs, dim=1)[torch.arange(batch, device=x.device), last], hs

    def _fused(self, params, x, start=None):
        """The whole layer through torch's RNN op (no mask: every step is real), from
        the carried state ``start`` when given."""
        w_xh, w_hh, b = params["W_xh"], params["W_hh"], params["b"]
        if self.node.reverse:
            x = torch.flip(x, dims=[1])
        module = self._module(x, w_hh.shape[0])
        weights = {
            "weight_ih_l0": w_xh.t().contiguous(),
            "weight_hh_l0": w_hh.t().contiguous(),
            "bias_ih_l0": b,
            "bias_hh_l0": torch.zeros_like(b),
        }
        args = (x,) if start is None else (x, start[0][None])
        ys, h_n = torch.func.functional_call(module, weights, args)
        if start is not None:
            self.carry = carried_out(h_n[0])
        if self.node.return_ == "last":
            return ys[:, -1]
        return torch.flip(ys, dims=[1]) if self.node.reverse else ys

    def _module(self, x, hidden: int):
        """A torch RNN of this layer's shape, on x's device; its own weights are never used."""
        key = (x.device, x.dtype, hidden)
        cached = getattr(self, "_torch_rnn", None)
        if cached is None or cached[0] != key:
            module = torch.nn.RNN(
                x.shape[-1],
                hidden,
                nonlinearity=self.node.activation.name,
                batch_first=True,
                device="meta",
            )
            self._torch_rnn = (key, module.to_empty(device=x.device).to(x.dtype))
        return self._torch_rnn[1]


def carried_tensors(kernel: Carries, x, hidden: int) -> tuple[Any, ...] | None:
    """The kernel's carried state (NumPy, see specc.backend.carry) as tensors on x's
    device, or None to start from zeros."""
    start = kernel.carried_in(x.shape[0], hidden)
    if start is None:
        return None
    return tuple(torch.from_numpy(np.ascontiguousarray(s)).to(x.device, x.dtype) for s in start)


def carried_out(*states) -> tuple[np.ndarray, ...]:
    """Final states as NumPy copies: what the next pass begins from, detached."""
    return tuple(s.detach().cpu().numpy().copy() for s in states)
