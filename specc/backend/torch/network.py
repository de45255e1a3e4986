"""The torch executor: the graph's nodes as torch operations, backward by autograd.

`_run` builds the autograd graph node by node and returns it as the trace;
`_backward` asks autograd for the gradients of the parameter tensors (and, when
``watch`` is set, of each recurrent layer's hidden states) and writes them into
the base class's flat gradient array. The training step (`backward_flat`)
computes its loss in torch too, and in a distributed run (`distribute`) goes
through DistributedDataParallel, which sums the gradients over every process
while backward runs; the loss's count and the batch-norm statistics are summed
by `collective`.
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
        *,
        copy_params: bool | None = None,
    ) -> None:
        """``copy_params``: hold the parameters as a copy on the device, refreshed
        before each pass (None: on any device but the CPU; True on the CPU runs
        the GPU's way on a machine without one, for tests)."""
        require_torch()
        self.device = parse_device(device)
        super().__init__(model, seed, dtype)
        self._timed = {
            n.name: any(model.shape_of(i).has_time for i in n.inputs) for n in model.nodes
        }
        self._owner = {key: key.rsplit(".", 1) for key in self.params}
        self._group: Any = None  # a torch.distributed process group once distributed
        self._ddp: Any = None  # the DistributedDataParallel wrapper once distributed
        self._fused = False
        # The parameters as autograd leaves (nn.Parameters, so that DDP can wrap
        # them): on the CPU the parameter arrays themselves; on a GPU views of
        # one device copy of `flat_params`, refreshed before each forward pass.
        self._shared = self.device.type == "cpu" if copy_params is None else not copy_params
        self._device_flat: Any = None
        if self._shared:
            flat = torch.from_numpy(self.flat_params)
        else:
            flat = torch.empty(
                self.flat_params.size, dtype=torch_dtype_of(self), device=self.device
            )
            self._device_flat = flat
        self._leaf_params = {
            k: torch.nn.Parameter(flat[s].view(self.params[k].shape))
            for k, s in self.param_slices.items()
        }

    @classmethod
    def resolve_device(cls, device: str | None) -> str:
        """The torch device ``device`` names, once PyTorch is installed and sees it."""
        require_torch()
        return str(parse_device(device))

    def astype(self, dtype: str | np.dtype) -> Network:
        copy = type(self)(
            self.model,
            seed=self.seed,
            dtype=dtype,
            device=str(self.device),
            copy_params=not self._shared,
        )
        copy.load(self.params, self.state)
        return copy

    # ----- distributed ---------------------------------------------------------------

    def distribute(self, group: Any = None) -> None:
        """Train as one of the processes of ``group`` (the default group when None):
        batch-norm statistics and the loss's count of every training step are
        summed over them, the gradients by DistributedDataParallel (see
        `collective.data_parallel`), and every process starts from process 0's
        parameters and buffers."""
        from specc.backend.torch import collective

        self._group = group if group is not None else torch.distributed.group.WORLD
        for kernel in self.kernels.values():
            kernel.all_sum = lambda x, g=self._group: collective.all_sum(x, g)
        for array in (self.flat_params, *self.state.values()):
            tensor = torch.from_numpy(array).to(self.device)
            collective.broadcast_(tensor, 0, self._group)
            array[...] = tensor.cpu().numpy()
        self._ddp = collective.data_parallel(self, self._group)

    def unused_params(self) -> bool:
        """Whether some parameter cannot reach the loss (a second output's layers):
        DistributedDataParallel must then look for them after each forward pass."""
        needed, todo = set(), [self.model.outputs[0]]
        while todo:
            name = todo.pop()
            if name not in needed and name in self._nodes:
                needed.add(name)
                todo.extend(self._nodes[name].inputs)
        return any(node not in needed for node, _ in self._owner.values())

    def shard_rows(self, start: int, stop: int, total: int) -> None:
        """The rows [start, stop) of a global batch of ``total`` that the next
        steps get (dropout draws the whole batch's masks and keeps these)."""
        for kernel in self.kernels.values():
            if isinstance(kernel, layers.Dropout):
                kernel.rows = (start, stop, total)

    # ----- running -------------------------------------------------------------------

    def _leaves(self) -> dict[str, Any]:
        if not self._shared:
            # one transfer of the flat array; through `.data`, as the CPU's leaves
            # see the optimizer's writes, without autograd counting a new version
            self._device_flat.data.copy_(torch.from_numpy(self.flat_params))
        return self._leaf_params

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
                [values[name] for name in self.reads[node.name]],
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
        self._store(grads[: len(caches.leaves)])
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

    def _store(self, grads: list[Any]) -> None:
        """The parameters' gradients (in `_leaf_params` order; None for zero) into
        `flat_grads`: in place on the CPU, in one transfer from a GPU."""
        if self._shared:
            flat = torch.from_numpy(self.flat_grads)
        else:
            flat = torch.empty(self.flat_grads.size, dtype=torch_dtype_of(self), device=self.device)
        flat.zero_()
        for key, grad in zip(self._leaf_params, grads, strict=True):
            if grad is not None:
                flat[self.param_slices[key]] = grad.reshape(-1)
        if not self._shared:
            self.flat_grads[...] = flat.cpu().numpy()

    def _loss(self, inputs, targets, mask, kind: str, start: str, stop: str | None, train: bool):
        """Forward to the loss: (its sum, the count of what it sums, the tape)."""
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
        return total, count, tape

    def backward_flat(self, inputs, targets, mask=None, loss=None, output=None, train=True):
        """The training step in torch: loss, autograd, gradients into `flat_grads`.

        Distributed, the forward pass goes through DistributedDataParallel, and
        the loss is each shard's sum over the count of the whole global batch,
        so the gradients DDP sums over the processes are the whole batch's mean."""
        kind, out_name, start = self._loss_start(targets, loss, output)
        stop = out_name if kind == "cross_entropy" else None
        args = (inputs, targets, mask, kind, start, stop, train)
        total, count, tape = self._loss(*args) if self._ddp is None else (*self._ddp(*args), None)
        sums = torch.stack([total.detach(), count.detach().to(total.dtype)])
        if self._group is not None:
            from specc.backend.torch.collective import all_sum_

            all_sum_(sums, self._group)
        n = sums[1].clamp(min=1.0)
        if tape is not None:
            self._store(self._autograd([total / n], [None], tape, [], retain=False))
        else:  # DDP sums each bucket of gradients over the processes during backward
            (total / n).backward()
            self._store([p.grad for p in self._leaf_params.values()])
            for p in self._leaf_params.values():
                p.grad = None
        return float(sums[0] / n)


def torch_dtype_of(net: Network) -> Any:
    """The torch dtype of a network's floats."""
    return torch.from_numpy(net.flat_params[:0]).dtype


def _or_zeros(grad: Any, like: Any) -> Any:
    return torch.zeros_like(like) if grad is None else grad
