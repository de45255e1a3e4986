"""One time step at a time, fast: the network as a chain of small step functions.

Sampling a character model feeds one character per call. The executor's
sequence machinery (time-major layouts, the buffer pool, fusion, BPTT caches)
costs far more than the arithmetic of one step of a small batch, so a
`FastStepper` runs each node as a closure over (B, N) rows held in buffers of
its own: the recurrent cells as one step of their equation on states they
carry (``h_{t-1}·W_hh`` by one MKL call where it gains), an embedding read by
a recurrent layer alone folded into that layer's input projection (a table of
``E·W_xh + b``, one row per token), batchnorm as the affine map its running
statistics make, dense as a product, activations in place. Ops without a
step function of their own run their kernel's forward on the rows in
evaluation mode, which every op acting on each step alone supports. A model
that is a chain of the common ops (every node reading the previous one alone,
as a character model usually is) runs instead as one compiled chain with
fewer calls still (`specc.backend.numpy.chainstep`).

A stepper reads the weights when it is made (the folded tables and the
batchnorm maps are computed then): make a new one after changing them. Each
call's scores live in a buffer the next call overwrites. The numbers are the
sequence kernels' to rounding (tests/test_carry.py: 1e-12 in float64).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from specc.backend.carry import State, check_state, hidden_of, state_parts
from specc.backend.numpy.activations import activate
from specc.backend.numpy.blas import row_addresses, step_product
from specc.backend.numpy.chainstep import batchnorm_map, compile_chain, gru_gates, lstm_gates
from specc.ir.ops import NodeBase

#: One node's step: its inputs' rows -> its output's rows (never one of its inputs).
StepFn = Callable[[list[np.ndarray]], np.ndarray]

#: Ops whose kernel's own forward runs on (B, N) rows as on (B, T, N).
KERNEL_ON_ROWS = frozenset({"gelu", "softmax", "concat", "add", "identity", "dropout"})


class FastStepper:
    """Scores of one step at a time for the numpy backend (see the module docstring).

    Made by `Network.stepper`; ``state`` is where the first step begins, and
    `state` reads where the latest one ended. Raises `NotImplementedError` for a
    model with an op it cannot step (the caller then steps the generic way).
    """

    def __init__(self, net: Any, state: State) -> None:
        model = net.model
        check_state(model, state)
        self._input = model.inputs[0].name
        out = model.node(model.outputs[0])
        self._scores = out.inputs[0] if out.op == "softmax" else out.name
        self._states = {k: np.array(v, dtype=net.dtype) for k, v in state.items()}
        self._rows = next(iter(self._states.values())).shape[0] if self._states else None
        #: "chain" when the whole model runs as one compiled chain (chainstep.py),
        #: "nodes" when node by node.
        self.plan = "nodes"
        if self._rows is not None:
            try:
                chain = compile_chain(net, self._states, self._rows)
            except NotImplementedError:
                pass
            else:
                self._states, self.plan = chain.states, "chain"
                self.scores = chain.scores  # type: ignore[method-assign]  # no wrapper call
                return
        folded = _folded_embeddings(net)
        self._plan: list[tuple[str, tuple[str, ...], StepFn]] = []
        for node in model.nodes:
            if node.name == out.name and out.name != self._scores:
                continue  # the final softmax: sampling starts from the scores
            if node.name in folded.values():
                continue  # read by its recurrent layer's table
            embedding = next((e for r, e in folded.items() if r == node.name), None)
            cx = _Context(net, node, self._states, embedding)
            ins = tuple(model.node(embedding).inputs) if embedding else tuple(node.inputs)
            self._plan.append((node.name, ins, self._step_fn(cx)))
        # the plan as slots of one list: no name is looked up while stepping
        slot = {self._input: 0} | {name: i + 1 for i, (name, _, _) in enumerate(self._plan)}
        self._slots: list[Any] = [None] * (len(self._plan) + 1)
        self._run = [(slot[name], [slot[i] for i in ins], fn) for name, ins, fn in self._plan]
        self._out = slot[self._scores]

    @property
    def state(self) -> State:
        """Every recurrent layer's state after the latest step (copies)."""
        return {k: v.copy() for k, v in self._states.items()}

    def scores(self, x: np.ndarray) -> np.ndarray:
        """One step: token ids (B,) or floats (B, N) in, the scores (B, C) out, in a
        buffer the next call overwrites."""
        slots = self._slots
        slots[0] = x
        for at, ins, fn in self._run:
            slots[at] = fn([slots[i] for i in ins])
        return slots[self._out]

    def _step_fn(self, cx: _Context) -> StepFn:
        make = _MAKERS.get(cx.node.op)
        if make is not None:
            return make(cx)
        if cx.node.op in KERNEL_ON_ROWS:
            kernel, state, rng = cx.net.kernels[cx.node.name], cx.buffers, cx.net.rng
            return lambda xs: kernel.forward(cx.params, state, xs, None, False, rng)[0]
        raise NotImplementedError(cx.node.op)


def _folded_embeddings(net: Any) -> dict[str, str]:
    """recurrent node -> the embedding it alone reads (and reads alone), whose lookup
    and input projection become one table."""
    model, readers = net.model, net._readers
    out = {}
    for node in model.nodes:
        if not node.recurrent or len(node.inputs) != 1:
            continue
        src = model.node(node.inputs[0]) if node.inputs[0] in net._nodes else None
        alone = src is not None and len(readers.get(src.name, ())) == 1
        if alone and src.op == "embedding" and src.name not in model.outputs:
            out[node.name] = src.name
    return out


class _Context:
    """What a step function is made from: the node, its arrays, the carried states."""

    def __init__(
        self, net: Any, node: NodeBase, states: dict[str, np.ndarray], embedding: str | None
    ) -> None:
        self.net, self.node, self.states, self.embedding = net, node, states, embedding
        self.params = net._node_params.get(node.name, {})
        self.buffers = net._node_state[node.name]
        self.dtype = net.dtype

    def carried(self) -> list[np.ndarray]:
        """The node's carried arrays (h, then c), which its step updates in place."""
        return [self.states[f"{self.node.name}.{part}"] for part in state_parts(self.node)]

    def projection(self, w_xh: np.ndarray, bias: np.ndarray) -> Callable[[Any, np.ndarray], None]:
        """``proj(x, out)``: out = x·W_xh + bias, or the folded embedding's row per id."""
        if self.embedding is not None:
            table = self.net._node_params[self.embedding]["E"] @ w_xh + bias
            return lambda ids, out: np.take(table, ids, axis=0, out=out)

        def proj(x: np.ndarray, out: np.ndarray) -> None:
            np.dot(x, w_xh, out)
            out += bias

        return proj


def _recurrence(w: np.ndarray, h: np.ndarray, a: np.ndarray) -> Callable[[], None]:
    """``a += h·w`` for the fixed arrays h and a: one MKL call where it gains."""
    product = step_product(w, h.shape[0], accumulate=True)
    if product is not None:
        (h_at,), (a_at,) = row_addresses(h[None]), row_addresses(a[None])
        return lambda: product(h_at, a_at)
    scratch = np.empty_like(a)
    dot, add = np.dot, np.add
    return lambda: (dot(h, w, scratch), add(a, scratch, a))  # type: ignore[func-returns-value]


Maker = Callable[[_Context], StepFn]


def _embedding(cx: _Context) -> StepFn:
    e = cx.params["E"]
    return lambda xs: e[xs[0]]


def _one_hot(cx: _Context) -> StepFn:
    eye = np.eye(int(cx.net.model.sizes["vocab"]), dtype=cx.dtype)
    return lambda xs: eye[xs[0]]


def _dense(cx: _Context) -> StepFn:
    w, b = cx.params["W"], cx.params.get("b")

    def step(xs: list[np.ndarray]) -> np.ndarray:
        y = np.dot(xs[0], w)
        if b is not None:
            y += b
        return y

    return step


def _batchnorm(cx: _Context) -> StepFn:
    """y = x·scale + shift, the map its running statistics make in evaluation."""
    scale, shift = (v.astype(cx.dtype) for v in batchnorm_map(cx.net, cx.node))
    multiply, add = np.multiply, np.add

    def step(xs: list[np.ndarray]) -> np.ndarray:
        y = multiply(xs[0], scale)
        return add(y, shift, y)

    return step


def _activation(name: str) -> Maker:
    def make(cx: _Context) -> StepFn:
        slope = float(getattr(cx.node, "slope", 0.0))

        def step(xs: list[np.ndarray]) -> np.ndarray:
            y = np.empty_like(xs[0])
            activate(name, slope, xs[0], y)
            return y

        return step

    return make


def _rnn(cx: _Context) -> StepFn:
    (h,) = cx.carried()
    p, act = cx.params, cx.node.activation  # type: ignore[attr-defined]
    proj = cx.projection(p["W_xh"], p["b"])
    a = np.empty_like(h)
    recur = _recurrence(p["W_hh"], h, a)
    name, slope = act.name, act.leak

    def step(xs: list[np.ndarray]) -> np.ndarray:
        proj(xs[0], a)
        recur()
        activate(name, slope, a, h)
        return h

    return step


def _lstm(cx: _Context) -> StepFn:
    h, c = cx.carried()
    p = cx.params
    hid = hidden_of(cx.net.model, cx.node)
    proj = cx.projection(p["W_xh"], p["b"])
    a = np.empty((h.shape[0], 4 * hid), h.dtype)
    recur = _recurrence(p["W_hh"], h, a)
    gates = lstm_gates(a, h, c)

    def step(xs: list[np.ndarray]) -> np.ndarray:
        proj(xs[0], a)
        recur()
        gates()
        return h

    return step


def _gru(cx: _Context) -> StepFn:
    (h,) = cx.carried()
    p = cx.params
    hid = hidden_of(cx.net.model, cx.node)
    proj = cx.projection(p["W_xh"], p["b_xh"])
    ax = np.empty((h.shape[0], 3 * hid), h.dtype)
    ah = np.empty_like(ax)
    w_hh, b_hh = p["W_hh"], p["b_hh"]
    gates = gru_gates(ax, ah, h)

    def step(xs: list[np.ndarray]) -> np.ndarray:
        proj(xs[0], ax)
        np.dot(h, w_hh, ah)
        np.add(ah, b_hh, out=ah)
        gates()
        return h

    return step


_MAKERS: dict[str, Maker] = {
    "embedding": _embedding,
    "one_hot": _one_hot,
    "dense": _dense,
    "batchnorm": _batchnorm,
    "relu": _activation("relu"),
    "tanh": _activation("tanh"),
    "sigmoid": _activation("sigmoid"),
    "leaky_relu": _activation("leaky_relu"),
    "rnn": _rnn,
    "lstm": _lstm,
    "gru": _gru,
}
