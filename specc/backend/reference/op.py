"""The base of every reference op: it keeps its IR node and the bound sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from specc.ir.ops import NodeBase


class Op:
    """One node's forward and backward. Arguments are read off ``self.node``."""

    def __init__(
        self, node: NodeBase, sizes: Mapping[str, int] | None = None, dtype: Any = np.float64
    ) -> None:
        self.node = node
        self.sizes = dict(sizes or {})
        self.dtype = np.dtype(dtype)

    def forward(self, params, state, xs, mask, train, rng) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def backward(self, params, cache, dy, grads) -> list[np.ndarray | None]:
        raise NotImplementedError
