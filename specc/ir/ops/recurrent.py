"""Recurrent layers: a hidden state carried over time (the `recurrent` trait)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from specc.ir.count import Count
from specc.ir.init import rnn_params
from specc.ir.ops.base import Activation, Cost, NodeBase, Shape, ShapeError, Size, need_floats


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
        x = ins[0]
        need_floats("rnn", x)
        if not x.has_time or len(x.dims) != 3:
            raise ShapeError(
                f"rnn expects a sequence (B, T, N) but its input has shape {x.text()}",
                "an rnn needs a time axis: feed it a sequence, not a vector",
            )
        if self.return_ == "last":
            return Shape(dims=("B", self.hidden))
        return Shape(dims=("B", "T", self.hidden))

    def param_shapes(self, ins):
        n = ins[0].feature
        return {"W_xh": (n, self.hidden), "W_hh": (self.hidden, self.hidden), "b": (self.hidden,)}

    def init_params(self, shapes, rng, dtype):
        n_in, hidden = shapes["W_xh"]
        return rnn_params(self.init, n_in, hidden, rng, dtype)

    def cost(self, ins):
        n, h = Count.of_dim(ins[0].feature), Count.of_dim(self.hidden)
        # backward keeps act'(pre) of every step, and with return=last every state too
        steps = Count.symbol("B") * Count.symbol("T") * h
        return Cost(macs_token=n * h + h * h, kept=steps * 2 if self.return_ == "last" else steps)

    def equation(self):
        prev = "h_{t+1}" if self.reverse else "h_{t-1}"
        pre = f"x_t·W_xh + {prev}·W_hh + b"
        if self.activation.name == "leaky_relu":  # the argument appears twice: name it once
            leak = self.activation.leak
            act = f"max(a_t, {leak:g}·a_t)" if leak <= 1 else f"(a_t if a_t > 0 else {leak:g}·a_t)"
            return f"h_t = {act},  a_t = {pre}"
        return "h_t = " + self.activation.formula(pre)
