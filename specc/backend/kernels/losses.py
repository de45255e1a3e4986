"""Training losses as plain functions returning ``(loss, gradient)``.

Losses are means over *real* positions only, so padding neither dilutes the
loss nor receives gradient, and the loss value is comparable across batches
with different amounts of padding.
"""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(
    logits: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood in nats of integer ``targets`` under ``softmax(logits)``.

    Works from logits with log-sum-exp, never from probabilities, so it stays
    finite for logits of any magnitude. ``logits`` is (B, T, V) with targets
    (B, T), or (B, V) with targets (B,); ``mask`` has the shape of ``targets``.
    Targets at padded positions are never read, so they may hold any value.
    The returned gradient is already divided by the number of real positions.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {logits.shape} do not match targets {targets.shape}")
    vocab = logits.shape[-1]
    z = logits.reshape(-1, vocab) - logits.reshape(-1, vocab).max(axis=1, keepdims=True)
    t = targets.reshape(-1)
    rows = np.arange(t.size)
    if mask is None:
        w = None
        count = float(t.size)
    else:
        if mask.shape != targets.shape:
            raise ValueError(f"mask {mask.shape} does not match targets {targets.shape}")
        w = mask.reshape(-1).astype(logits.dtype, copy=False)
        count = float(w.sum())
        t = np.where(w > 0, t, 0)
    if t.size and (t.min() < 0 or t.max() >= vocab):
        raise ValueError(f"target id out of range [0, {vocab}): min {t.min()}, max {t.max()}")

    exp_z = np.exp(z)
    sum_exp = exp_z.sum(axis=1)
    nll = np.log(sum_exp) - z[rows, t]
    denom = max(count, 1.0)
    if w is not None:
        nll *= w
    loss = float(nll.sum() / denom)

    grad = exp_z
    grad /= sum_exp[:, None]
    grad[rows, t] -= 1
    if w is None:
        grad *= 1.0 / denom
    else:
        grad *= (w * (1.0 / denom))[:, None]
    return loss, grad.reshape(logits.shape)


def mse(
    pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean squared error over every real element.

    A (B, T) mask on (B, T, N) predictions covers all N features of a token,
    so the mean divides by (real tokens x N).
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} does not match target {target.shape}")
    diff = pred - target
    if mask is None:
        count = float(diff.size)
    else:
        w = mask.astype(pred.dtype, copy=False)
        if w.shape != pred.shape:
            if w.shape != pred.shape[: w.ndim]:
                raise ValueError(f"mask {mask.shape} does not match prediction {pred.shape}")
            w = w.reshape(w.shape + (1,) * (pred.ndim - w.ndim))
        diff *= w
        count = float(w.sum()) * (diff.size / w.size)
    denom = max(count, 1.0)
    loss = float((diff * diff).sum() / denom)
    return loss, diff * (2.0 / denom)
