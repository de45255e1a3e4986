"""Batch normalisation over every axis but the features, over real tokens only."""

from __future__ import annotations

import numpy as np

from specc.backend.reference.op import Op


class BatchNorm(Op):
    """y = γ·(x − μ_B)/√(σ²_B + ε) + β per feature (Algorithm 1 of Ioffe & Szegedy).

    Training normalises by the batch's mean and biased variance and moves the
    running estimates (the unbiased variance) by ``momentum``; evaluation uses
    the running estimates. Padded tokens (mask 0) count in no statistic, output
    zero and pass no gradient.
    """

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        axes = tuple(range(x.ndim - 1))
        w = np.ones((*x.shape[:-1], 1), x.dtype) if mask is None else mask[..., None]
        n = float(w.sum())
        if train:
            mean = (x * w).sum(axis=axes) / max(n, 1.0)
            var = ((x - mean) ** 2 * w).sum(axis=axes) / max(n, 1.0)
            if n > 0:
                mom = self.node.momentum
                state["running_mean"][...] = (1 - mom) * state["running_mean"] + mom * mean
                unbiased = var * n / max(n - 1.0, 1.0)
                state["running_var"][...] = (1 - mom) * state["running_var"] + mom * unbiased
        else:
            mean, var = state["running_mean"], state["running_var"]
        xhat = (x - mean) / np.sqrt(var + self.node.eps)
        y = params["gamma"] * xhat + params["beta"] if self.node.affine else xhat
        return y * w, (xhat, var, w, n, train)

    def backward(self, params, cache, dy, grads):
        xhat, var, w, n, train = cache
        axes = tuple(range(dy.ndim - 1))
        g = dy * w
        gx = g
        if self.node.affine:
            grads["gamma"] += (g * xhat).sum(axis=axes)
            grads["beta"] += g.sum(axis=axes)
            gx = g * params["gamma"]
        invstd = 1 / np.sqrt(var + self.node.eps)
        if not train:  # the statistics are constants
            return [gx * invstd]
        # In training μ_B and σ²_B depend on every real token, hence the two means.
        mean_gx = gx.sum(axis=axes) / max(n, 1.0)
        mean_gx_xhat = (gx * xhat).sum(axis=axes) / max(n, 1.0)
        return [invstd * (gx - mean_gx - xhat * mean_gx_xhat) * w]
