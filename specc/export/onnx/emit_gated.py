"""The lstm's and gru's emitters: ONNX's LSTM and GRU operators in float32, a Scan
elsewhere (`emit_gated_scan`), chosen as for the rnn (`uses_rnn_operator`).

specc keeps PyTorch's gate order and layout, ONNX its own, so the weights are
reordered here rather than in the graph: ONNX's LSTM takes i, o, f, c (ours
are i, f, g, o) and its GRU z, r, h (ours r, z, n), each as (directions,
gates·H, N) with ``B`` = [Wb, Rb]. The lstm's one bias goes in Wb with zeros
in Rb (their sum is what the cell adds); the gru's two biases map onto Wb and
Rb one for one, and ``linear_before_reset=1`` puts b_hn inside r⊙(…) as our
equation does. As for the rnn, onnxruntime runs these in float32 only and time
first, and ``sequence_lens`` masks as specc does: a forward row stops at its
last real token (``Y_h`` its state there) and a reversed row starts there.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from specc.export.onnx.builder import Emit
from specc.export.onnx.emit_gated_scan import gru_scan, lstm_scan
from specc.export.onnx.emit_rnn import operator_outputs, uses_rnn_operator

#: Where each of ONNX's gate blocks is in ours: LSTM i, o, f, c from i, f, g, o.
LSTM_ORDER = (0, 3, 1, 2)
#: GRU z, r, h from r, z, n.
GRU_ORDER = (1, 0, 2)


def reorder_gates(w: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """The gate blocks of the last axis of ``w`` (one block of H columns each)
    rearranged so that ONNX's k-th gate is our ``order[k]``-th."""
    blocks = np.split(w, len(order), axis=-1)
    return np.concatenate([blocks[k] for k in order], axis=-1)


def lstm(e: Emit) -> str:
    if not uses_rnn_operator(e.g.dtype, e.recurrence):
        return lstm_scan(e)
    b = reorder_gates(e.params["b"], LSTM_ORDER)
    return _operator(e, "LSTM", LSTM_ORDER, np.concatenate([b, np.zeros_like(b)]), {})


def gru(e: Emit) -> str:
    if not uses_rnn_operator(e.g.dtype, e.recurrence):
        return gru_scan(e)
    wb = reorder_gates(e.params["b_xh"], GRU_ORDER)
    rb = reorder_gates(e.params["b_hh"], GRU_ORDER)
    return _operator(e, "GRU", GRU_ORDER, np.concatenate([wb, rb]), {"linear_before_reset": 1})


def _operator(e: Emit, op_type: str, order: tuple[int, ...], bias: np.ndarray, attrs: dict) -> str:
    """One LSTM or GRU node, transposed around (onnxruntime refuses ``layout=1``),
    its Y (every state) or Y_h (the last one run) as the layer's output."""
    g, h, node = e.g, e.node.name, e.node
    w_hh = e.params["W_hh"]
    hidden = w_hh.shape[0]
    inputs = [
        g.op("Transpose", [e.xs[0]], h, perm=[1, 0, 2]),  # (T, B, N)
        g.weight(f"{h}.W", reorder_gates(e.params["W_xh"], order).T[None]),  # (1, gates·H, N)
        g.weight(f"{h}.R", reorder_gates(w_hh, order).T[None]),  # (1, gates·H, H)
        g.weight(f"{h}.B", bias[None]),  # (1, 2·gates·H)
    ]
    if e.lengths is not None:
        inputs.append(g.op("Cast", [e.lengths], h, to=TensorProto.INT32))
    direction = "reverse" if node.reverse else "forward"  # type: ignore[attr-defined]
    attrs = {"hidden_size": hidden, "direction": direction, **attrs}
    return operator_outputs(e, op_type, inputs, attrs)
