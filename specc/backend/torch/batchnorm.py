"""Batch normalisation over every axis but the features, over real tokens only."""

from __future__ import annotations

import numpy as np

from specc.backend.torch.lib import torch
from specc.backend.torch.op import Op


class BatchNorm(Op):
    """y = γ·(x − μ_B)/√(σ²_B + ε) + β per feature, as `specc.backend.reference`.

    Training normalises by the batch's mean and biased variance over real tokens
    (mask 1) and moves the running estimates (unbiased variance) by ``momentum``;
    evaluation uses the running estimates. Padded tokens output zero.

    In a distributed run the batch is every process's shard together: the sums
    behind μ_B and σ²_B go through ``all_sum``, whose backward sums the gradients
    the same way, so each process normalises (and differentiates) exactly as one
    process holding the whole batch would.
    """

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        axes = tuple(range(x.ndim - 1))
        # Without a mask every token is real: no weights to multiply by.
        w = None if mask is None else mask[..., None]
        if train:
            if w is None:
                count = x.new_full((1,), float(x.numel() // x.shape[-1]))
                sums = torch.cat([x.sum(dim=axes), count])
            else:
                sums = torch.cat([(x * w).sum(dim=axes), w.sum().reshape(1)])
            if self.all_sum is not None:
                sums = self.all_sum(sums)
            total, n = sums[:-1], sums[-1]
            mean = total / n.clamp(min=1.0)
            dev2 = (x - mean) ** 2
            sq = (dev2 if w is None else dev2 * w).sum(dim=axes)
            if self.all_sum is not None:
                sq = self.all_sum(sq)
            var = sq / n.clamp(min=1.0)
            self._update_running(state, mean, var, float(n.detach()))
        else:
            mean = torch.from_numpy(state["running_mean"]).to(x.device)
            var = torch.from_numpy(state["running_var"]).to(x.device)
        xhat = (x - mean) / torch.sqrt(var + self.node.eps)
        y = params["gamma"] * xhat + params["beta"] if self.node.affine else xhat
        return (y if w is None else y * w), None

    def _update_running(self, state, mean, var, n: float) -> None:
        """The running estimates, in the node's NumPy buffers (as every backend keeps them)."""
        if n <= 0:
            return
        mom = self.node.momentum
        mean_np = mean.detach().cpu().numpy()
        unbiased = var.detach().cpu().numpy() * n / max(n - 1.0, 1.0)
        rm, rv = state["running_mean"], state["running_var"]
        rm[...] = (1 - mom) * rm + mom * mean_np.astype(rm.dtype, copy=False)
        rv[...] = (1 - mom) * rv + mom * np.asarray(unbiased, dtype=rv.dtype)
