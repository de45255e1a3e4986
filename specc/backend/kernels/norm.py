"""Batch normalisation over every axis but the features, mask-aware.

Matches torch.nn.BatchNorm1d: biased variance to normalise, unbiased to
update the running estimate. With a mask, padded tokens are excluded from
the statistics, their outputs are zero and they receive zero gradient, so a
padded batch behaves exactly like the batch of its real tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.kernels.base import (
    Kernel,
    Params,
    Shapes,
    feature_dim,
    float_dtype,
    positional_weights,
)


class BatchNorm(Kernel):
    """Normalise (B, T, N) or (B, N) per feature; batch statistics in train, running in eval."""

    state_names = ("running_mean", "running_var")

    def __init__(self, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"batchnorm momentum must be in [0, 1], got {momentum}")
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        self.param_names = ("gamma", "beta") if self.affine else ()

    def param_shapes(self, in_shapes: Shapes) -> dict[str, tuple[int, ...]]:
        n = feature_dim(in_shapes)
        return {"gamma": (n,), "beta": (n,)} if self.affine else {}

    def state_shapes(self, in_shapes: Shapes) -> dict[str, tuple[int, ...]]:
        n = feature_dim(in_shapes)
        return {"running_mean": (n,), "running_var": (n,)}

    def init_params(self, in_shapes: Shapes, rng: np.random.Generator, dtype: Any) -> Params:
        if not self.affine:
            return {}
        n, dt = feature_dim(in_shapes), float_dtype(dtype)
        return {"gamma": np.ones(n, dtype=dt), "beta": np.zeros(n, dtype=dt)}

    def init_state(self, in_shapes: Shapes, dtype: Any) -> Params:
        n, dt = feature_dim(in_shapes), float_dtype(dtype)
        return {"running_mean": np.zeros(n, dtype=dt), "running_var": np.ones(n, dtype=dt)}

    def forward(
        self,
        params: Params,
        state: Params,
        xs: list[np.ndarray],
        mask: np.ndarray | None,
        train: bool,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, Any]:
        x = xs[0]
        n = x.shape[-1]
        x2 = x.reshape(-1, n)
        w = positional_weights(mask, x)
        count = float(x2.shape[0]) if w is None else float(w.sum())

        if train:
            denom = max(count, 1.0)  # an all-padding batch normalises to zero, not NaN
            if w is None:
                mean = x2.sum(axis=0) / denom
                xc = x2 - mean
                var = (xc * xc).sum(axis=0) / denom
            else:
                wr = w.reshape(-1)
                mean = (wr @ x2) / denom
                xc = x2 - mean
                var = (wr @ (xc * xc)) / denom
            invstd = 1.0 / np.sqrt(var + self.eps)
            if count > 0:
                mom = self.momentum
                unbiased = var * (count / max(count - 1.0, 1.0))
                rm, rv = state["running_mean"], state["running_var"]
                rm *= 1.0 - mom
                rm += mom * mean
                rv *= 1.0 - mom
                rv += mom * unbiased
        else:
            xc = x2 - state["running_mean"]
            invstd = 1.0 / np.sqrt(state["running_var"] + self.eps)

        xhat = xc * invstd
        y = xhat * params["gamma"] + params["beta"] if self.affine else xhat.copy()
        if w is not None:
            y *= w  # padded outputs are zero, as in the rnn, so junk never travels downstream
        return y.reshape(x.shape), (xhat, invstd, w, count, train)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, grads: Params
    ) -> list[np.ndarray | None]:
        xhat, invstd, w, count, train = cache
        shape = dy.shape
        dy2 = dy.reshape(-1, shape[-1])
        if w is not None:
            dy2 = dy2 * w  # padded outputs do not exist as far as the loss is concerned
        sum_dy = dy2.sum(axis=0)
        sum_dy_xhat = (dy2 * xhat).sum(axis=0)
        if self.affine:
            gamma = params["gamma"]
            grads["gamma"] += sum_dy_xhat
            grads["beta"] += sum_dy
            dxhat = dy2 * gamma
            s1, s2 = sum_dy * gamma, sum_dy_xhat * gamma
        else:
            dxhat, s1, s2 = dy2, sum_dy, sum_dy_xhat

        if train:
            # Mean and variance depend on every real token, hence the two correction terms.
            denom = max(count, 1.0)
            dx = (dxhat - s1 / denom - xhat * (s2 / denom)) * invstd
            if w is not None:
                dx *= w
        else:
            dx = dxhat * invstd
        return [dx.reshape(shape)]
