"""The base of every torch op: its IR node, the bound sizes, and the dtype."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from specc.ir.ops import NodeBase


class Op:
    """One node's forward in torch operations; autograd makes its backward.

    ``forward(params, state, xs, mask, train, rng) -> (y, cache)``: ``params`` are
    tensors (autograd leaves), ``state`` the node's NumPy buffers (updated in
    place, as every backend does), ``xs`` and ``mask`` tensors on the network's
    device, ``rng`` the network's NumPy generator (dropout draws from it so the
    masks are the NumPy backend's). ``cache`` is what `_backward` needs beyond
    autograd: only the recurrent layers keep their hidden states there.
    """

    #: Set by the network: a differentiable sum over every process of a
    #: distributed run (None when training alone).
    all_sum: Callable[[Any], Any] | None = None
    #: Whether ``forward`` takes ``fused=True``: the recurrent layers, which can then
    #: run as one PyTorch call (set by the network only where nobody watches states).
    fusable: ClassVar[bool] = False

    def __init__(
        self, node: NodeBase, sizes: Mapping[str, int] | None = None, dtype: Any = np.float64
    ) -> None:
        self.node = node
        self.sizes = dict(sizes or {})
        self.dtype = np.dtype(dtype)

    def forward(self, params, state, xs, mask, train, rng) -> tuple[Any, Any]:
        raise NotImplementedError
