"""The contract every op kernel honours, and small helpers they share.

A kernel is built once per node of the compiled graph from plain keyword
arguments, and is then driven by the executor: it declares which trainable
parameters and buffers it needs, creates them, and runs forward and backward.
Forward and backward live side by side in each op so a reader can check one
against the other without jumping between files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Params = dict[str, np.ndarray]
Shapes = list[tuple[int, ...]]


class Kernel:
    """Base class for op kernels; the defaults describe an op with nothing to learn.

    ``backward`` *accumulates* into ``grads`` (``grads[k] += ...``) rather than
    returning fresh arrays, because the executor may hand out views into a
    single flat gradient buffer and one parameter may be shared by several
    nodes. ``grads`` must hold an array for every name in ``param_names``.
    """

    param_names: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ()

    def param_shapes(self, in_shapes: Shapes) -> dict[str, tuple[int, ...]]:
        """Shapes of the trainable parameters, given per-example input feature dims."""
        return {}

    def state_shapes(self, in_shapes: Shapes) -> dict[str, tuple[int, ...]]:
        """Shapes of the non-trainable buffers (e.g. running statistics)."""
        return {}

    def init_params(self, in_shapes: Shapes, rng: np.random.Generator, dtype: Any) -> Params:
        """Fresh trainable parameters; ``rng`` is the only source of randomness."""
        return {}

    def init_state(self, in_shapes: Shapes, dtype: Any) -> Params:
        """Fresh buffers; deterministic, so a reset never depends on a seed."""
        return {}

    def forward(
        self,
        params: Params,
        state: Params,
        xs: list[np.ndarray],
        mask: np.ndarray | None,
        train: bool,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, Any]:
        """Return ``(output, cache)``; the cache keeps only what backward needs."""
        raise NotImplementedError

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, grads: Params
    ) -> list[np.ndarray | None]:
        """Accumulate parameter gradients into ``grads``; return one gradient per input."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def feature_dim(in_shapes: Shapes, index: int = 0) -> int:
    """Last-axis size of one input: the only input dimension a kernel's parameters depend on."""
    shape = in_shapes[index]
    if not shape:
        raise ValueError(f"input {index} has no feature axis (shape {shape!r})")
    return int(shape[-1])


def float_dtype(dtype: Any) -> np.dtype:
    """Normalise a dtype request, refusing non-float types that would break gradients."""
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"kernels compute in floating point, got dtype {dt}")
    return dt


def positional_weights(mask: np.ndarray | None, x: np.ndarray) -> np.ndarray | None:
    """Mask as a ``(B*T, 1)`` column in ``x``'s dtype, for ops that flatten batch and time.

    Only inputs with a time axis ``(B, T, N)`` are masked; for ``(B, N)`` the
    mask (if any) does not apply and ``None`` is returned.
    """
    if mask is None or x.ndim != 3:
        return None
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match input {x.shape[:2]}")
    return mask.reshape(-1, 1).astype(x.dtype, copy=False)
