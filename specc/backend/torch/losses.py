"""Losses as torch operations: (prediction, targets, mask) -> (sum, count).

They return the sum over real positions and how many there are, not the mean:
the network divides by the count of the whole batch, which in a distributed run
is every process's count together, so a shard's gradient is its exact share of
the whole batch's mean (and summing the shards' gradients gives it).
"""

from __future__ import annotations

from specc.backend.torch.lib import torch


def cross_entropy(logits, targets, mask):
    """Σ −log softmax(z)[target] over real positions, and their number."""
    w = torch.ones(targets.shape, dtype=logits.dtype, device=logits.device)
    if mask is not None:
        w = mask.to(logits.dtype)
    t = torch.where(w > 0, targets, torch.zeros_like(targets))  # a padded target is never read
    vocab = logits.shape[-1]
    if t.numel():
        low, high = int(t.min()), int(t.max())
        if low < 0 or high >= vocab:
            raise ValueError(f"target id out of range [0, {vocab}): min {low}, max {high}")
    log_p = torch.log_softmax(logits, dim=-1)
    nll = -torch.gather(log_p, -1, t[..., None])[..., 0]
    return (nll * w).sum(), w.sum()


def mse(pred, target, mask):
    """Σ (pred − target)² over real scalars, and their number."""
    if mask is None:
        w = torch.ones(pred.shape[:1], dtype=pred.dtype, device=pred.device)
    else:
        w = mask.to(pred.dtype)
    w = w.reshape(tuple(w.shape) + (1,) * (pred.ndim - w.ndim))
    diff = (pred - target) * w
    per_weight = diff.numel() // max(w.numel(), 1)
    return (diff**2).sum(), w.sum() * per_weight
