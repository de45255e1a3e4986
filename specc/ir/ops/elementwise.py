"""Elementwise ops, softmax and dropout: the output has the input's shape."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from specc.ir.ops.base import Cost, NodeBase


class LeakyRelu(NodeBase):
    op: Literal["leaky_relu"] = "leaky_relu"
    slope: float = Field(0.01, ge=0)
    summary: ClassVar[str] = "passes positives, scales negatives by a small slope"

    def cost(self, ins):
        return Cost(kept=self._out_count())  # its derivative

    def equation(self):
        if self.slope > 1:  # max() would pick the scaled side for positive x
            return f"y = x if x > 0 else {self.slope:g}·x"
        return f"y = max(x, {self.slope:g}·x)"


class Relu(NodeBase):
    op: Literal["relu"] = "relu"
    summary: ClassVar[str] = "zeroes negatives"

    def cost(self, ins):
        return Cost(kept=self._out_count())  # its mask

    def equation(self):
        return "y = max(x, 0)"


class Gelu(NodeBase):
    """GELU (Hendrycks & Gimpel 2016) in its tanh form, as torch's GELU(approximate="tanh")."""

    op: Literal["gelu"] = "gelu"
    summary: ClassVar[str] = "weighs each value by how likely a standard normal is below it"

    def equation(self):
        return "y = ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))"


class Tanh(NodeBase):
    op: Literal["tanh"] = "tanh"
    summary: ClassVar[str] = "squashes into (-1, 1)"

    def equation(self):
        return "y = tanh(x)"


class Sigmoid(NodeBase):
    op: Literal["sigmoid"] = "sigmoid"
    summary: ClassVar[str] = "squashes into (0, 1)"

    def equation(self):
        return "y = 1/(1 + e^−x)"


class Softmax(NodeBase):
    op: Literal["softmax"] = "softmax"
    summary: ClassVar[str] = "turns scores into a probability distribution"

    def equation(self):
        return "y_i = e^x_i / Σ_j e^x_j"


class Dropout(NodeBase):
    op: Literal["dropout"] = "dropout"
    p: float = Field(ge=0, lt=1)
    summary: ClassVar[str] = "zeroes a random fraction p while training"

    def cost(self, ins):
        return Cost(kept=self._out_count())  # its mask

    def equation(self):
        return f"y = x·m/(1−{self.p:g}),  m ~ Bernoulli(1−{self.p:g})"
