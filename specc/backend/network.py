"""The executor: a network built from a checked, size-bound model IR.

Parameters, their gradients and (later) optimizer state live in flat arrays;
`params` and `grads` hand out named views into them, so one clip norm and one
optimizer update cover every parameter, while users still read and write
`net.params["rnn.W_hh"]` like any array. Forward runs the nodes in dataflow
order; backward runs them in reverse, summing gradients where a value feeds
several nodes.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from specc.backend.kernels import KERNELS, Kernel, mse, softmax_cross_entropy
from specc.errors import SpecError
from specc.ir import Model
from specc.ops import NodeBase
from specc.passes.shapes import param_shapes


class _Identity(Kernel):
    """`a = b`: a second name for a value."""

    def forward(self, params, state, xs, mask, train, rng):
        return xs[0], None

    def backward(self, params, cache, dy, grads):
        return [dy]


def make_kernel(node: NodeBase, sizes: dict[str, int], dtype: np.dtype) -> Kernel:
    """The kernel of one IR node, from its typed arguments."""
    op = node.op
    if op == "identity":
        return _Identity()
    cls = KERNELS[op]
    if op == "embedding":
        return cls(vocab=sizes["vocab"], dim=node.dim)
    if op == "one_hot":
        return cls(vocab=sizes["vocab"], dtype=dtype)
    if op == "rnn":
        act = node.activation
        return cls(
            hidden=node.hidden,
            activation=act.name,
            slope=act.leak,
            init=node.init,
            reverse=node.reverse,
            return_last=node.return_ == "last",
        )
    if op == "batchnorm":
        return cls(eps=node.eps, momentum=node.momentum, affine=node.affine)
    if op == "leaky_relu":
        return cls(slope=node.slope)
    if op == "dense":
        return cls(units=node.units, bias=node.bias)
    if op == "dropout":
        return cls(p=node.p)
    return cls()


def node_seed(seed: int, name: str) -> np.random.Generator:
    """Each node draws from its own stream, so renaming or adding one node
    leaves every other node's initial weights unchanged."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


class Network:
    """A model ready to run: kernels, parameters, buffers, and the graph order."""

    def __init__(self, model: Model, seed: int = 0, dtype: str | np.dtype = "float32") -> None:
        self.model = model
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise SpecError(f"dtype must be a float type such as float32, got {dtype}")
        self.seed = seed
        self._check_bound()
        self.kernels: dict[str, Kernel] = {
            n.name: make_kernel(n, model.sizes, self.dtype) for n in model.nodes
        }
        self._node_params: dict[str, dict[str, np.ndarray]] = {}
        self._node_grads: dict[str, dict[str, np.ndarray]] = {}
        self._node_state: dict[str, dict[str, np.ndarray]] = {}
        self._allocate()
        self.rng = np.random.default_rng([seed, 1])  # dropout's stream
        self._time_axis = {n.name: self._has_time(n) for n in model.nodes}

    # ----- construction ------------------------------------------------------------

    def _check_bound(self) -> None:
        for node in self.model.nodes:
            for pname, shape in param_shapes(self.model, node).items():
                for d in shape:
                    if isinstance(d, str):
                        raise SpecError(
                            f"size '{d}' of {node.name}.{pname} is not bound; "
                            f"pass sizes={{'{d}': N}} when building model '{self.model.name}'"
                        )

    def _in_shapes(self, node: NodeBase) -> list[tuple[int, ...]]:
        out = []
        for name in node.inputs:
            dims = self.model.shape_of(name).dims
            out.append(tuple(d if isinstance(d, int) else 1 for d in dims))
        return out

    def _has_time(self, node: NodeBase) -> bool:
        return any(self.model.shape_of(n).has_time for n in node.inputs)

    def _allocate(self) -> None:
        layout: list[tuple[str, str, tuple[int, ...], np.ndarray]] = []
        for node in self.model.nodes:
            kernel = self.kernels[node.name]
            ins = self._in_shapes(node)
            init = kernel.init_params(ins, node_seed(self.seed, node.name), self.dtype)
            for pname in kernel.param_names:
                if pname in init:
                    layout.append((node.name, pname, init[pname].shape, init[pname]))
            self._node_state[node.name] = {
                k: np.ascontiguousarray(v, dtype=self.dtype)
                for k, v in kernel.init_state(ins, self.dtype).items()
            }
        total = sum(int(np.prod(shape)) for _, _, shape, _ in layout)
        self.flat_params = np.zeros(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        self.params: dict[str, np.ndarray] = {}
        self.param_slices: dict[str, slice] = {}
        offset = 0
        for node_name, pname, shape, value in layout:
            size = int(np.prod(shape))
            view = self.flat_params[offset : offset + size].reshape(shape)
            view[...] = value
            gview = self.flat_grads[offset : offset + size].reshape(shape)
            self._node_params.setdefault(node_name, {})[pname] = view
            self._node_grads.setdefault(node_name, {})[pname] = gview
            key = f"{node_name}.{pname}"
            self.params[key] = view
            self.param_slices[key] = slice(offset, offset + size)
            offset += size
        self.state: dict[str, np.ndarray] = {
            f"{node}.{k}": v for node, bufs in self._node_state.items() for k, v in bufs.items()
        }

    # ----- running ------------------------------------------------------------

    @property
    def param_count(self) -> int:
        return int(self.flat_params.size)

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
        return values

    def _run(
        self,
        inputs: dict[str, Any],
        train: bool,
        mask: np.ndarray | None,
        stop_before: str | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        values: dict[str, Any] = self._prepare_inputs(inputs)
        if mask is not None:
            mask = np.asarray(mask, dtype=self.dtype)
        caches: dict[str, Any] = {}
        for node in self.model.nodes:
            if node.name == stop_before:
                continue
            kernel = self.kernels[node.name]
            xs = [values[n] for n in node.inputs]
            y, cache = kernel.forward(
                self._node_params.get(node.name, {}),
                self._node_state[node.name],
                xs,
                mask if self._time_axis[node.name] else None,
                train,
                self.rng,
            )
            values[node.name] = y
            caches[node.name] = cache
        return values, caches

    def forward(
        self, inputs: dict[str, Any], train: bool = False, mask: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Run the graph; returns every output by name. `train` uses batch
        statistics (and updates running ones) and applies dropout."""
        values, _ = self._run(inputs, train, mask)
        return {name: values[name] for name in self.model.outputs}

    def _loss_kind(self, targets: np.ndarray, loss: str | None) -> str:
        if loss is not None:
            return loss
        return "cross_entropy" if np.asarray(targets).dtype.kind in "iu" else "mse"

    def backward_flat(
        self,
        inputs: dict[str, Any],
        targets: np.ndarray,
        mask: np.ndarray | None = None,
        loss: str | None = None,
        output: str | None = None,
        train: bool = True,
    ) -> float:
        """Loss and gradients into `flat_grads` (zeroed first); the training loop's
        fast path. Cross-entropy on a softmax output starts from the logits."""
        out_name = output or self.model.outputs[0]
        kind = self._loss_kind(targets, loss)
        out_node = self.model.node(out_name) if out_name not in self._input_names() else None
        fused = kind == "cross_entropy"
        if fused and (out_node is None or out_node.op != "softmax"):
            raise ValueError(
                f"cross_entropy needs a softmax output; '{out_name}' is "
                f"{out_node.op if out_node else 'an input'}"
            )
        values, caches = self._run(inputs, train, mask, stop_before=out_name if fused else None)
        if fused:
            logits_name = out_node.inputs[0]
            value, dstart = softmax_cross_entropy(values[logits_name], targets, mask)
            start = logits_name
        else:
            pred = values[out_name]
            m = mask if (mask is not None and pred.ndim == 3) else None
            value, dstart = mse(pred, np.asarray(targets, dtype=self.dtype).reshape(pred.shape), m)
            start = out_name
        self.flat_grads.fill(0)
        self._backward(caches, {start: dstart})
        return float(value)

    def _input_names(self) -> set[str]:
        return {i.name for i in self.model.inputs}

    def _backward(self, caches: dict[str, Any], upstream: dict[str, np.ndarray]) -> None:
        grads_in = dict(upstream)
        for node in reversed(self.model.nodes):
            dy = grads_in.pop(node.name, None)
            if dy is None or node.name not in caches:
                continue
            dxs = self.kernels[node.name].backward(
                self._node_params.get(node.name, {}),
                caches[node.name],
                dy,
                self._node_grads.get(node.name, {}),
            )
            for name, dx in zip(node.inputs, dxs, strict=True):
                if dx is None:
                    continue
                prev = grads_in.get(name)
                grads_in[name] = dx if prev is None else prev + dx

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
        values, caches = self._run(inputs, train, mask)
        self.flat_grads.fill(0)
        self._backward(caches, dict(upstream))
        return {name: values[name] for name in self.model.outputs}

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
        return value, {
            k: self.flat_grads[s].reshape(self.params[k].shape).copy()
            for k, s in self.param_slices.items()
        }
