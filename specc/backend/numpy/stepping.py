"""One time step at a time, fast: the network as a chain of small step functions.

Sampling a character model feeds one character per call. The executor's
sequence machinery (time-major layouts, the buffer pool, fusion, BPTT caches)
costs far more than the arithmetic of a single step of a small batch, so a
`FastStepper` runs each node as a closure over (B, N) rows instead: the
recurrent cells as one step of their equation, from states it carries, the
lookups as row gathers, dense and batchnorm (with its running statistics) as a
product and an affine map, the activations in place. Ops without a step
function of their own run their kernel's forward on the (B, N) rows in
evaluation mode, which every op acting on each step alone supports; a model
with any other op is stepped by `specc.backend.graph.Stepper` instead.

The closures read the parameters when they run (views into the network's flat
arrays), so a stepper follows training; the numbers are the sequence kernels'
to rounding (tests/test_carry.py holds every op to 1e-12 in float64).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from specc.backend.carry import State, check_state, hidden_of, state_parts
from specc.backend.numpy.activations import activate, stable_sigmoid
from specc.backend.numpy.blas import gemm
from specc.ir.ops import NodeBase

#: One node's step: its inputs' rows -> its output's rows (never one of its inputs).
StepFn = Callable[[list[np.ndarray]], np.ndarray]

#: Ops whose kernel's own forward runs on (B, N) rows as on (B, T, N).
KERNEL_ON_ROWS = frozenset({"gelu", "softmax", "concat", "add", "identity", "dropout"})


class FastStepper:
    """Scores of one step at a time for the numpy backend (see the module docstring).

    Built by `Network.stepper`; ``state`` is where the first step begins, and
    `state` reads where the latest one ended. Raises `NotImplementedError` for a
    model with an op it cannot step (the caller then steps the generic way).
    """

    def __init__(self, net: Any, state: State) -> None:
        model = net.model
        self._input = model.inputs[0].name
        out = model.node(model.outputs[0])
        self._scores = out.inputs[0] if out.op == "softmax" else out.name
        check_state(model, state)
        self._states: dict[str, np.ndarray] = {
            k: np.array(v, dtype=net.dtype) for k, v in state.items()
        }
        self._plan: list[tuple[str, tuple[str, ...], StepFn]] = []
        for node in model.nodes:
            if node.name == out.name and out.name != self._scores:
                continue  # the final softmax: sampling starts from the scores
            fn = self._step_fn(net, node)
            self._plan.append((node.name, tuple(node.inputs), fn))

    @property
    def state(self) -> State:
        """Every recurrent layer's state after the latest step (copies)."""
        return {k: v.copy() for k, v in self._states.items()}

    def scores(self, x: np.ndarray) -> np.ndarray:
        """One step: token ids (B,) or floats (B, N) in, the scores (B, C) out."""
        values: dict[str, np.ndarray] = {self._input: x}
        for name, ins, fn in self._plan:
            values[name] = fn([values[i] for i in ins])
        return values[self._scores]

    # ----- the step functions -------------------------------------------------------

    def _step_fn(self, net: Any, node: NodeBase) -> StepFn:
        params = net._node_params.get(node.name, {})
        make = _MAKERS.get(node.op)
        if make is not None:
            return make(net, node, params, self._states)
        if node.op in KERNEL_ON_ROWS:
            kernel, state, rng = net.kernels[node.name], net._node_state[node.name], net.rng
            return lambda xs: kernel.forward(params, state, xs, None, False, rng)[0]
        raise NotImplementedError(node.op)


Maker = Callable[[Any, NodeBase, dict[str, np.ndarray], dict[str, np.ndarray]], StepFn]


def _product(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` into a new array, through `gemm` (MKL where it gains: numpy's own
    product of one row is slow to start on a busy machine)."""
    out = np.empty((x.shape[0], w.shape[1]), np.result_type(x.dtype, w.dtype))
    gemm(np.ascontiguousarray(x, dtype=out.dtype), w.astype(out.dtype, copy=False), out)
    return out


def _embedding(net, node, p, states) -> StepFn:
    e = p["E"]
    return lambda xs: e[xs[0]]


def _one_hot(net, node, p, states) -> StepFn:
    eye = np.eye(int(net.model.sizes["vocab"]), dtype=net.dtype)
    return lambda xs: eye[xs[0]]


def _dense(net, node, p, states) -> StepFn:
    w, b = p["W"], p.get("b")

    def step(xs: list[np.ndarray]) -> np.ndarray:
        y = _product(xs[0], w)
        if b is not None:
            y += b
        return y

    return step


def _batchnorm(net, node, p, states) -> StepFn:
    state = net._node_state[node.name]
    mean, var, eps = state["running_mean"], state["running_var"], node.eps  # type: ignore[attr-defined]
    gamma, beta = p.get("gamma"), p.get("beta")

    def step(xs: list[np.ndarray]) -> np.ndarray:
        y = np.subtract(xs[0], mean)
        y /= np.sqrt(var + eps)
        if gamma is not None:
            y *= gamma
            y += beta
        return y

    return step


def _activation(name: str) -> Maker:
    def make(net, node, p, states) -> StepFn:
        slope = float(getattr(node, "slope", 0.0))

        def step(xs: list[np.ndarray]) -> np.ndarray:
            y = np.empty_like(xs[0])
            activate(name, slope, xs[0], y)
            return y

        return step

    return make


def _state(states: dict[str, np.ndarray], net: Any, node: NodeBase) -> list[np.ndarray]:
    """The node's carried arrays (h, then c), which its step updates in place."""
    return [states[f"{node.name}.{part}"] for part in state_parts(node)]


def _rnn(net, node, p, states) -> StepFn:
    (h,) = _state(states, net, node)
    w_xh, w_hh, b = p["W_xh"], p["W_hh"], p["b"]
    act = node.activation  # type: ignore[attr-defined]
    name, slope = act.name, act.leak

    def step(xs: list[np.ndarray]) -> np.ndarray:
        a = _product(xs[0], w_xh)
        gemm(h, w_hh, a, accumulate=True)
        a += b
        activate(name, slope, a, h)
        return h.copy()

    return step


def _lstm(net, node, p, states) -> StepFn:
    h, c = _state(states, net, node)
    w_xh, w_hh, b = p["W_xh"], p["W_hh"], p["b"]
    hid = hidden_of(net.model, node)

    def step(xs: list[np.ndarray]) -> np.ndarray:
        a = _product(xs[0], w_xh)
        gemm(h, w_hh, a, accumulate=True)
        a += b
        i = stable_sigmoid(a[:, :hid])
        f = stable_sigmoid(a[:, hid : 2 * hid])
        o = stable_sigmoid(a[:, 3 * hid :])
        np.multiply(c, f, out=c)
        np.add(c, i * np.tanh(a[:, 2 * hid : 3 * hid]), out=c)
        np.multiply(o, np.tanh(c), out=h)
        return h.copy()

    return step


def _gru(net, node, p, states) -> StepFn:
    (h,) = _state(states, net, node)
    w_xh, w_hh, b_xh, b_hh = p["W_xh"], p["W_hh"], p["b_xh"], p["b_hh"]
    hid = hidden_of(net.model, node)

    def step(xs: list[np.ndarray]) -> np.ndarray:
        ax = _product(xs[0], w_xh)
        ax += b_xh
        ah = _product(h, w_hh)
        ah += b_hh
        rz = stable_sigmoid(ax[:, : 2 * hid] + ah[:, : 2 * hid])
        r, z = rz[:, :hid], rz[:, hid:]
        n = np.tanh(ax[:, 2 * hid :] + r * ah[:, 2 * hid :])
        np.subtract(h, n, out=h)
        np.multiply(h, z, out=h)
        np.add(h, n, out=h)  # (1 - z)·n + z·h
        return h.copy()

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
