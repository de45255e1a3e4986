"""The stepper's fast path for chains: every layer's rows side by side in one buffer.

A character model is usually a chain (each node reads the previous one alone):
embedding -> rnn -> batchnorm -> leaky_relu -> dense. Sampling it at batch 1
spends its time on NumPy's cost per call, not on arithmetic, so this path makes
each step as few calls as it can:

* Every node's output is a segment of one row buffer (the *tape*), each segment
  right after its input's. A recurrent layer then multiplies ``[x | 1 | h]`` by
  its stacked ``[W_xh; b; W_hh]`` in one product, reading its input, a constant
  1 for the bias and its own carried state where they already lie.
* Tokens are a one-hot segment: setting two numbers replaces the lookup, and
  the embedding (with whatever acts on it elementwise before the first product)
  is folded into the product's input rows, ``E·W_xh + b``.
* A batchnorm in evaluation is the affine map ``x·s + t``: it is folded into
  the next product's weights, and through a following relu or leaky_relu too:
  ``lrelu(y) = α·y + (1-α)·relu(y)``, and ``relu(s·x + t)`` is
  ``s·(max(x, k) - k)`` (``min`` where ``s < 0``) with ``k = -t/s``, so
  ``batchnorm -> leaky_relu -> dense`` is one clamp of x into m and one product
  over ``[x | 1 | m]``.

Models of other shapes, and chains with an op not covered here, take the
per-node plan of `specc.backend.numpy.stepping`. Weights are folded in float64
and then rounded to the network's dtype; the scores are the sequence kernels'
to rounding (tests/test_stepping.py: 1e-12 in float64).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from specc.backend.carry import State, hidden_of
from specc.backend.numpy.activations import activate, stable_sigmoid
from specc.backend.numpy.blas import row_addresses, step_product
from specc.ir.ops import NodeBase

#: One step of the plan, on the tape and the arrays it closes over.
Step = Callable[[], Any]

#: Elementwise ops a chain covers, and ops that leave a step's rows as they are.
ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid", "leaky_relu"})
PASSING = frozenset({"dropout", "identity"})
CHAIN_OPS = ACTIVATIONS | PASSING | {"embedding", "one_hot", "dense", "batchnorm"}
CHAIN_OPS |= {"rnn", "lstm", "gru"}


@dataclass(frozen=True)
class _Value:
    """A node's output: the tape segment [start, end), then maps not yet applied to
    it, ``onehot·table`` (tokens, maps folded in) or ``x·scale + shift``."""

    start: int
    end: int
    table: np.ndarray | None = None
    scale: np.ndarray | None = None
    shift: np.ndarray | None = None

    @property
    def affine(self) -> bool:
        return self.scale is not None or self.shift is not None


class ChainPlan:
    """A chain compiled for ``rows`` rows: `scores` runs one step; ``states`` are the
    carried arrays (each h a view of the tape), which the steps update in place."""

    def __init__(self, net: Any, nodes: list[NodeBase], start: State, rows: int) -> None:
        self._net, self._rows, self._dtype = net, rows, net.dtype
        self._width = 0
        self._ones: list[int] = []
        self._makers: list[Callable[[np.ndarray], Step | tuple[Step, ...]]] = []
        self._carried: dict[str, tuple[int, int]] = {}
        self._final: np.ndarray | None = None
        self.states: dict[str, np.ndarray] = {}
        value, feeder = self._input(net.model.inputs[0], nodes[0])
        i = 0
        while i < len(nodes):
            node, after = nodes[i], nodes[i + 1] if i + 1 < len(nodes) else None
            rectified = node.op in ("relu", "leaky_relu") and value.table is None
            if rectified and after is not None and after.op == "dense":
                value = self._rectified_dense(value, node, after, after is nodes[-1])
                i += 2
                continue
            value = self._node(value, node, node is nodes[-1])
            i += 1
        if self._final is None and (value.table is not None or value.affine):
            value = self._materialise(value)
        tape = np.zeros((rows, max(self._width, 1)), dtype=self._dtype)
        for at in self._ones:
            tape[:, at] = 1
        self.states |= {key: tape[:, a:b] for key, (a, b) in self._carried.items()}
        for key, array in self.states.items():
            array[...] = start[key]
        made = [make(tape) for make in self._makers]
        steps = [s for step in made for s in (step if isinstance(step, tuple) else (step,))]
        out = tape[:, value.start : value.end] if self._final is None else self._final
        feed = feeder(tape)

        def scores(x: np.ndarray) -> np.ndarray:
            feed(x)
            for step in steps:
                step()
            return out

        self.scores = scores

    def _reserve(self, n: int) -> tuple[int, int]:
        at = self._width
        self._width += n
        return at, at + n

    def _one(self) -> None:
        """A constant 1 on the tape, right after the latest segment (a bias's row)."""
        self._ones.append(self._reserve(1)[0])

    def _input(self, spec: Any, first: NodeBase) -> tuple[_Value, Callable[[np.ndarray], Any]]:
        """The input's segment and what writes it: a one-hot of the ids for tokens,
        with the lookup pending as a table; the rows themselves for a sequence."""
        if spec.type == "tokens":
            if first.op == "embedding":
                table = self._net._node_params[first.name]["E"].astype(np.float64)
            elif first.op == "one_hot":
                table = np.eye(int(self._net.model.sizes["vocab"]))
            else:
                raise NotImplementedError(first.op)
            a, b = self._reserve(table.shape[0])
            return _Value(a, b, table=table), lambda tape: _one_hot_feed(tape, a, b - a)
        if spec.type != "sequence":
            raise NotImplementedError(spec.type)
        a, b = self._reserve(int(spec.size))
        return _Value(a, b), lambda tape: partial(np.copyto, tape[:, a:b])

    def _node(self, value: _Value, node: NodeBase, last: bool) -> _Value:
        op, p = node.op, self._net._node_params.get(node.name, {})
        if op in ("embedding", "one_hot") or op in PASSING:
            return value  # the lookup is the input's pending table; dropout is off
        if op == "batchnorm":
            return _then_affine(value, *batchnorm_map(self._net, node))
        if op in ACTIVATIONS:
            return self._activation(value, op, float(getattr(node, "slope", 0.0)))
        if op == "dense":
            return self._product(value, *_folded(value, p["W"], p.get("b")), last)
        if op in ("rnn", "lstm", "gru"):
            return self._recurrent(value, node, p)
        raise NotImplementedError(op)

    def _activation(self, value: _Value, name: str, slope: float) -> _Value:
        if value.table is not None:  # the row a one-hot picks, acted on
            table = np.empty_like(value.table)
            activate(name, slope, value.table, table)
            return replace(value, table=table)
        src = self._materialise(value) if value.affine else value
        a, b = self._reserve(src.end - src.start)
        s0, s1 = src.start, src.end
        self._makers.append(lambda tape: _elementwise(name, slope, tape[:, s0:s1], tape[:, a:b]))
        return _Value(a, b)

    def _materialise(self, value: _Value) -> _Value:
        """The pending maps applied, their result on a segment of its own."""
        if value.table is not None:
            rows = value.table.astype(self._dtype)
            return self._emit(value.start, value.end, rows, last=False)
        a, b = self._reserve(value.end - value.start)
        s0, s1, n, dtype = value.start, value.end, b - a, self._dtype
        s = (np.ones(n) if value.scale is None else value.scale).astype(dtype)
        t = (np.zeros(n) if value.shift is None else value.shift).astype(dtype)

        def make(tape: np.ndarray) -> Step:
            x, y = tape[:, s0:s1], tape[:, a:b]
            return lambda: (np.multiply(x, s, out=y), np.add(y, t, out=y))

        self._makers.append(make)
        return _Value(a, b)

    def _product(self, value: _Value, w: np.ndarray, bias: np.ndarray | None, last: bool) -> _Value:
        """``[x | 1]·[w; bias]`` (``x·w`` with no bias) into a new segment, or into
        the scores' own array for the chain's last node."""
        if bias is not None:
            self._one()
            w = np.concatenate([w, bias[None]])
        return self._emit(value.start, self._width, w, last)

    def _emit(self, s0: int, s1: int, w: np.ndarray, last: bool) -> _Value:
        w = np.ascontiguousarray(w, dtype=self._dtype)
        if last:
            self._final = out = np.empty((self._rows, w.shape[1]), dtype=self._dtype)
            self._makers.append(lambda tape: _dot(tape[:, s0:s1], w, out))
            return _Value(0, w.shape[1])
        a, b = self._reserve(w.shape[1])
        self._makers.append(lambda tape: _dot(tape[:, s0:s1], w, tape[:, a:b]))
        return _Value(a, b)

    def _rectified_dense(self, value: _Value, act: NodeBase, dense: NodeBase, last: bool) -> _Value:
        """relu/leaky_relu (slope α) of ``x·s + t``, then dense: one clamp of x into m,
        one product over ``[x | 1 | m]`` (see the module docstring)."""
        n, alpha = value.end - value.start, float(getattr(act, "slope", 0.0))
        s = np.ones(n) if value.scale is None else value.scale
        t = np.zeros(n) if value.shift is None else value.shift
        p = self._net._node_params[dense.name]
        w = p["W"].astype(np.float64)
        live = s != 0
        k = np.where(live, -t / np.where(live, s, 1.0), 0.0)
        lo = np.where(s > 0, k, -np.inf).astype(self._dtype)
        hi = np.where(s < 0, k, np.inf).astype(self._dtype)
        const = alpha * (t @ w) + (1 - alpha) * (np.where(live, t, np.maximum(t, 0)) @ w)
        if "b" in p:
            const = const + p["b"]
        rows = [const[None], (1 - alpha) * s[:, None] * w]
        x0 = value.start
        self._one()
        m0, m1 = self._reserve(n)
        if alpha != 0:
            rows.insert(0, alpha * s[:, None] * w)
        read = x0 if alpha != 0 else m0 - 1
        above, below = bool((s > 0).any()), bool((s < 0).any())

        def make(tape: np.ndarray) -> Step:
            x, m = tape[:, x0 : x0 + n], tape[:, m0:m1]
            if above and below:
                return lambda: (np.maximum(x, lo, out=m), np.minimum(m, hi, out=m))
            if above or below:
                return partial(np.maximum if above else np.minimum, x, lo if above else hi, out=m)
            return partial(np.copyto, m, x)  # every scale 0: m is weighed by zeros

        self._makers.append(make)
        return self._emit(read, m1, np.concatenate(rows), last)

    def _recurrent(self, value: _Value, node: NodeBase, p: dict[str, np.ndarray]) -> _Value:
        """rnn or lstm: one product over ``[x | 1 | h]``, then the cell's equation (gru: two)."""
        hid = hidden_of(self._net.model, node)
        if node.op == "gru":
            return self._gru(value, node, p, hid)
        w_in, bias = _folded(value, p["W_xh"], p["b"])
        parts = [w_in]
        if bias is not None:
            self._one()
            parts.append(bias[None])
        h0, h1 = self._reserve(hid)
        parts.append(p["W_hh"])
        w = np.ascontiguousarray(np.concatenate(parts), dtype=self._dtype)
        x0, dtype, rows = value.start, self._dtype, self._rows
        self._carried[f"{node.name}.h"] = (h0, h1)
        if node.op == "rnn":
            act = node.activation  # type: ignore[attr-defined]
            a = np.empty((rows, hid), dtype)
            cell = partial(_rnn_cell, w=w, a=a, name=act.name, slope=act.leak)
        else:
            c = self.states[f"{node.name}.c"] = np.empty((rows, hid), dtype)
            cell = partial(_lstm_cell, w=w, c=c)
        self._makers.append(lambda tape: cell(tape[:, x0:h1], tape[:, h0:h1]))
        return _Value(h0, h1)

    def _gru(self, value: _Value, node: NodeBase, p: dict[str, np.ndarray], hid: int) -> _Value:
        """gru: ``[x | 1]·[W_xh; b_xh]`` and ``[1 | h]·[b_hh; W_hh]`` (its reset gate
        acts on the second alone), then its equation."""
        w_in, bias = _folded(value, p["W_xh"], p["b_xh"])
        x0, x1 = value.start, self._width
        self._one()
        if bias is not None:
            w_in, x1 = np.concatenate([w_in, bias[None]]), x1 + 1
        h0, h1 = self._reserve(hid)
        w_x = np.ascontiguousarray(w_in, dtype=self._dtype)
        w_h = np.ascontiguousarray(np.concatenate([p["b_hh"][None], p["W_hh"]]), self._dtype)
        ax, ah = (np.empty((self._rows, 3 * hid), self._dtype) for _ in range(2))
        self._carried[f"{node.name}.h"] = (h0, h1)

        def make(tape: np.ndarray) -> tuple[Step, ...]:
            h = tape[:, h0:h1]
            return (
                _dot(tape[:, x0:x1], w_x, ax),
                _dot(tape[:, h0 - 1 : h1], w_h, ah),
                gru_gates(ax, ah, h),
            )

        self._makers.append(make)
        return _Value(h0, h1)


def compile_chain(net: Any, start: State, rows: int) -> ChainPlan:
    """The chain plan of ``net``'s model; `NotImplementedError` when the model is not
    a chain of the ops this path covers (the caller then plans node by node)."""
    model, readers = net.model, net._readers
    if len(model.inputs) != 1 or len(model.outputs) != 1 or not model.nodes:
        raise NotImplementedError("not a chain")
    prev = model.inputs[0].name
    for node in model.nodes:
        if list(node.inputs) != [prev] or len(readers.get(prev, ())) != 1:
            raise NotImplementedError("not a chain")
        prev = node.name
    nodes = list(model.nodes)
    if nodes[-1].op == "softmax":
        nodes.pop()  # sampling starts from the scores
    if prev != model.outputs[0] or not nodes or any(n.op not in CHAIN_OPS for n in nodes):
        raise NotImplementedError("an op the chain path does not cover")
    return ChainPlan(net, nodes, start, rows)


def batchnorm_map(net: Any, node: NodeBase) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) in float64: batchnorm in evaluation is ``x·s + t`` by its running statistics."""
    stats, p = net._node_state[node.name], net._node_params.get(node.name, {})
    scale = 1.0 / np.sqrt(stats["running_var"].astype(np.float64) + node.eps)  # type: ignore[attr-defined]
    if "gamma" in p:
        scale = scale * p["gamma"]
    return scale, -stats["running_mean"] * scale + p.get("beta", 0.0)


def _then_affine(value: _Value, s: np.ndarray, t: np.ndarray) -> _Value:
    """``value·s + t``: into a pending table's rows (a one-hot row sums to 1), or
    composed with the pending affine map."""
    if value.table is not None:
        return replace(value, table=value.table * s + t)
    scale = s if value.scale is None else value.scale * s
    shift = t if value.shift is None else value.shift * s + t
    return replace(value, scale=scale, shift=shift)


def _folded(
    value: _Value, w: np.ndarray, b: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The weights of ``map(x)·w + b`` on the segment's rows, in float64, and the bias
    left over (None when folded into a table's rows or absent)."""
    w = w.astype(np.float64)
    if value.table is not None:
        rows = value.table @ w
        return (rows if b is None else rows + b), None
    if value.shift is not None:
        b = value.shift @ w if b is None else b + value.shift @ w
    if value.scale is not None:
        w = value.scale[:, None] * w
    return w, b


def _dot(src: np.ndarray, w: np.ndarray, out: np.ndarray) -> Step:
    """``out = src·w``: into ``out`` itself where it is contiguous (one row)."""
    if out.flags.c_contiguous and src.flags.c_contiguous:
        product = step_product(w, src.shape[0])
        if product is not None:  # MKL, where its gain outweighs a ctypes call
            (src_at,), (out_at,) = row_addresses(src[None]), row_addresses(out[None])
            return partial(product, src_at, out_at)
        return partial(np.dot, src, w, out)
    if out.flags.c_contiguous:
        return partial(np.dot, src, w, out)
    tmp = np.empty(out.shape, out.dtype)
    return lambda: (np.dot(src, w, tmp), np.copyto(out, tmp))


def _elementwise(name: str, slope: float, x: np.ndarray, y: np.ndarray) -> Step:
    if name == "tanh":
        return partial(np.tanh, x, y)
    return partial(activate, name, slope, x, y)


def _rnn_cell(
    xh: np.ndarray, h: np.ndarray, w: np.ndarray, a: np.ndarray, name: str, slope: float
) -> tuple[Step, ...]:
    return _dot(xh, w, a), _elementwise(name, slope, a, h)


def _lstm_cell(xh: np.ndarray, h: np.ndarray, w: np.ndarray, c: np.ndarray) -> tuple[Step, ...]:
    a = np.empty((h.shape[0], w.shape[1]), w.dtype)
    return _dot(xh, w, a), lstm_gates(a, h, c)


def lstm_gates(a: np.ndarray, h: np.ndarray, c: np.ndarray) -> Step:
    """The lstm's equation from its summed pre-activations ``a`` (gates i, f, g, o)
    to the new ``c`` and ``h``, written in place."""
    rows, hid = c.shape
    ifo = np.empty((rows, 3, hid), c.dtype)  # σ of i, f, o
    a4, g, tmp = a.reshape(rows, 4, hid), a[:, 2 * hid : 3 * hid], np.empty_like(c)

    def step() -> None:
        stable_sigmoid(a4[:, (0, 1, 3)], out=ifo)
        np.tanh(g, out=g)
        np.multiply(c, ifo[:, 1], out=c)
        np.multiply(ifo[:, 0], g, out=tmp)
        np.add(c, tmp, out=c)
        np.tanh(c, out=tmp)
        np.multiply(ifo[:, 2], tmp, out=h)

    return step


def gru_gates(ax: np.ndarray, ah: np.ndarray, h: np.ndarray) -> Step:
    """The gru's equation from its input's and its state's pre-activations (gates r, z,
    n each) to the new ``h``, written in place (``ax`` and ``ah`` are overwritten)."""
    hid = h.shape[1]
    rz, n, hn = ax[:, : 2 * hid], ax[:, 2 * hid :], ah[:, 2 * hid :]
    r, z = ax[:, :hid], ax[:, hid : 2 * hid]

    def step() -> None:
        np.add(rz, ah[:, : 2 * hid], out=rz)
        stable_sigmoid(rz, out=rz)
        np.multiply(r, hn, out=hn)
        np.add(n, hn, out=n)
        np.tanh(n, out=n)
        np.subtract(h, n, out=h)
        np.multiply(h, z, out=h)
        np.add(h, n, out=h)  # (1 - z)·n + z·h

    return step


def _one_hot_feed(tape: np.ndarray, start: int, vocab: int) -> Callable[[np.ndarray], None]:
    """What writes the ids (rows,) as one-hot rows of the segment at ``start``: the
    previous step's 1s cleared, the new ones set."""
    flat, (rows, width) = tape.reshape(-1), tape.shape
    if rows == 1:
        held = [start]

        def feed_one(x: np.ndarray) -> None:
            i = int(x[0])
            if not 0 <= i < vocab:
                raise IndexError(f"token id {i} is outside the vocabulary of {vocab}")
            flat[held[0]] = 0
            held[0] = start + i
            flat[held[0]] = 1

        return feed_one
    base = np.arange(rows) * width + start
    at = base.copy()

    def feed(x: np.ndarray) -> None:
        ids = np.asarray(x).reshape(rows)
        if ids.min() < 0 or ids.max() >= vocab:
            raise IndexError(f"token ids outside the vocabulary of {vocab}")
        flat[at] = 0
        np.add(base, ids, out=at)
        flat[at] = 1

    return feed
