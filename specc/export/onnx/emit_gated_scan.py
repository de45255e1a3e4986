"""The lstm and gru cells of the Scan that writes them where onnxruntime's LSTM and
GRU operators do not run (float64; see `emit_scan`): each cell's equations of
docs/language.md, one step."""

from __future__ import annotations

from specc.export.onnx.builder import Emit
from specc.export.onnx.emit_scan import Step, scan


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
    return scan(e, "b", ["W_hh"], ["h", "c"], _lstm_step)


def gru_scan(e: Emit) -> str:
    return scan(e, "b_xh", ["W_hh", "b_hh"], ["h"], _gru_step)
