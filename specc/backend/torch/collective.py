"""Sums over every process of a distributed run, for the kernels and the training step.

`all_sum` is differentiable: its forward sums a tensor over the processes and
its backward sums the incoming gradients the same way (each process's output
depends on every process's input), which is what batch normalisation over the
union of the shards needs. PyTorch's SyncBatchNorm does this only for CUDA
tensors; this works on any device the process group's backend supports (gloo
on the CPU, nccl on GPUs). Imported only when a network is distributed.

The gradients are summed by PyTorch's DistributedDataParallel (`data_parallel`),
bucket by bucket while backward still runs, with a communication hook that sums
instead of averaging.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


class _AllSum(torch.autograd.Function):
    """y = Σ_ranks x; dx = Σ_ranks dy."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        y = x.detach().clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM, group=group)
        return y

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor, None]:
        dx = dy.detach().clone()
        dist.all_reduce(dx, op=dist.ReduceOp.SUM, group=ctx.group)
        return dx, None


def all_sum(x: torch.Tensor, group: Any = None) -> torch.Tensor:
    """The sum of ``x`` over every process, differentiable (see the module's docstring)."""
    return _AllSum.apply(x, group)


def all_sum_(x: torch.Tensor, group: Any = None) -> torch.Tensor:
    """Sum ``x`` over every process in place (no autograd): gradients and counts."""
    dist.all_reduce(x, op=dist.ReduceOp.SUM, group=group)
    return x


def _sum_hook(group, bucket):  # unannotated: DDP checks real annotations, not strings
    """DDP's gradient all-reduce without its division by the number of processes:
    each process's loss is already its share of the whole batch's mean."""
    work = dist.all_reduce(bucket.buffer(), group=group, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


class _Replica(torch.nn.Module):
    """A network as the nn.Module DistributedDataParallel wraps: its parameters
    (the network's own leaves, so nothing is copied) and, as ``forward``, its
    loss (the sum and the count of `Network._loss`)."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.weights = torch.nn.ParameterList(net._leaf_params.values())
        self.net = net

    def forward(self, *args: Any) -> tuple[torch.Tensor, torch.Tensor]:
        total, count, _ = self.net._loss(*args)
        return total, count


def data_parallel(net: Any, group: Any) -> Any:
    """A torch backend network in DistributedDataParallel over ``group``, summing
    the gradients (see `_sum_hook`).

    The parameters are already alike on every process (`Network.distribute`
    broadcast them, with the buffers), and the module has no buffers for DDP to
    keep in step: batchnorm's running statistics are the network's NumPy
    buffers, moved by the same all-summed statistics on every process."""
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(
        _Replica(net),
        device_ids=[net.device] if net.device.type == "cuda" else None,
        process_group=group,
        init_sync=False,
        find_unused_parameters=net.unused_params(),
    )
    ddp.register_comm_hook(group, _sum_hook)
    return ddp


def broadcast_(x: torch.Tensor, src: int = 0, group: Any = None) -> torch.Tensor:
    """Overwrite ``x`` with process ``src``'s copy, so every process starts alike."""
    dist.broadcast(x, src=src, group=group)
    return x
