"""Losses, averaged over real positions: (prediction, targets, mask) -> (loss, gradient)."""

from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray | None):
    """L = −(1/n) Σ log softmax(z)[target] over the n real positions;
    dL/dz = (softmax(z) − onehot(target))/n."""
    w = np.ones(targets.shape) if mask is None else np.asarray(mask, dtype=float)
    t = np.where(w > 0, targets, 0)  # a padded target is never read
    vocab = logits.shape[-1]
    if t.size and (t.min() < 0 or t.max() >= vocab):
        raise ValueError(f"target id out of range [0, {vocab}): min {t.min()}, max {t.max()}")
    n = max(float(w.sum()), 1.0)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    nll = -np.take_along_axis(log_p, t[..., None], axis=-1)[..., 0]
    grad = np.exp(log_p)
    np.put_along_axis(grad, t[..., None], np.take_along_axis(grad, t[..., None], -1) - 1, -1)
    return float((nll * w).sum() / n), (grad * (w[..., None] / n)).astype(logits.dtype)


def mse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None):
    """L = (1/n) Σ (pred − target)² over the n real scalars; dL/dpred = 2 (pred − target)/n."""
    w = np.ones(pred.shape[:1]) if mask is None else np.asarray(mask, dtype=pred.dtype)
    w = w.reshape(w.shape + (1,) * (pred.ndim - w.ndim))
    diff = (pred - target) * w
    n = max(float(w.sum()) * (diff.size / w.size), 1.0)
    return float((diff**2).sum() / n), diff * (2.0 / n)
