"""The lstm and gru as a Scan over time, for what onnxruntime's LSTM and GRU do
not run (float64): the cells' equations of docs/language.md, step by step.

x_t·W_xh (+ the input bias) is one MatMul over every step before the Scan; the
body adds h_prev·W_hh, applies the gates and multiplies every carried state by
the step's mask, so that a padded step writes zero state as specc's does and a
reversed row starts from zero at its own last real token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from onnx import helper

from specc.export.onnx.builder import Emit, GraphBuilder
from specc.export.onnx.emit_rnn import state_at_last_token


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


def _lstm_step(s: Step, prev: list[str], xw_t: str) -> list[str]:
    """c_t = σ(f)⊙c_prev + σ(i)⊙tanh(g), h_t = σ(o)⊙tanh(c_t), both zero when padded."""
    h_prev, c_prev = prev
    i, f, g, o = s.gates(s.op("Add", xw_t, s.op("MatMul", h_prev, s.w["W_hh"])), 4)
    i, f, o = (s.op("Sigmoid", v) for v in (i, f, o))
    c = s.masked(s.op("Add", s.op("Mul", f, c_prev), s.op("Mul", i, s.op("Tanh", g))))
    return [s.masked(s.op("Mul", o, s.op("Tanh", c))), c]


def _gru_step(s: Step, prev: list[str], xw_t: str) -> list[str]:
    """r, z = σ(xw_[rz] + h_prev·W_h[rz] + b_h[rz]), n = tanh(xw_n + r⊙(h_prev·W_hn + b_hn)),
    h_t = (1 − z)⊙n + z⊙h_prev, zero when padded."""
    (h_prev,) = prev
    xr, xz, xn = s.gates(xw_t, 3)
    hr, hz, hn = s.gates(s.op("Add", s.op("MatMul", h_prev, s.w["W_hh"]), s.w["b_hh"]), 3)
    r, z = s.op("Sigmoid", s.op("Add", xr, hr)), s.op("Sigmoid", s.op("Add", xz, hz))
    n = s.op("Tanh", s.op("Add", xn, s.op("Mul", r, hn)))
    one_minus_z = s.op("Sub", s.body.const(1.0), z)
    return [s.masked(s.op("Add", s.op("Mul", one_minus_z, n), s.op("Mul", z, h_prev)))]


def lstm_scan(e: Emit) -> str:
    return _scan(e, "b", ["W_hh"], ["h", "c"], _lstm_step)


def gru_scan(e: Emit) -> str:
    return _scan(e, "b_xh", ["W_hh", "b_hh"], ["h"], _gru_step)


def _scan(e: Emit, x_bias: str, inner: list[str], states: list[str], cell: Cell) -> str:
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
