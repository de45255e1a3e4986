"""The dense layer and the ops that join or rename values."""

from __future__ import annotations

from typing import ClassVar, Literal

from specc.ir.count import Count
from specc.ir.init import linear_params
from specc.ir.ops.base import Cost, Dim, NodeBase, Shape, ShapeError, Size, need_floats


class Dense(NodeBase):
    op: Literal["dense"] = "dense"
    units: Size
    bias: bool = True
    summary: ClassVar[str] = "a fully connected layer on the last axis"

    def infer(self, ins):
        x = ins[0]
        need_floats("dense", x)
        return x.with_feature(self.units)

    def param_shapes(self, ins):
        n = ins[0].feature
        shapes: dict[str, tuple[Dim, ...]] = {"W": (n, self.units)}
        if self.bias:
            shapes["b"] = (self.units,)
        return shapes

    def init_params(self, shapes, rng, dtype):
        n_in, units = shapes["W"]
        return linear_params(n_in, units, self.bias, rng, dtype)

    def cost(self, ins):
        mac = Count.of_dim(ins[0].feature) * Count.of_dim(self.units)
        return Cost(macs_token=mac) if ins[0].has_time else Cost(macs_sequence=mac)

    def equation(self):
        return "y = x·W + b" if self.bias else "y = x·W"


class Concat(NodeBase):
    op: Literal["concat"] = "concat"
    arity: ClassVar[tuple[int, int | None]] = (1, None)
    summary: ClassVar[str] = "joins its inputs along the feature axis"

    def infer(self, ins):
        for x in ins:
            need_floats("concat", x)
        lead = ins[0].dims[:-1]
        for x in ins[1:]:
            if x.dims[:-1] != lead:
                raise ShapeError(
                    "concat needs inputs that agree on all but the last axis, got "
                    + " and ".join(y.text() for y in ins)
                )
        feats = [x.feature for x in ins]
        total: Dim = (
            sum(feats)  # type: ignore[arg-type]
            if all(isinstance(f, int) for f in feats)
            else " + ".join(str(f) for f in feats)
        )
        return Shape(dims=(*lead, total))

    def equation(self):
        return "y = [x_1; x_2; …]"


class Add(NodeBase):
    op: Literal["add"] = "add"
    arity: ClassVar[tuple[int, int | None]] = (1, None)
    summary: ClassVar[str] = "sums inputs of the same shape"

    def infer(self, ins):
        for x in ins:
            need_floats("add", x)
        for x in ins[1:]:
            if x.dims != ins[0].dims:
                raise ShapeError(
                    "add needs inputs of the same shape, got " + " and ".join(y.text() for y in ins)
                )
        return ins[0]

    def equation(self):
        return "y = x_1 + x_2 + …"


class Identity(NodeBase):
    """`a = b` with no steps: a second name for a value."""

    op: Literal["identity"] = "identity"
    summary: ClassVar[str] = "another name for its input"

    def infer(self, ins):
        return ins[0]

    def equation(self):
        return "y = x"
