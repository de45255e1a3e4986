"""The torch executor: the graph's nodes as torch operations, backward by autograd.

`_run` builds the autograd graph node by node and returns it as the trace;
`_backward` asks autograd for the gradients of the parameter tensors (and, when
``watch`` is set, of each recurrent layer's hidden states) and writes them into
the base class's flat gradient array. The training step (`backward_flat`)
computes its loss in torch too, and in a distributed run (`distribute`) sums
the loss's count, the batch-norm statistics and the gradients over every
process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from specc.backend.graph import Loss
from specc.backend.graph import Network as GraphNetwork
from specc.backend.torch import batchnorm, elementwise, gated, layers, losses, rnn
from specc.backend.torch.letters import TorchLetters
from specc.backend.torch.lib import parse_device, require_torch, torch
from specc.ir.spec import Model

KERNELS: dict[str, type] = {
    "embedding": layers.Embedding,
    "one_hot": layers.OneHot,
    "spell": layers.Identity,  # the letters fed with the words (`Network._reads`)
    "rnn": rnn.Rnn,
    "lstm": gated.Lstm,
    "gru": gated.Gru,
    "batchnorm": batchnorm.BatchNorm,
    "leaky_relu": elementwise.LeakyRelu,
    "relu": elementwise.Relu,
    "tanh": elementwise.Tanh,
    "gelu": elementwise.Gelu,
    "sigmoid": elementwise.Sigmoid,
    "dense": layers.Dense,
    "softmax": elementwise.Softmax,
    "dropout": layers.Dropout,
    "concat": layers.Concat,
    "add": layers.Add,
    "identity": layers.Identity,
}


@dataclass
class Tape:
    """One forward pass as autograd holds it: the parameter leaves it read, every
    value as a tensor, each recurrent layer's hidden states, and the mask."""

    leaves: dict[str, Any]
    values: dict[str, Any]
    states: dict[str, list[Any]]
    mask: Any


class NumpyValues(Mapping):
    """A trace's values as NumPy arrays, converted when first read (the public
    `Trace.values` contract), so a training step converts nothing."""

    def __init__(self, tensors: dict[str, Any]) -> None:
        self._tensors = tensors
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = self._tensors[name].detach().cpu().numpy()
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


class Network(GraphNetwork):
    """A model run by PyTorch on ``device`` (see `specc.backend.torch`)."""

    backend = "torch"
    KERNELS: ClassVar[Mapping[str, type]] = KERNELS
    LETTERS: ClassVar[type] = TorchLetters
    LOSSES: ClassVar[Mapping[str, Loss]] = {
        "cross_entropy": losses.cross_entropy,
        "mse": losses.mse,
    }

    def __init__(
        self,
        model: Model,
        seed: int = 0,
        dtype: str | np.dtype = "float32",
        device: str | None = None,
    ) -> None:
        require_torch()
        self.device = parse_device(device)
        super().__init__(model, seed, dtype)
        self._timed = {
            n.name: any(model.shape_of(i).has_time for i in n.inputs) for n in model.nodes
        }
        self._owner = {key: key.rsplit(".", 1) for key in self.params}
        self._group: Any = None  # a torch.distributed process group once distributed
        self._fused = False
        # On the CPU the autograd leaves are the parameter arrays themselves.
        self._cpu_leaves = (
            {k: torch.from_numpy(v).requires_grad_() for k, v in self.params.items()}
            if self.device.type == "cpu"
            else None
        )

    def astype(self, dtype: str | np.dtype) -> Network:
        copy = type(self)(self.model, seed=self.seed, dtype=dtype, device=str(self.device))
        copy.load(self.params, self.state)
        return copy

    # ----- distributed ---------------------------------------------------------------

    def distribute(self, group: Any = None) -> None:
        """Train as one of the processes of ``group`` (the default group when None):
        batch-norm statistics, the loss's count and the gradients of every
        training step are summed over them, and every process starts from
        process 0's parameters and buffers."""
        from specc.backend.torch import collective

        self._group = group if group is not None else torch.distributed.group.WORLD
        for kernel in self.kernels.values():
            kernel.all_sum = lambda x, g=self._group: collective.all_sum(x, g)
        for array in (self.flat_params, *self.state.values()):
            tensor = torch.from_numpy(array).to(self.device)
            collective.broadcast_(tensor, 0, self._group)
            array[...] = tensor.cpu().numpy()

    def shard_rows(self, start: int, stop: int, total: int) -> None:
        """The rows [start, stop) of a global batch of ``total`` that the next
        steps get (dropout draws the whole batch's masks and keeps these)."""
        for kernel in self.kernels.values():
            if isinstance(kernel, layers.Dropout):
                kernel.rows = (start, stop, total)

    # ----- running -------------------------------------------------------------------

    def _leaves(self) -> dict[str, Any]:
        if self._cpu_leaves is not None:
            return self._cpu_leaves
        flat = torch.from_numpy(self.flat_params).to(self.device)
        return {
            k: flat[s].view(self.params[k].shape).detach().requires_grad_()
            for k, s in self.param_slices.items()
        }

    def _tensor(self, array: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def _run(self, inputs, train, mask, stop_before=None):
        values: dict[str, Any] = {
            k: self._tensor(v) for k, v in self._prepare_inputs(inputs).items()
        }
        mask_t = None if mask is None else self._tensor(np.asarray(mask, dtype=self.dtype))
        leaves = self._leaves()
        params: dict[str, dict[str, Any]] = {}
        for key, (node, pname) in self._owner.items():
            params.setdefault(node, {})[pname] = leaves[key]
        states: dict[str, list[Any]] = {}
        for node in self.model.nodes:
            if node.name == stop_before:
                continue
            kernel = self.kernels[node.name]
            args = (
                params.get(node.name, {}),
                self._node_state[node.name],
                [values[name] for name in self._reads(node)],
                mask_t if self._timed[node.name] else None,
                train,
                self.rng,
            )
            if kernel.fusable:
                y, cache = kernel.forward(*args, fused=self._fused)
            else:
                y, cache = kernel.forward(*args)
            values[node.name] = y
            if cache is not None:
                states[node.name] = cache
        return NumpyValues(values), Tape(leaves, values, states, mask_t)

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        """No autograd graph, and the fused layers: for forward passes nobody differentiates."""
        self._fused = True
        try:
            with torch.no_grad():
                yield
        finally:
            self._fused = False

    def forward(self, inputs, train=False, mask=None):
        with self._inference():
            return super().forward(inputs, train, mask)

    def scores(self, inputs, mask=None, train=False):
        with self._inference():
            return super().scores(inputs, mask, train)

    # ----- backward ------------------------------------------------------------------

    def _backward(self, caches: Tape, upstream: dict[str, np.ndarray]) -> None:
        outs, gouts = [], []
        for name, grad in upstream.items():
            value = caches.values.get(name)
            if value is None or not value.requires_grad:
                continue
            outs.append(value)
            gouts.append(self._tensor(np.asarray(grad)).to(value.dtype))
        watched = [
            (name, kernel)
            for name, kernel in self.kernels.items()
            if getattr(kernel, "watch", None) is not None and name in caches.states
        ]
        hidden = [h for name, _ in watched for h in caches.states[name]]
        grads = self._autograd(outs, gouts, caches, hidden, retain=True)
        self._store(caches, grads[: len(caches.leaves)], reduce=False)
        found = iter(grads[len(caches.leaves) :])
        for name, kernel in watched:
            hs = caches.states[name]
            dh = torch.stack([_or_zeros(next(found), h) for h in hs], dim=1)
            if caches.mask is not None:
                dh = dh * caches.mask[..., None]
            kernel.watch(dh.detach().cpu().numpy())

    def _autograd(self, outs, gouts, tape: Tape, hidden: list[Any], retain: bool) -> list[Any]:
        inputs = [*tape.leaves.values(), *hidden]
        if not outs:
            return [None] * len(inputs)
        return list(
            torch.autograd.grad(outs, inputs, gouts, retain_graph=retain, allow_unused=True)
        )

    def _store(self, tape: Tape, grads: list[Any], reduce: bool) -> None:
        """Parameter gradients into `flat_grads` (summed over the processes when
        ``reduce`` and distributed)."""
        if self.device.type == "cpu":
            flat = torch.from_numpy(self.flat_grads)
        else:
            flat = torch.zeros(self.flat_grads.size, dtype=torch_dtype_of(self), device=self.device)
        flat.zero_()
        for key, grad in zip(tape.leaves, grads, strict=True):
            if grad is not None:
                flat[self.param_slices[key]] = grad.reshape(-1)
        if reduce and self._group is not None:
            from specc.backend.torch.collective import all_sum_

            all_sum_(flat, self._group)
        if self.device.type != "cpu":
            self.flat_grads[...] = flat.cpu().numpy()

    def backward_flat(self, inputs, targets, mask=None, loss=None, output=None, train=True):
        """The training step in torch: loss, autograd, gradients into `flat_grads`.

        Distributed, the loss is each shard's sum over the count of the whole
        global batch, so the summed gradients are the whole batch's mean."""
        kind, out_name, start = self._loss_start(targets, loss, output)
        stop = out_name if kind == "cross_entropy" else None
        self._fused = True
        try:
            _, tape = self._run(inputs, train, mask, stop)
        finally:
            self._fused = False
        pred = tape.values[start]
        loss_mask = tape.mask
        if kind == "mse":
            target = self._tensor(np.asarray(targets, dtype=self.dtype).reshape(tuple(pred.shape)))
            loss_mask = loss_mask if pred.ndim == 3 else None
        else:
            target = self._tensor(np.asarray(targets).astype(np.int64, copy=False))
        total, count = self.LOSSES[kind](pred, target, loss_mask)
        sums = torch.stack([total.detach(), count.detach().to(total.dtype)])
        if self._group is not None:
            from specc.backend.torch.collective import all_sum_

            all_sum_(sums, self._group)
        n = sums[1].clamp(min=1.0)
        grads = self._autograd([total / n], [None], tape, [], retain=False)
        self._store(tape, grads, reduce=True)
        return float(sums[0] / n)


def torch_dtype_of(net: Network) -> Any:
    """The torch dtype of a network's floats."""
    return torch.from_numpy(net.flat_params[:0]).dtype


def _or_zeros(grad: Any, like: Any) -> Any:
    return torch.zeros_like(like) if grad is None else grad
