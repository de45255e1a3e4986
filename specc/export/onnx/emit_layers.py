"""Emitters of the lookups, dense, concat, add and batchnorm (with its running statistics)."""

from __future__ import annotations

import numpy as np

from specc.export.onnx.builder import Emit


def embedding(e: Emit) -> str:
    """Row x of E for every token id."""
    table = e.g.weight(f"{e.node.name}.E", e.params["E"])
    return e.g.op("Gather", [table, e.xs[0]], e.node.name, out=e.out, axis=0)


def one_hot(e: Emit) -> str:
    """ids == [0, 1, ..., vocab−1], as floats: exact, and in every float type
    (onnxruntime's OneHot has no float64 output)."""
    g, h, vocab = e.g, e.node.name, e.sizes["vocab"]
    ids = g.op("Unsqueeze", [e.xs[0], g.ints(-1)], h)
    hits = g.op("Equal", [ids, g.const(np.arange(vocab), np.int64, "one_hot_ids")], h)
    return g.op("Cast", [hits], h, out=e.out, to=g.elem)


def dense(e: Emit) -> str:
    g, h = e.g, e.node.name
    w = g.weight(f"{h}.W", e.params["W"])
    if "b" not in e.params:
        return g.op("MatMul", [e.xs[0], w], h, out=e.out)
    xw = g.op("MatMul", [e.xs[0], w], h)
    return g.op("Add", [xw, g.weight(f"{h}.b", e.params["b"])], h, out=e.out)


def concat(e: Emit) -> str:
    return e.g.op("Concat", e.xs, e.node.name, out=e.out, axis=-1)


def add(e: Emit) -> str:
    return e.g.op("Sum", e.xs, e.node.name, out=e.out)


def batchnorm(e: Emit) -> str:
    """The inference form, y = γ·(x − running_mean)/√(running_var + ε) + β, zero at
    padded tokens; written out elementwise because ONNX's BatchNormalization
    normalises axis 1, where specc's features are on the last axis."""
    g, h, node = e.g, e.node.name, e.node
    mean = g.weight(f"{h}.running_mean", e.state["running_mean"])
    var = e.state["running_var"].astype(g.dtype)
    std = g.weight(f"{h}.running_std", np.sqrt(var + g.dtype.type(node.eps)))  # type: ignore[attr-defined]
    last = e.out if e.mask is None and not node.affine else None  # type: ignore[attr-defined]
    y = g.op("Div", [g.op("Sub", [e.xs[0], mean], h), std], h, out=last)
    if node.affine:  # type: ignore[attr-defined]
        last = e.out if e.mask is None else None
        scaled = g.op("Mul", [y, g.weight(f"{h}.gamma", e.params["gamma"])], h)
        y = g.op("Add", [scaled, g.weight(f"{h}.beta", e.params["beta"])], h, out=last)
    if e.mask is not None:
        y = g.op("Mul", [y, e.mask], h, out=e.out)
    return y
