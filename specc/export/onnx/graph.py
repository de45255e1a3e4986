"""The model's inference graph: inputs, the mask of a padded batch, every node, outputs.

Nodes are emitted in the model's order through the emitter table, each with
the arrays it owns and, for nodes on sequences, the mask of real tokens when
the graph takes `lengths` (as specc's backends hand their mask only to nodes
whose input has a time axis). The batch and time axes are symbolic, so one
file serves any batch of any length.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from specc.backend.carry import carried_nodes, hidden_of, refuse_reversed, state_parts
from specc.export import ExportError
from specc.export.onnx.builder import Emit, Emitter, GraphBuilder
from specc.export.onnx.emit_letters import along_letters
from specc.export.onnx.emitters import emitter_for
from specc.export.onnx.versions import ir_version_for
from specc.ir.ops import NodeBase, Shape, spelling_feed
from specc.ir.spec import Model

#: ONNX names of the symbolic axes.
AXES = {"B": "batch", "T": "time"}


def build_model(
    model: Model,
    params: Mapping[str, np.ndarray],
    state: Mapping[str, np.ndarray],
    *,
    dtype: np.dtype,
    opset: int,
    lengths: str | None,
    recurrence: str,
    emitters: Mapping[str, Emitter],
    carry_state: bool = False,
) -> onnx.ModelProto:
    """The ONNX model of ``model`` with these arrays; ``lengths`` names the input of
    real lengths for padded batches (None: every row is all real); ``carry_state`` makes
    every recurrent layer take its initial states as inputs and return its final
    ones as outputs (see `state_names`)."""
    g = GraphBuilder(dtype)
    emits = [(node, _emitter(model, node, emitters)) for node in model.nodes]
    carried = _state_names(model, lengths) if carry_state else {}
    spelled = [spelling_feed(i.name) for i in model.inputs if i.type == "tokens"]
    spelled = spelled if any(n.op == "spell" for n in model.nodes) else []
    for name in [i.name for i in model.inputs] + spelled + [n.name for n in model.nodes]:
        g.reserve(name)
    for ins, outs in carried.values():
        for name in (*ins, *outs):
            if g.is_taken(name):
                raise ExportError(f"model '{model.name}' already has a value named '{name}'")
            g.reserve(name)
    inputs = [_value_info(i.name, i.shape(), g, model.sizes) for i in model.inputs]
    inputs += [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "time", "letters"])
        for name in spelled
    ]
    mask = None
    if lengths is not None:
        if lengths in {i.name for i in model.inputs} | {n.name for n in model.nodes}:
            raise ExportError(f"model '{model.name}' already has a value named '{lengths}'")
        timed = [i.name for i in model.inputs if i.shape().has_time]
        if not timed:
            raise ExportError(f"model '{model.name}' has no time axis, so it takes no lengths")
        g.reserve(lengths)
        inputs.append(helper.make_tensor_value_info(lengths, TensorProto.INT64, ["batch"]))
        mask = _mask(g, timed[0], lengths)
    for node, emit in emits:
        on_sequences = any(model.shape_of(name).has_time for name in node.inputs)
        prefix = f"{node.name}."
        out = emit(
            Emit(
                g=g,
                node=node,
                xs=_reads(model, node),
                out=node.name,
                params={k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)},
                state={k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)},
                mask=mask if on_sequences else None,
                lengths=lengths if on_sequences else None,
                sizes=dict(model.sizes),
                recurrence=recurrence,
                state_in=carried.get(node.name, ([], []))[0],
                state_out=carried.get(node.name, ([], []))[1],
            )
        )
        assert out == node.name, f"the emitter of {node.op} wrote {out}, not {node.name}"
    outputs = [_value_info(name, model.shape_of(name), g, model.sizes) for name in model.outputs]
    for node_name, (ins, outs) in carried.items():
        hidden = hidden_of(model, model.node(node_name))
        inputs += [helper.make_tensor_value_info(n, g.elem, ["batch", hidden]) for n in ins]
        outputs += [helper.make_tensor_value_info(n, g.elem, ["batch", hidden]) for n in outs]
    graph = g.graph(model.name, inputs, outputs)
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=ir_version_for(opset),
    )


def state_names(node_name: str, parts: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """A recurrent node's state inputs (``NODE.h0``, ``NODE.c0``) and outputs
    (``NODE.hn``, ``NODE.cn``) in a graph exported with its state."""
    return [f"{node_name}.{p}0" for p in parts], [f"{node_name}.{p}n" for p in parts]


def _state_names(model: Model, lengths: str | None) -> dict[str, tuple[list[str], list[str]]]:
    """Every recurrent node's state names, or an ExportError for what cannot carry."""
    if lengths is not None:
        raise ExportError(
            "a graph that takes and returns the recurrent state runs every row to its "
            "end: export it without --lengths"
        )
    try:
        refuse_reversed(model, "exporting the state")
    except ValueError as err:
        raise ExportError(str(err)) from None
    return {n.name: state_names(n.name, state_parts(n)) for n in carried_nodes(model)}


def _on_letters(model: Model, node: NodeBase) -> bool:
    return node.recurrent and model.shape_of(node.inputs[0]).has_letters


def _emitter(model: Model, node: NodeBase, emitters: Mapping[str, Emitter]) -> Emitter:
    """The node's emitter; a recurrent layer on letters runs it along each word."""
    emit = emitter_for(node, model.name, emitters)
    return along_letters(emit) if _on_letters(model, node) else emit


def _reads(model: Model, node: NodeBase) -> list[str]:
    """The graph values a node's emitter takes, as specc's networks feed their kernels:
    `spell` the letters fed with the words, a layer on letters its input and them."""
    if node.op != "spell" and not _on_letters(model, node):
        return list(node.inputs)
    name = node.inputs[0]
    inputs = {i.name for i in model.inputs}
    while name not in inputs:
        name = model.node(name).inputs[0]
    letters = spelling_feed(name)
    return [letters] if node.op == "spell" else [node.inputs[0], letters]


def _value_info(name: str, shape: Shape, g: GraphBuilder, sizes: Mapping[str, int]):
    dims: list[int | str | None] = []
    for d in shape.dims:
        if isinstance(d, int):
            dims.append(d)
        elif d in AXES:
            dims.append(AXES[d])
        else:
            dims.append(sizes.get(d))
    elem = TensorProto.INT64 if shape.ids else g.elem
    return helper.make_tensor_value_info(name, elem, dims)


def _mask(g: GraphBuilder, x: str, lengths: str) -> str:
    """(B, T, 1): 1 where t < lengths[b], 0 at padding, as specc's batches mask."""
    h = "mask"
    t_len = g.op("Gather", [g.op("Shape", [x], h), g.const(1, np.int64, "one")], h, axis=0)
    steps = g.op("Range", [g.const(0, np.int64, "zero"), t_len, g.const(1, np.int64, "one")], h)
    real = g.op(
        "Less",
        [
            g.op("Unsqueeze", [steps, g.ints(0)], h),  # (1, T)
            g.op("Unsqueeze", [lengths, g.ints(1)], h),  # (B, 1)
        ],
        h,
    )
    return g.op("Unsqueeze", [g.op("Cast", [real], h, to=g.elem), g.ints(2)], h)
