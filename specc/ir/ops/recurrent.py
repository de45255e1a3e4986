"""Recurrent layers: a hidden state carried over time (the `recurrent` trait).

`rnn` is the simple (Elman) layer; `lstm` and `gru` are the gated cells, with
PyTorch's gate order and equations so that weights and results carry over
(docs/language.md says how its two biases map onto ours).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from specc.ir.count import Count
from specc.ir.init import gated_params, rnn_params
from specc.ir.ops.base import Activation, Cost, NodeBase, Shape, ShapeError, Size, need_floats


def _sequence_out(op: str, x: Shape, hidden: Size, return_: str) -> Shape:
    """The shape rule every recurrent layer shares: a sequence in, every state or
    (with return=last) the last one out. On letters (B, T, C, N) the layer runs
    along each word's letters, every word on its own."""
    need_floats(op, x)
    if x.has_letters and len(x.dims) == 4:
        if return_ == "last":
            return Shape(dims=("B", "T", hidden))
        return Shape(dims=("B", "T", "C", hidden))
    if not x.has_time or len(x.dims) != 3:
        raise ShapeError(
            f"{op} expects a sequence (B, T, N) but its input has shape {x.text()}",
            f"an {op} needs a time axis: feed it a sequence, not a vector",
        )
    if return_ == "last":
        return Shape(dims=("B", hidden))
    return Shape(dims=("B", "T", hidden))


def _steps(x: Shape, hidden: Size) -> Count:
    """Hidden states over one batch: B·T·H, or B·T·C·H along the letters of words."""
    steps = Count.symbol("B") * Count.symbol("T") * Count.of_dim(hidden)
    return steps * Count.symbol("C") if x.has_letters else steps


class Rnn(NodeBase):
    op: Literal["rnn"] = "rnn"
    hidden: Size
    activation: Activation = Activation()
    init: Literal["default", "xavier", "orthogonal", "identity"] = "default"
    reverse: bool = False
    return_: Literal["sequence", "last"] = Field("sequence", alias="return")
    summary: ClassVar[str] = "a simple recurrent layer, unrolled over time"
    recurrent: ClassVar[bool] = True

    def infer(self, ins):
        return _sequence_out("rnn", ins[0], self.hidden, self.return_)

    def param_shapes(self, ins):
        n = ins[0].feature
        return {"W_xh": (n, self.hidden), "W_hh": (self.hidden, self.hidden), "b": (self.hidden,)}

    def init_params(self, shapes, rng, dtype):
        n_in, hidden = shapes["W_xh"]
        return rnn_params(self.init, n_in, hidden, rng, dtype)

    def cost(self, ins):
        n, h = Count.of_dim(ins[0].feature), Count.of_dim(self.hidden)
        # backward keeps act'(pre) of every step, and with return=last every state too
        steps = _steps(ins[0], self.hidden)
        return Cost(macs_token=n * h + h * h, kept=steps * 2 if self.return_ == "last" else steps)

    def equation(self):
        prev = "h_{t+1}" if self.reverse else "h_{t-1}"
        pre = f"x_t·W_xh + {prev}·W_hh + b"
        if self.activation.name == "leaky_relu":  # the argument appears twice: name it once
            leak = self.activation.leak
            act = f"max(a_t, {leak:g}·a_t)" if leak <= 1 else f"(a_t if a_t > 0 else {leak:g}·a_t)"
            return f"h_t = {act},  a_t = {pre}"
        return "h_t = " + self.activation.formula(pre)


#: A gated cell's width: a number (4·vocab gates would have no name a task binds).
Width = Annotated[int, Field(gt=0)]

#: The inits of a gated cell: the rnn's, less `identity` (a gate has no integrator to start as).
GatedInit = Literal["default", "xavier", "orthogonal"]


class Lstm(NodeBase):
    op: Literal["lstm"] = "lstm"
    hidden: Width
    init: GatedInit = "default"
    reverse: bool = False
    return_: Literal["sequence", "last"] = Field("sequence", alias="return")
    forget_bias: float = 1.0
    summary: ClassVar[str] = "a long short-term memory layer (gates i, f, g, o), unrolled over time"
    recurrent: ClassVar[bool] = True
    #: Gates per hidden unit, in PyTorch's order.
    gates: ClassVar[str] = "ifgo"
    cell_state: ClassVar[bool] = True

    def infer(self, ins):
        return _sequence_out("lstm", ins[0], self.hidden, self.return_)

    def param_shapes(self, ins):
        n, h = ins[0].feature, self.hidden
        return {"W_xh": (n, 4 * h), "W_hh": (h, 4 * h), "b": (4 * h,)}

    def init_params(self, shapes, rng, dtype):
        n_in, hidden = shapes["W_xh"][0], shapes["W_hh"][0]
        params = gated_params(self.init, n_in, hidden, 4, rng, dtype)
        b = np.zeros(4 * hidden, dtype=dtype)
        b[hidden : 2 * hidden] = self.forget_bias  # remember by default (Jozefowicz et al. 2015)
        params["b"] = b
        return params

    def cost(self, ins):
        n, h = Count.of_dim(ins[0].feature), Count.of_dim(self.hidden)
        # backward keeps the four gates, c_t and tanh(c_t) of every step (and h_t with
        # return=last, where the output holds only the last one)
        steps = _steps(ins[0], self.hidden)
        kept = steps * (7 if self.return_ == "last" else 6)
        return Cost(macs_token=(n * h + h * h) * 4, kept=kept)

    def equation(self):
        prev, cprev = ("h_{t+1}", "c_{t+1}") if self.reverse else ("h_{t-1}", "c_{t-1}")
        return (
            f"[i f g o]_t = x_t·W_xh + {prev}·W_hh + b;  c_t = σ(f)⊙{cprev} + σ(i)⊙tanh(g);  "
            "h_t = σ(o)⊙tanh(c_t)"
        )


class Gru(NodeBase):
    op: Literal["gru"] = "gru"
    hidden: Width
    init: GatedInit = "default"
    reverse: bool = False
    return_: Literal["sequence", "last"] = Field("sequence", alias="return")
    summary: ClassVar[str] = "a gated recurrent unit layer (gates r, z, n), unrolled over time"
    recurrent: ClassVar[bool] = True
    gates: ClassVar[str] = "rzn"

    def infer(self, ins):
        return _sequence_out("gru", ins[0], self.hidden, self.return_)

    def param_shapes(self, ins):
        n, h = ins[0].feature, self.hidden
        return {"W_xh": (n, 3 * h), "W_hh": (h, 3 * h), "b_xh": (3 * h,), "b_hh": (3 * h,)}

    def init_params(self, shapes, rng, dtype):
        n_in, hidden = shapes["W_xh"][0], shapes["W_hh"][0]
        params = gated_params(self.init, n_in, hidden, 3, rng, dtype)
        params["b_xh"] = np.zeros(3 * hidden, dtype=dtype)
        params["b_hh"] = np.zeros(3 * hidden, dtype=dtype)
        return params

    def cost(self, ins):
        n, h = Count.of_dim(ins[0].feature), Count.of_dim(self.hidden)
        # backward keeps the three gates and h·W_hh + b_hh of every step (and h_t with
        # return=last)
        steps = _steps(ins[0], self.hidden)
        kept = steps * (7 if self.return_ == "last" else 6)
        return Cost(macs_token=(n * h + h * h) * 3, kept=kept)

    def equation(self):
        prev = "h_{t+1}" if self.reverse else "h_{t-1}"
        return (
            f"[r z]_t = σ(x_t·W_xh + b_xh + {prev}·W_hh + b_hh);  "
            f"n_t = tanh(x_t·W_xn + b_xn + r_t⊙({prev}·W_hn + b_hn));  "
            f"h_t = (1−z_t)⊙n_t + z_t⊙{prev}"
        )
