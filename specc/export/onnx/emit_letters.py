"""`spell` and the recurrent layers along the letters of words, in the exported graph.

The graph takes each word's letters as a second input, ``INPUT:chars`` (int64,
(batch, time, letters), 0 past each word's end), as specc's networks do. A
layer on letters (B, T, C, N) is its own emitter run on the words as a batch,
(B·T, C, N), with each word's length (its non-zero letters) as its lengths and
mask, and reshaped back. A position with no word (length 0) gets length 1, as
the RNN operator wants no empty sequence, and its output is zeroed after, as
specc leaves it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from onnx import TensorProto

from specc.export.onnx.builder import Emit, Emitter


def spell(e: Emit) -> str:
    """The letters the graph was fed with the words (its ``xs`` name that input)."""
    return e.g.op("Identity", [e.xs[0]], e.node.name, out=e.out)


def along_letters(emit: Emitter) -> Emitter:
    """``emit`` (an rnn, lstm or gru emitter) run along the letters of each word; the
    node's ``xs`` are [its input (B, T, C, N), the letters (B, T, C)]."""

    def emit_letters(e: Emit) -> str:
        g, h = e.g, e.node.name
        x, letters = e.xs
        zero, one = g.const(0, np.int64, "zero"), g.const(1, np.int64, "one")
        shape = g.op("Shape", [letters], h)  # (B, T, C)
        head = g.op("Slice", [shape, g.ints(0), g.ints(2)], h)  # (B, T)
        width = g.op("Slice", [shape, g.ints(2), g.ints(3)], h)  # (C)
        flat = g.op("Reshape", [letters, g.op("Concat", [g.ints(-1), width], h, axis=0)], h)
        real = g.op("Cast", [g.op("Greater", [flat, zero], h)], h, to=g.elem)  # (B·T, C)
        counts = g.op("ReduceSum", [real, g.ints(1)], h, keepdims=0)
        lengths = g.op("Cast", [counts], h, to=TensorProto.INT64)
        features = g.op("Slice", [g.op("Shape", [x], h), g.ints(2), g.ints(4)], h)  # (C, N)
        words = g.op("Reshape", [x, g.op("Concat", [g.ints(-1), features], h, axis=0)], h)
        mask = g.op("Unsqueeze", [real, g.ints(2)], h)  # (B·T, C, 1)
        inner = emit(
            replace(
                e,
                xs=[words],
                out=g.fresh(f"{h}.words"),
                mask=mask,
                lengths=g.op("Max", [lengths, one], h),
            )
        )
        last = e.node.return_ == "last"  # type: ignore[attr-defined]
        if last:  # no word there: zeros
            some = g.op("Min", [counts, g.const(1.0, None, "one")], h)
            keep = g.op("Unsqueeze", [some, g.ints(1)], h)  # (B·T, 1)
        else:  # past each word's end, or no word: zeros
            keep = mask
        out = g.op("Mul", [inner, keep], h)
        tail = g.op("Slice", [g.op("Shape", [out], h), g.ints(1), g.ints(2 if last else 3)], h)
        return g.op("Reshape", [out, g.op("Concat", [head, tail], h, axis=0)], h, out=e.out)

    return emit_letters
