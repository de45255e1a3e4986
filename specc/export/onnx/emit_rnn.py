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
from onnx import TensorProto

from specc.export import ExportError
from specc.export.onnx.builder import Emit
from specc.export.onnx.emit_elementwise import activation
from specc.export.onnx.emit_scan import Cell, Step, scan
from specc.ir.ops import Activation

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
    return scan(e, "b", ["W_hh"], ["h"], _rnn_cell(e.node.activation))  # type: ignore[attr-defined]


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


def _rnn_cell(act: Activation) -> Cell:
    """The Scan body's step of an rnn with activation ``act``:
    h_t = act(xw_t + h_prev·W_hh), zero when padded."""

    def step(s: Step, prev: list[str], xw_t: str) -> list[str]:
        (h_prev,) = prev
        pre = s.op("Add", xw_t, s.op("MatMul", h_prev, s.w["W_hh"]))
        return [s.masked(activation(s.body, act.name, act.leak, pre, s.h, None))]

    return step
