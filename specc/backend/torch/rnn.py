"""The recurrent layers' shared base (step order, return=last, PyTorch's fused modules)
and the simple rnn, unrolled step by step so autograd sees every state."""

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


class Recurrent(Carries, Op):
    """What every recurrent layer shares: the order of the steps, return=last, the
    fused path, and ``watch`` (which the network feeds dL/dh_t from the cached states).

    The cache is the list of hidden-state tensors in time order, so that
    `Network._backward` can ask autograd for dL/dh_t. A carried state (see
    specc.backend.carry) starts the states and is detached between passes.
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
        if fused and mask is None and self.fuses():
            return self._fused(params, x, start), None
        hs, final = self.unroll(params, x, mask, start)
        if start is not None:
            self.carry = carried_out(*final)
        return self._output(hs, mask), hs

    def unroll(self, params, x, mask, start) -> tuple[list[Any], tuple[Any, ...]]:
        """Every step's hidden state (B, H) in time order, and the final states (h
        first), from ``start`` (None: zeros)."""
        raise NotImplementedError

    def fuses(self) -> bool:
        """Whether PyTorch's own module computes this layer (the rnn's tanh and relu)."""
        return True

    def module_options(self) -> dict[str, Any]:
        """Keyword arguments of ``torch.nn.<torch_cell>`` beyond the shapes."""
        return {}

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
            module = cls(
                x.shape[-1], hidden, batch_first=True, device="meta", **self.module_options()
            )
            self._torch_module = (key, module.to_empty(device=x.device).to(x.dtype))
        return self._torch_module[1]


class Rnn(Recurrent):
    """h_t = act(x_t·W_xh + h_{t−1}·W_hh + b), h_0 = 0; reversed, h_{t+1} feeds h_t.

    As in `specc.backend.reference.rnn`: a padded step's state is zero, so a
    reversed row starts from zero at its last real token. ``fused`` runs an
    unmasked tanh or relu layer as one call to PyTorch's own RNN (cuDNN on a GPU).
    """

    torch_cell = "RNN"
    biases = ("b", None)

    def fuses(self) -> bool:
        return self.node.activation.name in ("tanh", "relu")

    def module_options(self) -> dict[str, Any]:
        return {"nonlinearity": self.node.activation.name}

    def unroll(self, params, x, mask, start) -> tuple[list[Any], tuple[Any, ...]]:
        name, slope = self.node.activation.name, self.node.activation.leak
        w_xh, w_hh, b = params["W_xh"], params["W_hh"], params["b"]
        batch, t_len, _ = x.shape
        h = torch.zeros((batch, w_hh.shape[0]), dtype=x.dtype, device=x.device)
        if start is not None:
            (h,) = start
        xw = x @ w_xh + b  # every step's input projection in one product
        hs: list[Any] = [None] * t_len
        for t in self.steps(t_len):
            h = act(name, slope, xw[:, t] + h @ w_hh)
            if mask is not None:
                h = h * mask[:, t, None]
            hs[t] = h
        return hs, (h,)


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
