"""Sums over every process of a distributed run, for the kernels and the training step.

`all_sum` is differentiable: its forward sums a tensor over the processes and
its backward sums the incoming gradients the same way (each process's output
depends on every process's input), which is what batch normalisation over the
union of the shards needs. PyTorch's SyncBatchNorm does this only for CUDA
tensors; this works on any device the process group's backend supports (gloo
on the CPU, nccl on GPUs). Imported only when a network is distributed.
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


def broadcast_(x: torch.Tensor, src: int = 0, group: Any = None) -> torch.Tensor:
    """Overwrite ``x`` with process ``src``'s copy, so every process starts alike."""
    dist.broadcast(x, src=src, group=group)
    return x
