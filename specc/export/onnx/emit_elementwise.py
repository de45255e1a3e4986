"""Emitters of the elementwise ops, softmax, and the ops that are the identity at inference."""

from __future__ import annotations

import numpy as np

from specc.export.onnx.builder import Emit, GraphBuilder


def activation(g: GraphBuilder, name: str, slope: float, x: str, hint: str, out: str | None) -> str:
    """An rnn's or a layer's nonlinearity, as the ONNX op of the same name.

    LeakyRelu's ``alpha`` is a float32 attribute, so a slope float32 cannot hold
    exactly (0.3) is written as specc computes it, x if x > 0 else slope·x, with
    the slope in the export's dtype: float64 exports then agree to rounding."""
    if name == "leaky_relu":
        if g.dtype == np.float32 or float(np.float32(slope)) == slope:
            return g.op("LeakyRelu", [x], hint, out=out, alpha=float(slope))
        positive = g.op("Greater", [x, g.const(0.0)], hint)
        scaled = g.op("Mul", [x, g.const(slope)], hint)
        return g.op("Where", [positive, x, scaled], hint, out=out)
    op = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu"}[name]
    return g.op(op, [x], hint, out=out)


def leaky_relu(e: Emit) -> str:
    return activation(e.g, "leaky_relu", e.node.slope, e.xs[0], e.node.name, e.out)  # type: ignore[attr-defined]


def relu(e: Emit) -> str:
    return activation(e.g, "relu", 0.0, e.xs[0], e.node.name, e.out)


def tanh(e: Emit) -> str:
    return activation(e.g, "tanh", 0.0, e.xs[0], e.node.name, e.out)


def sigmoid(e: Emit) -> str:
    return activation(e.g, "sigmoid", 0.0, e.xs[0], e.node.name, e.out)


def gelu(e: Emit) -> str:
    """½x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), from primitives: ONNX's own Gelu
    arrived in opset 20, newer than the default opset."""
    g, x, h = e.g, e.xs[0], e.node.name
    cube = g.op("Mul", [g.op("Mul", [x, x], h), x], h)
    inner = g.op("Add", [x, g.op("Mul", [g.const(0.044715), cube], h)], h)
    u = g.op("Mul", [g.const(np.sqrt(2 / np.pi)), inner], h)
    one_plus = g.op("Add", [g.const(1.0), g.op("Tanh", [u], h)], h)
    return g.op("Mul", [g.op("Mul", [g.const(0.5), x], h), one_plus], h, out=e.out)


def softmax(e: Emit) -> str:
    return e.g.op("Softmax", [e.xs[0]], e.node.name, out=e.out, axis=-1)


def identity(e: Emit) -> str:
    """`a = b`, and dropout, which is the identity outside training."""
    return e.g.op("Identity", [e.xs[0]], e.node.name, out=e.out)
