"""The fast backend's executor: a network built from a checked, size-bound model IR.

Parameters and the public API come from `specc.backend.graph.Network`. Forward
runs the nodes in dataflow order; backward runs them in reverse, summing
gradients where a value feeds several nodes.

`forward` and `backward_flat` (the training step) take a fast path that
computes exactly the same numbers with less memory traffic:

* a value is dropped after its last reader, and a reader that is the only
  one may overwrite it (``inplace``); in backward, a gradient array nobody
  else holds is overwritten in place, and each cache is consumed once;
* big arrays come from a `BufferPool` that dead arrays return to, so a
  steady training loop allocates (and page-faults) almost nothing;
* ``batchnorm -> leaky_relu | relu | tanh`` (and the dense layer after it)
  runs as one blocked operation, forward and backward (see
  specc.backend.numpy.fusion).

`_run` without ``keep`` (what `trace` uses) keeps every value and cache and
overwrites nothing. Values may be time-major views (kernels.base.token_rows);
`forward` returns C-ordered arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from specc.backend.carry import State, refuse_reversed
from specc.backend.graph import Loss
from specc.backend.graph import Network as GraphNetwork
from specc.backend.graph import Stepper as GraphStepper
from specc.backend.numpy.base import BufferPool, Params
from specc.backend.numpy.fusion import plan_fusion
from specc.backend.numpy.kernels import KERNELS, Kernel
from specc.backend.numpy.losses import mse, softmax_cross_entropy
from specc.backend.numpy.stepping import FastStepper
from specc.ir.ops import NodeBase
from specc.ir.spec import Model


class _Fused:
    """The cache of a batchnorm that also ran the elementwise op after it, kept
    under the op's name (whose output it produced)."""

    __slots__ = ("cache", "owner")

    def __init__(self, owner: str, cache: Any) -> None:
        self.owner = owner
        self.cache = cache


class Network(GraphNetwork):
    """The fast backend's network: the graph run with fusion, donation and pooling."""

    backend = "numpy"
    KERNELS: ClassVar[Mapping[str, type]] = KERNELS
    LOSSES: ClassVar[Mapping[str, Loss]] = {"cross_entropy": softmax_cross_entropy, "mse": mse}

    def __init__(self, model: Model, seed: int = 0, dtype: str | np.dtype = "float32") -> None:
        super().__init__(model, seed, dtype)
        self._pool = BufferPool()
        for kernel in self.kernels.values():
            kernel._pool = self._pool
        self._time_axis = {n.name: self._has_time(n) for n in model.nodes}
        self._plan()

    # ----- construction ------------------------------------------------------------

    def _has_time(self, node: NodeBase) -> bool:
        return any(self.model.shape_of(n).has_time for n in node.inputs)

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
                tuple(self.reads[n.name]),
                self._node_params.get(n.name, {}),
                self._node_state[n.name],
                self._node_grads.get(n.name, {}),
                self._time_axis[n.name],
            )
            for n in nodes
        ]
        readers: dict[str, list[int]] = {}
        for i, n in enumerate(nodes):
            for src in self.reads[n.name]:
                readers.setdefault(src, []).append(i)
        self._readers = readers
        self._last_use = {src: idx[-1] for src, idx in readers.items()}
        self._step_of = {step[0]: step for step in self._steps}
        fusion = plan_fusion(self.model, self.kernels, readers, self._time_axis)
        self._fusion = fusion.epilogue
        self._projection = fusion.projection
        self._back_projection = fusion.back_projection
        self._fused_ops = fusion.fused_ops
        self._donatable = fusion.donatable

    # ----- running ------------------------------------------------------------

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

    def stepper(self, state: State | None = None, batch: int = 1) -> GraphStepper:
        """One step at a time through small step functions (see
        specc.backend.numpy.stepping), or the generic way for an op they lack."""
        refuse_reversed(self.model, "stepping")
        start = self.zero_state(batch) if state is None else state
        try:
            return FastStepper(self, start)  # type: ignore[return-value]
        except NotImplementedError:
            return super().stepper(start)

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
        kind, out_name, start = self._loss_start(targets, loss, output)
        fused = kind == "cross_entropy"
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
