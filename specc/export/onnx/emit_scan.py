"""A recurrent layer as a Scan over time: the body one step of the cell's equation
(docs/language.md), for what onnxruntime's RNN, LSTM and GRU operators do not run
(float64).

x_t·W_xh (+ the input bias) is one MatMul over every step before the Scan; the
body adds h_prev·W_hh, applies the cell and multiplies every carried state by the
step's mask, so that a padded step writes zero state as specc's does and a
reversed row starts from zero at its own last real token. The cells are written
beside their operators (`emit_rnn`, `emit_gated_scan`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from onnx import helper

from specc.export.onnx.builder import Emit, GraphBuilder


@dataclass
class Step:
    """What a cell's step body is built with: the body, the node's name (every
    node's hint), H, the outer graph's weights by short name, and the step's
    mask m_t (B, 1), None for an unpadded batch."""

    body: GraphBuilder
    h: str
    hidden: int
    w: dict[str, str]
    m_t: str | None

    def op(self, op_type: str, *inputs: str) -> str:
        return self.body.op(op_type, list(inputs), self.h)

    def masked(self, value: str) -> str:
        return value if self.m_t is None else self.op("Mul", value, self.m_t)

    def gates(self, a: str, n: int) -> list[str]:
        """The n blocks of H columns of ``a`` (B, n·H), in order."""
        outs = [self.body.fresh(f"{self.h}/Split:{k}") for k in range(n)]
        sizes = self.body.ints(*[self.hidden] * n)
        self.body.op_outputs("Split", [a, sizes], outs, self.h, axis=1)
        return outs


#: A cell's step: (step, previous states, xw_t) -> its new states, masked, h first.
Cell = Callable[[Step, list[str], str], list[str]]


def scan(e: Emit, x_bias: str, inner: list[str], states: list[str], cell: Cell) -> str:
    """x·W_xh + ``x_bias`` for every step at once, then a Scan of ``cell`` carrying
    ``states`` (h first) from zero; its output is every h, or the one returned."""
    g, h, node = e.g, e.node.name, e.node
    hidden = e.params["W_hh"].shape[0]
    xw = g.op("MatMul", [e.xs[0], g.weight(f"{h}.W_xh", e.params["W_xh"])], h)
    xw = g.op("Add", [xw, g.weight(f"{h}.{x_bias}", e.params[x_bias])], h)  # (B, T, gates·H)
    weights = {k: g.weight(f"{h}.{k}", e.params[k]) for k in inner}
    body = g.child()
    step_inputs, step_outputs = _body(Step(body, h, hidden, weights, None), e, states, cell)
    scanned = [xw] if e.mask is None else [xw, e.mask]
    rev = int(node.reverse)  # type: ignore[attr-defined]
    finals = [g.fresh(f"{h}.{k}_last") for k in states]
    hs = g.fresh(f"{h}.hs")
    starts = [e.initial(i, hidden) for i in range(len(states))]
    g.op_outputs(
        "Scan",
        [*starts, *scanned],
        [*finals, hs],
        h,
        body=body.graph(f"{h}_step", step_inputs, step_outputs),
        num_scan_inputs=len(scanned),
        scan_input_axes=[1] * len(scanned),
        scan_input_directions=[rev] * len(scanned),
        scan_output_axes=[1],
        scan_output_directions=[rev],
    )
    for i, final in enumerate(finals):
        e.final(i, final)
    if node.return_ == "sequence":  # type: ignore[attr-defined]
        return g.op("Identity", [hs], h, out=e.out)
    if rev or e.lengths is None:  # the last step run is the state returned
        return g.op("Identity", [finals[0]], h, out=e.out)
    return state_at_last_token(g, hs, e.lengths, hidden, h, e.out)


def _body(s: Step, e: Emit, states: list[str], cell: Cell) -> tuple[list, list]:
    """The step's inputs (the states, xw_t[, m_t]) and outputs (the new states, y_t = h_t)."""
    body, h, hidden = s.body, s.h, s.hidden
    gates = e.params["W_hh"].shape[1]
    prev = [body.fresh(f"{h}.{k}_prev") for k in states]
    xw_t = body.fresh(f"{h}.xw_t")
    inputs = [helper.make_tensor_value_info(p, body.elem, ["batch", hidden]) for p in prev]
    inputs.append(helper.make_tensor_value_info(xw_t, body.elem, ["batch", gates]))
    if e.mask is not None:
        s.m_t = body.fresh(f"{h}.m_t")
        inputs.append(helper.make_tensor_value_info(s.m_t, body.elem, ["batch", 1]))
    new = cell(s, prev, xw_t)
    outs = [body.op("Identity", [v], f"{h}.{k}_t") for k, v in zip(states, new, strict=True)]
    outs.append(body.op("Identity", [new[0]], f"{h}.y_t"))
    return inputs, [helper.make_tensor_value_info(n, body.elem, ["batch", hidden]) for n in outs]


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
