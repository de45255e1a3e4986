"""The rnn's emitter: ONNX's RNN operator where onnxruntime runs it, a Scan where not.

onnxruntime implements RNN for float32 only, and only with the time axis
first (it refuses ``layout=1``), so the float32 graph transposes around one
RNN node. Its ``sequence_lens`` does what specc's mask does: a forward row
stops at its last real token (zeros after it, ``Y_h`` its state there) and a
reversed row starts there from zero. Anywhere else (float64) the recurrence
is a Scan over the time axis whose body is the equation
h_t = act(x_t·W_xh + h_{t∓1}·W_hh + b)·m_t, exactly as specc runs it.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from specc.export import ExportError
from specc.export.onnx.builder import Emit, GraphBuilder
from specc.export.onnx.emit_elementwise import activation

#: specc's activation name -> the name in RNN's ``activations`` attribute
RNN_ACTIVATIONS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "leaky_relu": "LeakyRelu"}
#: How recurrent ops may be written: `auto` picks RNN for float32 and Scan otherwise.
RECURRENCES = ("auto", "rnn", "scan")


def uses_rnn_operator(dtype: np.dtype, recurrence: str) -> bool:
    """Whether the RNN operator (rather than a Scan) writes the recurrence."""
    if recurrence not in RECURRENCES:
        raise ExportError(f"recurrence must be one of {', '.join(RECURRENCES)}, got {recurrence!r}")
    if recurrence == "rnn" and np.dtype(dtype) != np.float32:
        raise ExportError(
            f"onnxruntime runs the RNN operator in float32 only, not {np.dtype(dtype)}; "
            "export float32 or let recurrence=auto write a Scan"
        )
    return recurrence == "rnn" or (recurrence == "auto" and np.dtype(dtype) == np.float32)


def rnn(e: Emit) -> str:
    if uses_rnn_operator(e.g.dtype, e.recurrence):
        return _rnn_operator(e)
    return _scan(e)


def _rnn_operator(e: Emit) -> str:
    g, h, node = e.g, e.node.name, e.node
    w_xh, w_hh, b = e.params["W_xh"], e.params["W_hh"], e.params["b"]
    hidden = w_hh.shape[0]
    inputs = [
        g.op("Transpose", [e.xs[0]], h, perm=[1, 0, 2]),  # (T, B, N)
        g.weight(f"{h}.W", w_xh.T[None]),  # ONNX keeps W as (directions, H, N)
        g.weight(f"{h}.R", w_hh.T[None]),
        g.weight(f"{h}.B", np.concatenate([b, np.zeros_like(b)])[None]),  # Wb + Rb = b
    ]
    if e.lengths is not None:
        inputs.append(g.op("Cast", [e.lengths], h, to=TensorProto.INT32))
    name, leak = node.activation.name, node.activation.leak  # type: ignore[attr-defined]
    attrs: dict = {"activations": [RNN_ACTIVATIONS[name]]}
    if name == "leaky_relu":
        attrs["activation_alpha"] = [float(leak)]
    direction = "reverse" if node.reverse else "forward"  # type: ignore[attr-defined]
    attrs.update(hidden_size=hidden, direction=direction)
    return operator_outputs(e, "RNN", inputs, attrs)


def operator_outputs(e: Emit, op_type: str, inputs: list[str], attrs: dict) -> str:
    """One RNN, LSTM or GRU node (time first) on ``inputs`` (X, W, R, B, and the
    lengths when padded), starting from the graph's states when it takes them: its Y
    (every state) or Y_h (the last one run) as the layer's output, and its Y_h (and
    Y_c) as the final states when the graph returns them."""
    g, h, node = e.g, e.node.name, e.node
    if e.state_in:
        inputs = inputs + [""] * (5 - len(inputs))  # no sequence_lens: every step is real
        inputs += [g.op("Unsqueeze", [s, g.ints(0)], h) for s in e.state_in]  # (1, B, H)
    last = node.return_ == "last"  # type: ignore[attr-defined]
    y = "" if last else g.fresh(f"{h}.Y")
    finals = [g.fresh(f"{h}.Y_{k}") for k in "hc"[: max(len(e.state_out), int(last))]]
    g.op_outputs(op_type, inputs, [y, *finals], h, **attrs)
    for i, final in enumerate(finals[: len(e.state_out)]):
        e.final(i, g.op("Squeeze", [final, g.ints(0)], h))
    if last:
        return g.op("Squeeze", [finals[0], g.ints(0)], h, out=e.out)
    y = g.op("Squeeze", [y, g.ints(1)], h)  # (T, B, H)
    return g.op("Transpose", [y], h, out=e.out, perm=[1, 0, 2])


def _scan(e: Emit) -> str:
    g, h, node = e.g, e.node.name, e.node
    hidden = e.params["W_hh"].shape[0]
    xw = g.op("MatMul", [e.xs[0], g.weight(f"{h}.W_xh", e.params["W_xh"])], h)
    xw = g.op("Add", [xw, g.weight(f"{h}.b", e.params["b"])], h)  # (B, T, H), every step at once
    w_hh = g.weight(f"{h}.W_hh", e.params["W_hh"])
    body = g.child()
    step_inputs, step_outputs = _step(body, e, w_hh, hidden)
    scanned = [xw] if e.mask is None else [xw, e.mask]
    rev = int(node.reverse)  # type: ignore[attr-defined]
    last, hs = g.fresh(f"{h}.h_last"), g.fresh(f"{h}.hs")
    g.op_outputs(
        "Scan",
        [e.initial(0, hidden), *scanned],
        [last, hs],
        h,
        body=body.graph(f"{h}_step", step_inputs, step_outputs),
        num_scan_inputs=len(scanned),
        scan_input_axes=[1] * len(scanned),
        scan_input_directions=[rev] * len(scanned),
        scan_output_axes=[1],
        scan_output_directions=[rev],
    )
    e.final(0, last)
    if node.return_ == "sequence":  # type: ignore[attr-defined]
        return g.op("Identity", [hs], h, out=e.out)
    if rev or e.lengths is None:  # the last step run is the state returned
        return g.op("Identity", [last], h, out=e.out)
    return state_at_last_token(g, hs, e.lengths, hidden, h, e.out)


def state_at_last_token(
    g: GraphBuilder, hs: str, lengths: str, hidden: int, h: str, out: str
) -> str:
    """(B, H): each row's state at its last real token, hs[b, max(lengths[b] − 1, 0)],
    what a forward recurrent layer over a padded batch returns with return=last."""
    step = g.op("Max", [g.op("Sub", [lengths, g.ints(1)], h), g.ints(0)], h)
    index = g.op("Unsqueeze", [step, g.ints(1, 2)], h)
    index = g.op("Expand", [index, g.ints(1, 1, hidden)], h)  # (B, 1, H)
    picked = g.op("GatherElements", [hs, index], h, axis=1)
    return g.op("Squeeze", [picked, g.ints(1)], h, out=out)


def _step(body: GraphBuilder, e: Emit, w_hh: str, hidden: int) -> tuple[list, list]:
    """One step's body, its inputs and outputs: (h_prev, xw_t[, m_t]) -> (h_t, y_t),
    the state carried on and the step's output (the same values)."""
    h, act = e.node.name, e.node.activation  # type: ignore[attr-defined]
    prev, xw_t = body.fresh(f"{h}.h_prev"), body.fresh(f"{h}.xw_t")
    inputs = [
        helper.make_tensor_value_info(prev, body.elem, ["batch", hidden]),
        helper.make_tensor_value_info(xw_t, body.elem, ["batch", hidden]),
    ]
    pre = body.op("Add", [xw_t, body.op("MatMul", [prev, w_hh], h)], h)
    state = activation(body, act.name, act.leak, pre, h, None)
    if e.mask is not None:
        m_t = body.fresh(f"{h}.m_t")
        inputs.append(helper.make_tensor_value_info(m_t, body.elem, ["batch", 1]))
        state = body.op("Mul", [state, m_t], h)  # a padded step's state is zero
    outs = [body.op("Identity", [state], f"{h}.h_t"), body.op("Identity", [state], f"{h}.y_t")]
    return inputs, [helper.make_tensor_value_info(n, body.elem, ["batch", hidden]) for n in outs]
