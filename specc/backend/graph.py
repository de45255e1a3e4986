"""What every backend's network shares: parameters made from the IR, and the public API.

A backend is a subclass of `Network` with a table of kernels by op name
(`KERNELS`), the losses (`LOSSES`), and two methods: `_run` (forward over the
graph, keeping every value and each node's cache) and `_backward` (the
reverse pass into `flat_grads`). Everything else lives here once:

* parameters and buffers are declared and initialised by the ops themselves
  (`specc.ir.ops`), each node from its own random stream, so every backend
  starts from the same weights for the same seed;
* they live in one flat array per dtype (`flat_params`, `flat_grads`), with
  named views in `params`, so one clip norm and one optimizer update cover
  everything while users read and write `net.params["rnn.W_hh"]`;
* the public seams that training, `diagnose` and `gradcheck` use: `forward`,
  `trace` (a forward that keeps what backward needs), `backward` (from any
  upstream gradients, optionally observing each recurrent layer's dL/dh_t),
  `vjp`, `loss_and_grads` and `backward_flat` (the training step);
* carried recurrent state (`carrying`, `step`, `stepper`, `zero_state`; see
  `specc.backend.carry`): truncated BPTT and sampling one step at a time.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from specc.backend.carry import (
    State,
    carried_nodes,
    check_state,
    refuse_reversed,
    state_parts,
    zero_state,
)
from specc.backend.letters import Letters
from specc.errors import SpecError
from specc.ir.ops import NodeBase, spelling_feed
from specc.ir.spec import Model

#: Observes one recurrent layer's hidden-state gradients: (node name, dL/dh as
#: (B, T, H) in the original time order, zero at padded steps).
StateGradWatch = Callable[[str, np.ndarray], None]
#: A loss: (prediction or logits, targets, mask) -> (mean loss, gradient at its input).
Loss = Callable[[np.ndarray, np.ndarray, np.ndarray | None], tuple[float, np.ndarray]]


def node_seed(seed: int, name: str) -> np.random.Generator:
    """Each node draws from its own stream, so renaming or adding one node
    leaves every other node's initial weights unchanged."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


@dataclass
class Trace:
    """One forward pass kept for backward: every value by name, and each node's cache
    (whose contents only the backend that made it reads)."""

    values: dict[str, np.ndarray]
    caches: dict[str, Any]


class Network:
    """A model ready to run on one backend: kernels, parameters, buffers."""

    #: The name `--backend` takes.
    backend: ClassVar[str] = ""
    #: op name -> kernel class, built as ``cls(node, sizes, dtype)``.
    KERNELS: ClassVar[Mapping[str, type]] = {}
    #: loss name -> function (see `Loss`); cross_entropy takes the logits.
    LOSSES: ClassVar[Mapping[str, Loss]] = {}
    #: How a recurrent kernel runs along the letters of words (see specc.backend.letters).
    LETTERS: ClassVar[type] = Letters

    def __init__(self, model: Model, seed: int = 0, dtype: str | np.dtype = "float32") -> None:
        self.model = model
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise SpecError(f"dtype must be a float type such as float32, got {dtype}")
        self.seed = seed
        self._check_bound()
        self._inputs = {i.name for i in model.inputs}
        self._nodes = {n.name: n for n in model.nodes}
        self.kernels: dict[str, Any] = {n.name: self._kernel(n) for n in model.nodes}
        self._node_params: dict[str, dict[str, np.ndarray]] = {}
        self._node_grads: dict[str, dict[str, np.ndarray]] = {}
        self._node_state: dict[str, dict[str, np.ndarray]] = {}
        self._allocate()
        self.rng = np.random.default_rng([seed, 1])  # dropout's stream
        self._spelled = sorted({self._spelling(n) for n in model.nodes if n.op == "spell"})
        #: node name -> the values its kernel takes (see `_reads`), worked out once
        self.reads: dict[str, list[str]] = {n.name: self._reads(n) for n in model.nodes}

    # ----- construction ------------------------------------------------------------

    def _kernel(self, node: NodeBase) -> Any:
        self.check_ops(self.model, [node])
        kernel = self.KERNELS[node.op](node, self.model.sizes, self.dtype)
        if node.recurrent and self.model.shape_of(node.inputs[0]).has_letters:
            return self.LETTERS(kernel, alike=self._alike(node.inputs[0]))
        return kernel

    @classmethod
    def check_ops(cls, model: Model, nodes: list[NodeBase] | None = None) -> None:
        """Refuse, by name, the first op of ``model`` (or of ``nodes``) this backend
        has no kernel for. Needs no sizes bound, so `explain` asks it too."""
        for node in model.nodes if nodes is None else nodes:
            if node.op not in cls.KERNELS:
                raise SpecError(
                    f"the {cls.backend} backend cannot run op '{node.op}' (node '{node.name}' "
                    f"of model '{model.name}'); use --backend numpy"
                )

    @classmethod
    def resolve_device(cls, device: str | None) -> str:
        """Where this backend would run on ``device`` (None: its default), or an
        OptionError saying why it cannot. The CPU-only backends run on the CPU."""
        return "cpu"

    def _alike(self, name: str) -> bool:
        """Whether a value is the same for every occurrence of a spelling: made from
        `spell`'s letters by ops that treat each word on its own (no dropout, whose
        masks differ, and no batch statistics)."""
        if name not in self._nodes:
            return False
        node = self._nodes[name]
        if node.op == "spell":
            return True
        if node.op in ("dropout", "batchnorm"):
            return False
        return all(self._alike(src) for src in node.inputs)

    def _spelling(self, node: NodeBase) -> str:
        """The `inputs` key of the letters a node reads: those of the tokens input its
        first inputs lead back to (through its `spell`)."""
        name = node.inputs[0]
        while name not in self._inputs:
            name = self._nodes[name].inputs[0]
        return spelling_feed(name)

    def _reads(self, node: NodeBase) -> list[str]:
        """The values a node's kernel takes: its inputs; `spell` takes the letters fed
        with its words, and a recurrent layer on letters the letters too (their
        lengths are its mask)."""
        if node.op == "spell":
            return [self._spelling(node)]
        if node.recurrent and self.model.shape_of(node.inputs[0]).has_letters:
            return [node.inputs[0], self._spelling(node)]
        return list(node.inputs)

    def _check_bound(self) -> None:
        for node in self.model.nodes:
            for pname, shape in self.model.param_shapes(node).items():
                for d in shape:
                    if isinstance(d, str):
                        raise SpecError(
                            f"size '{d}' of {node.name}.{pname} is not bound; "
                            f"pass sizes={{'{d}': N}} when building model '{self.model.name}'"
                        )

    def _allocate(self) -> None:
        layout: list[tuple[str, str, np.ndarray]] = []
        for node in self.model.nodes:
            shapes = self.model.param_shapes(node)
            init = node.init_params(shapes, node_seed(self.seed, node.name), self.dtype)
            layout.extend((node.name, pname, init[pname]) for pname in shapes)
            bound = {
                k: tuple(self.model.sizes.get(d, d) if isinstance(d, str) else d for d in v)
                for k, v in self.model.state_shapes(node).items()
            }
            self._node_state[node.name] = {
                k: np.ascontiguousarray(v, dtype=self.dtype)
                for k, v in node.init_state(bound, self.dtype).items()
            }
        total = sum(value.size for _, _, value in layout)
        self.flat_params = np.zeros(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        self.params: dict[str, np.ndarray] = {}
        self.param_slices: dict[str, slice] = {}
        offset = 0
        for node_name, pname, value in layout:
            size = value.size
            view = self.flat_params[offset : offset + size].reshape(value.shape)
            view[...] = value
            gview = self.flat_grads[offset : offset + size].reshape(value.shape)
            self._node_params.setdefault(node_name, {})[pname] = view
            self._node_grads.setdefault(node_name, {})[pname] = gview
            key = f"{node_name}.{pname}"
            self.params[key] = view
            self.param_slices[key] = slice(offset, offset + size)
            offset += size
        self.state: dict[str, np.ndarray] = {
            f"{node}.{k}": v for node, bufs in self._node_state.items() for k, v in bufs.items()
        }

    @property
    def param_count(self) -> int:
        return int(self.flat_params.size)

    def load(self, params: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        """Copy weights (and buffers) in by name, into the live arrays."""
        for key, value in params.items():
            self.params[key][...] = value
        for key, value in (state or {}).items():
            self.state[key][...] = value

    def astype(self, dtype: str | np.dtype) -> Network:
        """A copy computing in another dtype, e.g. float64 for gradients that
        fall below float32's range."""
        copy = type(self)(self.model, seed=self.seed, dtype=dtype)
        copy.load(self.params, self.state)
        return copy

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = {}
        for inp in self.model.inputs:
            if inp.name not in inputs:
                raise ValueError(
                    f"model '{self.model.name}' needs input '{inp.name}' "
                    f"(got {', '.join(inputs) or 'none'})"
                )
            x = np.asarray(inputs[inp.name])
            if inp.type == "tokens":
                if x.ndim != 2 or x.dtype.kind not in "iu":
                    raise ValueError(
                        f"input '{inp.name}' takes integer token ids of shape (B, T), "
                        f"got {x.dtype} {x.shape}"
                    )
                x = x.astype(np.int64, copy=False)
            else:
                want = 3 if inp.type == "sequence" else 2
                if x.ndim != want or x.shape[-1] != inp.size:
                    raise ValueError(
                        f"input '{inp.name}' takes floats of shape "
                        f"{'(B, T, ' if want == 3 else '(B, '}{inp.size}), got {x.shape}"
                    )
                x = x.astype(self.dtype, copy=False)
            values[inp.name] = x
        for key in self._spelled:
            values[key] = self._letters(inputs, key, values[key.rsplit(":", 1)[0]])
        return values

    def _letters(self, inputs: dict[str, Any], key: str, words: np.ndarray) -> np.ndarray:
        if key not in inputs:
            raise ValueError(
                f"model '{self.model.name}' spells its words: give their letters as "
                f"inputs['{key}'], character ids (B, T, C) with 0 past each word's end"
            )
        letters = np.asarray(inputs[key])
        if letters.ndim != 3 or letters.dtype.kind not in "iu" or letters.shape[:2] != words.shape:
            raise ValueError(
                f"inputs['{key}'] takes integer character ids of shape (B, T, C) with (B, T) "
                f"= {words.shape}, got {letters.dtype} {letters.shape}"
            )
        return letters.astype(np.int64, copy=False)

    # ----- what a backend provides ---------------------------------------------------

    def _run(
        self,
        inputs: dict[str, Any],
        train: bool,
        mask: np.ndarray | None,
        stop_before: str | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Forward over the graph (skipping ``stop_before``): every value and every cache."""
        raise NotImplementedError

    def _backward(self, caches: dict[str, Any], upstream: dict[str, np.ndarray]) -> None:
        """Reverse pass from ``upstream`` gradients into `flat_grads`, zeroed first;
        modifies nothing passed in."""
        raise NotImplementedError

    # ----- the public seams --------------------------------------------------------

    def trace(
        self,
        inputs: dict[str, Any],
        train: bool = True,
        mask: np.ndarray | None = None,
        stop_before: str | None = None,
    ) -> Trace:
        """Run forward and keep every value and what backward needs. ``stop_before``
        skips one node (the final softmax, to start a loss from the logits)."""
        values, caches = self._run(inputs, train, mask, stop_before)
        return Trace(values, caches)

    def backward(
        self,
        trace: Trace,
        upstream: dict[str, np.ndarray],
        watch: StateGradWatch | None = None,
    ) -> None:
        """Backpropagate chosen gradients at any values of ``trace`` into `flat_grads`
        (zeroed first; `grads` names them). ``watch`` sees each recurrent layer's
        dL/dh_t (see `StateGradWatch`). The trace can be run backward again."""
        watched = [
            self.kernels[n.name] for n in self.model.nodes if n.recurrent and watch is not None
        ]
        for kernel in watched:
            kernel.watch = _named(watch, kernel.node.name)
        try:
            self._backward(trace.caches, upstream)
        finally:
            for kernel in watched:
                kernel.watch = None

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The gradient of every parameter after a backward, named like `params` (views)."""
        return {
            k: self.flat_grads[s].reshape(self.params[k].shape)
            for k, s in self.param_slices.items()
        }

    def forward(
        self, inputs: dict[str, Any], train: bool = False, mask: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Run the graph; returns every output by name. `train` uses batch
        statistics (and updates running ones) and applies dropout."""
        values, _ = self._run(inputs, train, mask)
        return {name: np.ascontiguousarray(values[name]) for name in self.model.outputs}

    def scores(
        self, inputs: dict[str, Any], mask: np.ndarray | None = None, train: bool = False
    ) -> np.ndarray:
        """The first output before its final softmax (the output itself otherwise):
        what losses and sampling start from."""
        out = self.model.node(self.model.outputs[0])
        name, stop = (out.inputs[0], out.name) if out.op == "softmax" else (out.name, None)
        values, _ = self._run(inputs, train, mask, stop)
        return np.ascontiguousarray(values[name])

    def vjp(
        self,
        inputs: dict[str, Any],
        upstream: dict[str, np.ndarray],
        mask: np.ndarray | None = None,
        train: bool = True,
    ) -> dict[str, np.ndarray]:
        """Forward, then backward from arbitrary output gradients into `flat_grads`.

        Gradient checks use this with a random upstream gradient, which catches
        errors an all-ones gradient (or a loss alone) would hide."""
        trace = self.trace(inputs, train, mask)
        self.backward(trace, upstream)
        return {name: np.ascontiguousarray(trace.values[name]) for name in self.model.outputs}

    def _loss_start(self, targets: np.ndarray, loss: str | None, output: str | None):
        """(loss kind, the output's name, the value the loss starts from)."""
        out_name = output or self.model.outputs[0]
        kind = loss or ("cross_entropy" if np.asarray(targets).dtype.kind in "iu" else "mse")
        out_node = self._nodes.get(out_name)
        if out_node is None and out_name not in self._inputs:
            self.model.node(out_name)  # raises the model's own error for an unknown name
        if kind == "cross_entropy":
            if out_node is None or out_node.op != "softmax":
                raise ValueError(
                    f"cross_entropy needs a softmax output; '{out_name}' is "
                    f"{out_node.op if out_node else 'an input'}"
                )
            return kind, out_name, out_node.inputs[0]
        return kind, out_name, out_name

    def backward_flat(
        self,
        inputs: dict[str, Any],
        targets: np.ndarray,
        mask: np.ndarray | None = None,
        loss: str | None = None,
        output: str | None = None,
        train: bool = True,
    ) -> float:
        """Loss and gradients into `flat_grads` (zeroed first): the training step.
        Cross-entropy on a softmax output starts from the logits."""
        kind, out_name, start = self._loss_start(targets, loss, output)
        stop = out_name if kind == "cross_entropy" else None
        values, caches = self._run(inputs, train, mask, stop)
        pred = values[start]
        if kind == "mse":
            targets = np.asarray(targets, dtype=self.dtype).reshape(pred.shape)
            mask = mask if (mask is not None and pred.ndim == 3) else None
        value, dstart = self.LOSSES[kind](pred, targets, mask)
        self._backward(caches, {start: dstart})
        return float(value)

    def loss_and_grads(
        self,
        inputs: dict[str, Any],
        targets: Any,
        mask: np.ndarray | None = None,
        loss: str | None = None,
        train: bool = True,
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Mean loss over all target positions (nats) and a gradient per parameter.

        Integer targets mean cross-entropy, float targets mean squared error.
        The gradients are fresh copies keyed like `params`.
        """
        value = self.backward_flat(inputs, np.asarray(targets), mask, loss, train=train)
        return value, {k: g.copy() for k, g in self.grads.items()}

    # ----- carried state (see specc.backend.carry) -----------------------------------

    def zero_state(self, batch: int) -> State:
        """Zeros for every recurrent layer's state (``NODE.h``, ``NODE.c``), (batch, H)."""
        return zero_state(self.model, batch, self.dtype)

    @contextlib.contextmanager
    def carrying(self, state: State) -> Iterator[Carried]:
        """Within the block each forward pass (`forward`, `scores`, `trace`,
        `backward_flat`...) begins every recurrent layer where the previous pass
        ended, the first pass from ``state``; no gradient crosses a pass's start
        (truncated BPTT). The yielded `Carried`'s ``state`` is the state after the
        latest pass, and stays readable after the block."""
        refuse_reversed(self.model, "carrying state")
        check_state(self.model, state)
        nodes = carried_nodes(self.model)
        kernels = [self.kernels[n.name] for n in nodes]
        saved = [k.carry for k in kernels]
        for node, kernel in zip(nodes, kernels, strict=True):
            kernel.carry = tuple(
                np.asarray(state[f"{node.name}.{p}"], dtype=self.dtype) for p in state_parts(node)
            )
        carried = Carried(nodes, kernels)
        try:
            yield carried
        finally:
            carried.close()
            for kernel, before in zip(kernels, saved, strict=True):
                kernel.carry = before

    def step(
        self, inputs: dict[str, Any], state: State | None = None
    ) -> tuple[dict[str, np.ndarray], State]:
        """Run the graph in evaluation mode over the steps given (usually one) from
        ``state`` (zeros when None); returns every output by name and the state after
        the last step. Stepping a sequence one step at a time gives the outputs of
        running it whole: every op but the recurrent ones acts on each step alone."""
        if state is None:
            batch = next(iter(self._prepare_inputs(inputs).values())).shape[0]
            state = self.zero_state(batch)
        with self.carrying(state) as carried:
            outputs = self.forward(inputs)
        return outputs, carried.state

    def stepper(self, state: State | None = None, batch: int = 1) -> Stepper:
        """A `Stepper`: scores one step at a time from ``state`` (zeros for ``batch``
        rows when None), carrying the state from call to call; what sampling runs."""
        refuse_reversed(self.model, "stepping")
        return Stepper(self, self.zero_state(batch) if state is None else state)


class Stepper:
    """Scores of one step at a time, the state carried between calls (any backend:
    each call is a `Network.scores` of one step inside `Network.carrying`)."""

    def __init__(self, net: Network, state: State) -> None:
        check_state(net.model, state)
        self._net = net
        self.state: State = dict(state)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """One step: token ids (B,) or floats (B, N) in, the scores (B, C) out
        (before the final softmax, as `Network.scores`)."""
        inputs = {self._net.model.inputs[0].name: np.asarray(x)[:, None]}
        with self._net.carrying(self.state) as carried:
            out = self._net.scores(inputs)
        self.state = carried.state
        return out[:, -1] if out.ndim == 3 else out  # return=last gives (B, C) already


class Carried:
    """The state of a `Network.carrying` block: the latest pass's final states."""

    def __init__(self, nodes: list[NodeBase], kernels: list[Any]) -> None:
        self._nodes = nodes
        self._kernels: list[Any] | None = kernels
        self._closed: State = {}

    @property
    def state(self) -> State:
        """``NODE.h`` (and ``NODE.c``) after the latest pass (before any, the start)."""
        if self._kernels is None:
            return self._closed
        return {
            f"{node.name}.{part}": value
            for node, kernel in zip(self._nodes, self._kernels, strict=True)
            for part, value in zip(state_parts(node), kernel.carry, strict=True)
        }

    def close(self) -> None:
        self._closed = self.state
        self._kernels = None


def _named(watch: StateGradWatch, name: str) -> Callable[[np.ndarray], None]:
    return lambda dh: watch(name, dh)
