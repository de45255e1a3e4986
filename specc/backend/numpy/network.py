"""The executor: a network built from a checked, size-bound model IR.

Parameters, their gradients and (later) optimizer state live in flat arrays;
`params` and `grads` hand out named views into them, so one clip norm and one
optimizer update cover every parameter, while users still read and write
`net.params["rnn.W_hh"]` like any array. Forward runs the nodes in dataflow
order; backward runs them in reverse, summing gradients where a value feeds
several nodes.

`forward` and `backward_flat` (the training step) take a fast path that
computes exactly the same numbers with less memory traffic:

* a value is dropped after its last reader, and a reader that is the only
  one may overwrite it (``inplace``); in backward, a gradient array nobody
  else holds is overwritten in place, and each cache is consumed once;
* big arrays come from a `BufferPool` that dead arrays return to, so a
  steady training loop allocates (and page-faults) almost nothing;
* ``batchnorm -> leaky_relu | relu | tanh`` runs as one blocked operation
  (see `_plan`), forward and backward.

`_run` without ``keep`` (what diagnostics use) keeps every value and cache and
overwrites nothing. Values may be time-major views (kernels.base.token_rows);
`forward` returns C-ordered arrays.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from specc.backend.numpy.base import BufferPool, Params
from specc.backend.numpy.kernels import KERNELS, Kernel, mse, softmax_cross_entropy
from specc.errors import SpecError
from specc.frontend.passes.shapes import param_shapes
from specc.ir.ops import NodeBase
from specc.ir.spec import Model


class _Fused:
    """The cache of a batchnorm that also ran the elementwise op after it, kept
    under the op's name (whose output it produced)."""

    __slots__ = ("cache", "owner")

    def __init__(self, owner: str, cache: Any) -> None:
        self.owner = owner
        self.cache = cache


class _Identity(Kernel):
    """`a = b`: a second name for a value."""

    def forward(self, params, state, xs, mask, train, rng, inplace=False):
        return xs[0], None

    def backward(self, params, cache, dy, grads, inplace=False, fresh_grads=False):
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
        self._pool = BufferPool()
        for kernel in self.kernels.values():
            kernel._pool = self._pool
        self._node_params: dict[str, dict[str, np.ndarray]] = {}
        self._node_grads: dict[str, dict[str, np.ndarray]] = {}
        self._node_state: dict[str, dict[str, np.ndarray]] = {}
        self._allocate()
        self.rng = np.random.default_rng([seed, 1])  # dropout's stream
        self._time_axis = {n.name: self._has_time(n) for n in model.nodes}
        self._plan()

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

    def _plan(self) -> None:
        """Everything the run loops look up per node, resolved once.

        A value may be overwritten by the op that reads it (``inplace``) when its
        producer returns fresh arrays it does not cache, it has exactly one reader
        (which takes only it), and it is not a model output. Fast runs also drop
        each value after its last reader, so memory holds only what backward needs.
        """
        nodes = self.model.nodes
        self._steps = [
            (
                n.name,
                self.kernels[n.name],
                tuple(n.inputs),
                self._node_params.get(n.name, {}),
                self._node_state[n.name],
                self._node_grads.get(n.name, {}),
                self._time_axis[n.name],
            )
            for n in nodes
        ]
        self._inputs = {i.name for i in self.model.inputs}
        readers: dict[str, list[int]] = {}
        for i, n in enumerate(nodes):
            for src in n.inputs:
                readers.setdefault(src, []).append(i)
        self._readers = readers
        self._last_use = {src: idx[-1] for src, idx in readers.items()}
        outputs = set(self.model.outputs)
        self._step_of = {step[0]: step for step in self._steps}
        self._nodes = {n.name: n for n in nodes}
        # batchnorm -> (leaky_relu | relu | tanh): fast runs apply the op inside the
        # batchnorm, a block of rows at a time, and differentiate both in one go.
        self._fusion: dict[str, str] = {}
        for n in nodes:
            act = nodes[readers[n.name][0]] if len(readers.get(n.name, ())) == 1 else None
            if (
                n.op == "batchnorm"
                and act is not None
                and len(act.inputs) == 1
                and getattr(self.kernels[act.name], "fusable", False)
                and n.name not in outputs
                and self._time_axis[n.name] == self._time_axis[act.name]
            ):
                self._fusion[n.name] = act.name
        self._fused_ops = set(self._fusion.values())
        # ... -> dense: a run that keeps no caches also does the dense layer inside the
        # batchnorm, block by block, so the normalised values stay in cache.
        self._projection: dict[str, str] = {}
        for bn, act in self._fusion.items():
            dense = nodes[readers[act][0]] if len(readers.get(act, ())) == 1 else None
            if (
                dense is not None
                and dense.op == "dense"
                and len(dense.inputs) == 1
                and act not in outputs
                and self._time_axis[act] == self._time_axis[dense.name]
            ):
                self._projection[bn] = dense.name
        self._fused_ops |= set(self._projection.values())
        # The same chain backward: the dense layer makes its weight gradients only,
        # and the batchnorm the gradient at the dense layer's input, block by block.
        self._back_projection = {dense: self._fusion[bn] for bn, dense in self._projection.items()}
        self._donatable = {
            n.name
            for n in nodes
            if self.kernels[n.name].fresh_output
            and len(readers.get(n.name, ())) == 1
            and len(nodes[readers[n.name][0]].inputs) == 1
            and n.name not in outputs
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
        keep: set[str] | None = None,
        need_caches: bool = True,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Run the nodes in order; returns every value and every node's cache.

        With ``keep`` (the fast path) values are dropped after their last reader
        and may be overwritten by it, so only the names in ``keep`` are returned;
        without ``need_caches`` no cache is returned either, and each kernel may
        reuse the arrays of its cache once its output is dead.
        """
        values: dict[str, Any] = self._prepare_inputs(inputs)
        if mask is not None:
            mask = np.asarray(mask, dtype=self.dtype)
        caches: dict[str, Any] = {}
        fast = keep is not None
        last_use, donatable, rng = self._last_use, self._donatable, self.rng
        fusion = self._fusion if fast else {}
        projected: set[str] = set()  # fused ops whose output went straight to a dense layer
        for i, (name, kernel, ins, params, state, _, timed) in enumerate(self._steps):
            if name == stop_before:
                continue
            if fusion and name in self._fused_ops and (name in values or name in projected):
                pass  # computed by the batchnorm before it (see `_plan`)
            elif fusion.get(name) and fusion[name] not in keep and fusion[name] != stop_before:
                act = fusion[name]
                xs = [values[n] for n in ins]
                inplace = ins[0] in donatable and ins[0] not in keep
                dense = None if need_caches else self._projection.get(name)
                project = None
                if dense is not None and dense != stop_before:
                    project = (self.kernels[dense], self._step_of[dense][3])
                y, cache = kernel.forward(
                    params, state, xs, mask if timed else None, train, rng,
                    inplace=inplace, epilogue=self.kernels[act], project=project,
                )  # fmt: skip
                if project is None:
                    values[act] = y
                    caches[act] = _Fused(name, cache)
                else:  # the batchnorm returned the dense layer's output
                    values[dense] = y
                    projected.add(act)
            else:
                xs = [values[n] for n in ins]
                inplace = fast and ins[0] in donatable and ins[0] not in keep
                y, cache = kernel.forward(
                    params, state, xs, mask if timed else None, train, rng, inplace=inplace
                )
                values[name] = y
                caches[name] = cache
            if fast:
                for src in ins:
                    if last_use[src] == i and src not in keep:
                        values.pop(src, None)
                        if not need_caches and src in caches:
                            # Output dead and cache unused: the kernel may reuse its arrays
                            # (only now: an output may be a view into its cache).
                            self._release(src, caches.pop(src))
        if not need_caches:
            caches.clear()
        return values, caches

    def _release(self, name: str, cache: Any) -> None:
        if isinstance(cache, _Fused):
            self.kernels[cache.owner].release(cache.cache)
        else:
            self.kernels[name].release(cache)

    def load(self, params: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        """Copy weights (and buffers) in by name, into the live arrays."""
        for key, value in params.items():
            self.params[key][...] = value
        for key, value in (state or {}).items():
            self.state[key][...] = value

    def astype(self, dtype: str | np.dtype) -> Network:
        """A copy computing in another dtype, e.g. float64 for gradients that
        fall below float32's range."""
        copy = Network(self.model, seed=self.seed, dtype=dtype)
        copy.load(self.params, self.state)
        return copy

    def scores(
        self, inputs: dict[str, Any], mask: np.ndarray | None = None, train: bool = False
    ) -> np.ndarray:
        """The first output before its final softmax (the output itself otherwise):
        what losses and sampling start from. Runs the fast path, keeping only it."""
        out = self.model.node(self.model.outputs[0])
        name, stop = (out.inputs[0], out.name) if out.op == "softmax" else (out.name, None)
        values, _ = self._run(inputs, train, mask, stop_before=stop, keep={name}, need_caches=False)
        return values[name]

    def forward(
        self, inputs: dict[str, Any], train: bool = False, mask: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Run the graph; returns every output by name. `train` uses batch
        statistics (and updates running ones) and applies dropout."""
        outputs = self.model.outputs
        values, _ = self._run(inputs, train, mask, keep=set(outputs), need_caches=False)
        # Internal values may be time-major views (see kernels.base.token_rows);
        # users get plain C-ordered arrays.
        return {name: np.ascontiguousarray(values[name]) for name in outputs}

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
        out_node = self._nodes.get(out_name)
        if out_node is None and out_name not in self._inputs:
            self.model.node(out_name)  # raises the model's own error for an unknown name
        fused = kind == "cross_entropy"
        if fused and (out_node is None or out_node.op != "softmax"):
            raise ValueError(
                f"cross_entropy needs a softmax output; '{out_name}' is "
                f"{out_node.op if out_node else 'an input'}"
            )
        start = out_node.inputs[0] if fused else out_name
        values, caches = self._run(
            inputs, train, mask, stop_before=out_name if fused else None, keep={start}
        )
        if fused:
            # The logits are read by nothing else (the softmax is skipped): the loss
            # may write its gradient over them.
            mine = (
                start not in self._inputs
                and self.kernels[start].fresh_output
                and len(self._readers.get(start, ())) == 1
            )
            value, dstart = softmax_cross_entropy(values[start], targets, mask, inplace=mine)
        else:
            pred = values[start]
            m = mask if (mask is not None and pred.ndim == 3) else None
            value, dstart = mse(pred, np.asarray(targets, dtype=self.dtype).reshape(pred.shape), m)
        del values
        upstream = {start: dstart}
        del dstart  # `_backward` drops it from `upstream` once its reader is done
        self._backward(caches, upstream, consume=True)
        return float(value)

    def _backward(
        self,
        caches: dict[str, Any],
        upstream: dict[str, np.ndarray],
        consume: bool = False,
    ) -> None:
        """Reverse pass from `upstream` gradients into `flat_grads`, zeroed first.

        With ``consume`` the caches are dropped as they are used and the upstream
        arrays (and the dict) are the executor's own, so kernels may overwrite any
        gradient array nobody else holds (``inplace``). Otherwise nothing passed in
        is modified.
        """
        # Every parameter belongs to one node, so each kernel's gradients are still
        # zero when it runs: it may write them instead of adding (``fresh_grads``).
        self.flat_grads.fill(0)
        grads_in = upstream if consume else dict(upstream)
        owned = set(upstream) if consume else set()
        projected: dict[str, tuple[Kernel, Params]] = {}  # fused op -> the dense layer after it
        for name, kernel, ins, params, _, grads, _ in reversed(self._steps):
            dy = grads_in.pop(name, None)
            if dy is None or name not in caches:
                continue
            cache = caches.pop(name) if consume else caches[name]
            inplace = name in owned
            act = self._back_projection.get(name) if inplace else None
            if act is not None and isinstance(caches.get(act), _Fused):
                kernel.weight_grads(cache, dy, grads, fresh_grads=True)
                projected[act] = (kernel, params)
                grads_in[act] = dy  # the dense layer's, for the batchnorm to project
                owned.add(act)
                continue
            if isinstance(cache, _Fused):  # a batchnorm and the op after it, as one
                _, kernel, ins, params, _, grads, _ = self._step_of[cache.owner]
                dxs = kernel.backward(
                    params, cache.cache, dy, grads, inplace=inplace, fresh_grads=True,
                    project=projected.pop(name, None),
                )  # fmt: skip
            else:
                dxs = kernel.backward(params, cache, dy, grads, inplace=inplace, fresh_grads=True)
            del cache
            for src, dx in zip(ins, dxs, strict=True):
                if dx is None:
                    continue
                prev = grads_in.get(src)
                if not consume:
                    grads_in[src] = dx if prev is None else prev + dx
                elif prev is None:
                    grads_in[src] = dx
                    # A gradient that shares memory with dy is ours only if dy was.
                    if inplace or not np.may_share_memory(dx, dy):
                        owned.add(src)
                elif src in owned:
                    prev += dx
                else:
                    grads_in[src] = prev + dx
                    owned.add(src)

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
        self._backward(caches, upstream)
        return {name: np.ascontiguousarray(values[name]) for name in self.model.outputs}

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
