"""Training losses as plain functions returning ``(loss, gradient)``.

Losses are means over *real* positions only, so padding neither dilutes the
loss nor receives gradient, and the loss value is comparable across batches
with different amounts of padding.
"""

from __future__ import annotations

import numpy as np

from specc.backend.numpy.base import (
    from_rows,
    ids_in_range,
    ones,
    softmax_shift,
    token_rows,
)


def softmax_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    inplace: bool = False,
) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood in nats of integer ``targets`` under ``softmax(logits)``.

    Works from logits with log-sum-exp, never from probabilities, so it stays
    finite for logits of any magnitude. ``logits`` is (B, T, V) with targets
    (B, T), or (B, V) with targets (B,); ``mask`` has the shape of ``targets``.
    Targets at padded positions are never read, so they may hold any value.
    The returned gradient is already divided by the number of real positions.
    With ``inplace`` the gradient is written over ``logits`` (the executor's
    fast path; the logits are not needed afterwards).
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {logits.shape} do not match targets {targets.shape}")
    vocab = logits.shape[-1]
    z, tm = token_rows(logits)  # rows in the logits' own layout; targets follow it
    t = (targets.T if tm else targets).reshape(-1)
    if mask is None:
        w = None
        count = float(t.size)
    else:
        if mask.shape != targets.shape:
            raise ValueError(f"mask {mask.shape} does not match targets {targets.shape}")
        w = (mask.T if tm else mask).reshape(-1).astype(logits.dtype, copy=False)
        count = float(w.sum())
        t = np.where(w > 0, t, 0)
    if not ids_in_range(t, vocab):
        raise ValueError(f"target id out of range [0, {vocab}): min {t.min()}, max {t.max()}")
    if z.size == 0:
        return 0.0, np.zeros(logits.shape, dtype=logits.dtype)

    # Shift so exp never overflows nor underflows (see `softmax_shift`: usually the
    # global max or nothing, rather than a slow per-row max).
    shift = softmax_shift(z)
    if shift is not None:
        z = np.subtract(z, shift, out=z if inplace else None)
    elif not inplace:
        z = z.copy()
    at_target = np.arange(0, z.size, vocab) + t  # flat index of each row's target
    picked = z.reshape(-1)[at_target]
    np.exp(z, out=z)
    sum_exp = z @ ones(vocab, z.dtype)
    nll = np.log(sum_exp)
    nll -= picked
    denom = max(count, 1.0)
    if w is not None:
        nll *= w
    loss = float(nll.sum() / denom)

    # gradient: (softmax - onehot(target)) * weight / count
    row_scale = sum_exp
    row_scale *= denom
    np.divide(1.0, row_scale, out=row_scale)
    if w is not None:
        row_scale *= w
    z *= row_scale[:, None]
    zf = z.reshape(-1)
    zf[at_target] -= (1.0 / denom) if w is None else w * (1.0 / denom)
    return loss, from_rows(z, logits.shape, tm)


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
