"""Building an ONNX graph by hand: unique value names, weights, small constants.

Emitters (one per op, see `specc.export.onnx.emitters`) add nodes through a
`GraphBuilder` and never touch protobufs themselves. Every value name is
unique across the whole model, subgraphs included, because ONNX forbids a
Scan body from shadowing a name of the graph around it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from specc.ir.ops import NodeBase


class GraphBuilder:
    """The nodes and initializers of one graph (the model's, or a Scan body)."""

    def __init__(self, dtype: np.dtype, taken: set[str] | None = None) -> None:
        self.dtype = np.dtype(dtype)
        #: the ONNX element type of the float values (float32 or float64)
        self.elem = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._taken = taken if taken is not None else set()
        self._consts: dict[tuple[str, tuple[int, ...], bytes], str] = {}

    def reserve(self, name: str) -> str:
        """Claim an exact name (a model input, output or node name)."""
        assert name not in self._taken, f"value name {name!r} used twice"
        self._taken.add(name)
        return name

    def is_taken(self, name: str) -> bool:
        return name in self._taken

    def fresh(self, hint: str) -> str:
        """A new unique name starting with ``hint`` (readable in Netron)."""
        name, i = hint, 1
        while name in self._taken:
            i += 1
            name = f"{hint}_{i}"
        self._taken.add(name)
        return name

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        hint: str,
        out: str | None = None,
        outputs: int = 1,
        **attrs: Any,
    ) -> str:
        """Add one node; returns its (first) output, named ``out`` when given and
        otherwise ``HINT/OpType`` (a node's name as the hint groups its nodes in Netron)."""
        names = [out if out is not None else self.fresh(f"{hint}/{op_type}")]
        names += [self.fresh(f"{hint}/{op_type}:{k}") for k in range(1, outputs)]
        self.op_outputs(op_type, inputs, names, hint, **attrs)
        return names[0]

    def op_outputs(
        self, op_type: str, inputs: Sequence[str], outs: Sequence[str], hint: str, **attrs: Any
    ) -> None:
        """Add one node whose outputs are named by the caller ("" skips an output)."""
        label = self.fresh(f"{hint}/{op_type}#")  # node names, apart from value names
        node = helper.make_node(op_type, list(inputs), list(outs), name=label, **attrs)
        self.nodes.append(node)

    def weight(self, name: str, array: np.ndarray) -> str:
        """An initializer under ``name`` (made unique), floats in the export dtype."""
        arr = np.asarray(array)
        if arr.dtype.kind == "f":
            arr = arr.astype(self.dtype)
        tensor = numpy_helper.from_array(np.ascontiguousarray(arr), self.fresh(name))
        self.initializers.append(tensor)
        return tensor.name

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """A small constant (shared by everyone who asks for the same one)."""
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.weight(hint, arr)
        return self._consts[key]

    def ints(self, *values: int) -> str:
        """A 1-D int64 constant, as Squeeze, Unsqueeze, Reshape and Expand take."""
        return self.const(list(values), np.int64, "axes")

    def child(self) -> GraphBuilder:
        """A builder for a subgraph: its own nodes, names unique with this one's."""
        return GraphBuilder(self.dtype, self._taken)

    def graph(
        self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]
    ) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)


@dataclass
class Emit:
    """What one op's emitter is given: where to add nodes and what the node reads.

    ``xs`` are the ONNX names of the node's inputs; the emitter's last node must
    write ``out`` (the node's own name). ``params`` and ``state`` are the node's
    arrays by short name (``W_hh``, ``running_mean``). ``mask`` is the (B, T, 1)
    mask of real tokens and ``lengths`` the (B,) int64 lengths, both set only
    for a node on sequences of a padded batch, as specc's backends pass its
    mask only to those. ``sizes`` binds `vocab` and `labels`; ``recurrence``
    picks how recurrent ops are written (`auto`, `rnn` or `scan`).

    ``state_in`` and ``state_out``, set only for a recurrent node of a graph
    exported with its state (`OnnxOptions.state`): the graph inputs its states
    start from (h, then c for an lstm; each (B, H)) and the graph outputs its
    emitter must write its states after the last step into.
    """

    g: GraphBuilder
    node: NodeBase
    xs: list[str]
    out: str
    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    mask: str | None
    lengths: str | None
    sizes: dict[str, int]
    recurrence: str
    state_in: list[str] = field(default_factory=list)
    state_out: list[str] = field(default_factory=list)

    def initial(self, i: int, hidden: int) -> str:
        """The i-th state the recurrence starts from: the graph's input, or zeros."""
        if self.state_in:
            return self.state_in[i]
        return zero_state(self.g, self.xs[0], hidden, self.node.name)

    def final(self, i: int, value: str) -> None:
        """Write the i-th final state (B, H) into its graph output, when exported."""
        if self.state_out:
            self.g.op("Identity", [value], self.node.name, out=self.state_out[i])


#: An op's emitter: adds the nodes computing its output; returns that output's name.
Emitter = Callable[[Emit], str]


def zero_state(g: GraphBuilder, x: str, hidden: int, h: str) -> str:
    """h_0 = 0, shaped (B, H) for whatever batch ``x`` holds: where a Scan's states
    start when the graph does not take them (see `Emit.initial`)."""
    batch = g.op("Gather", [g.op("Shape", [x], h), g.ints(0)], h, axis=0)
    shape = g.op("Concat", [batch, g.ints(hidden)], h, axis=0)
    zero = numpy_helper.from_array(np.zeros(1, g.dtype))
    return g.op("ConstantOfShape", [shape], h, value=zero)
