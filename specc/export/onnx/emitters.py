"""The table of emitters by op name, as each backend has its table of kernels.

An op's emitter is one small function (see `specc.export.onnx.builder.Emit`).
An op with no line here is refused by name when a model is exported, so a
new op of the registry exports once its module and its line here
exist, and until then says plainly that it cannot.
"""

from __future__ import annotations

from collections.abc import Mapping

from specc.export import ExportError
from specc.export.onnx import emit_elementwise as elementwise
from specc.export.onnx import emit_gated as gated
from specc.export.onnx import emit_layers as layers
from specc.export.onnx import emit_letters as letters
from specc.export.onnx import emit_rnn as recurrent
from specc.export.onnx.builder import Emitter
from specc.ir.ops import NodeBase

EMITTERS: dict[str, Emitter] = {
    "embedding": layers.embedding,
    "one_hot": layers.one_hot,
    "spell": letters.spell,
    "rnn": recurrent.rnn,
    "lstm": gated.lstm,
    "gru": gated.gru,
    "batchnorm": layers.batchnorm,
    "leaky_relu": elementwise.leaky_relu,
    "relu": elementwise.relu,
    "tanh": elementwise.tanh,
    "gelu": elementwise.gelu,
    "sigmoid": elementwise.sigmoid,
    "dense": layers.dense,
    "softmax": elementwise.softmax,
    "dropout": elementwise.identity,  # the inference graph: dropout is off
    "concat": layers.concat,
    "add": layers.add,
    "identity": elementwise.identity,
}


def emitter_for(node: NodeBase, model: str, table: Mapping[str, Emitter]) -> Emitter:
    """The node's emitter, or an `ExportError` naming the op it cannot export."""
    emit = table.get(node.op)  # type: ignore[attr-defined]
    if emit is None:
        raise ExportError(
            f"cannot export op '{node.op}' to ONNX (node '{node.name}' of model "  # type: ignore[attr-defined]
            f"'{model}'): specc's ONNX exporter has no emitter for it yet"
        )
    return emit
