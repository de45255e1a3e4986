"""The benchmark's model written out by hand in NumPy: the reference for how fast
an interpreter of it could be.

bench_torch.py times this training step against torch the same way it times
specc's. The gap between it and specc is what the interpreter itself costs
(executing a general graph from the IR, buffer bookkeeping, masks it might
need); the gap between it and torch is what NumPy allows. It uses numpy's
own BLAS for every product, straight-line code with no reuse of buffers, and
the same float32 data and starting weights as the specc network it copies.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

BN_EPS, SLOPE, CLIP, LR, BETA1, BETA2, ADAM_EPS = 1e-5, 0.01, 5.0, 1e-3, 0.9, 0.999, 1e-8


def training_step(
    params: dict[str, np.ndarray], ids: np.ndarray, targets: np.ndarray
) -> Callable[[], float]:
    """A function doing one step (forward, backward, clip, Adam) on copies of
    ``params``, named as specc names them; it returns the loss in nats."""
    names = list(params)
    flat = np.concatenate([params[k].ravel() for k in names]).astype(np.float32)
    grad = np.zeros_like(flat)
    p, g, at = {}, {}, 0
    for k in names:
        size = params[k].size
        p[k] = flat[at : at + size].reshape(params[k].shape)
        g[k] = grad[at : at + size].reshape(params[k].shape)
        at += size
    m, v = np.zeros_like(flat), np.zeros_like(flat)
    b, t = ids.shape
    hid = p["rnn.W_hh"].shape[0]
    rows = b * t
    ids_tm = np.ascontiguousarray(ids.T).ravel()  # time-major, as the recurrence runs
    picked = np.arange(rows), np.ascontiguousarray(targets.T).ravel()
    steps = [0]

    def step() -> float:
        x = p["embedding.E"][ids_tm]
        hs = np.zeros((t + 1, b, hid), np.float32)
        pre = hs[1:].reshape(rows, hid)
        np.dot(x, p["rnn.W_xh"], out=pre)
        pre += p["rnn.b"]
        w_hh = p["rnn.W_hh"]
        for i in range(1, t + 1):
            hs[i] += hs[i - 1] @ w_hh
            np.tanh(hs[i], out=hs[i])
        mean = pre.mean(0)
        centred = pre - mean
        invstd = 1.0 / np.sqrt((centred * centred).mean(0) + BN_EPS)
        xhat = centred * invstd
        z = xhat * p["batchnorm.gamma"] + p["batchnorm.beta"]
        act = np.maximum(z, SLOPE * z)
        logits = act @ p["dense.W"] + p["dense.b"]
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(1, keepdims=True)
        loss = -float(np.log(probs[picked]).mean())

        grad.fill(0)
        dlogits = probs
        dlogits[picked] -= 1
        dlogits /= rows
        g["dense.W"][...] = act.T @ dlogits
        g["dense.b"][...] = dlogits.sum(0)
        dz = (dlogits @ p["dense.W"].T) * np.where(z > 0, 1.0, SLOPE).astype(np.float32)
        g["batchnorm.gamma"][...] = (dz * xhat).sum(0)
        g["batchnorm.beta"][...] = dz.sum(0)
        dxhat = dz * p["batchnorm.gamma"]
        dpre = invstd * (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0))
        dsteps = dpre.reshape(t, b, hid)
        w_hh_t = np.ascontiguousarray(w_hh.T)
        carry = np.zeros((b, hid), np.float32)
        for i in range(t - 1, -1, -1):
            d = dsteps[i]
            d += carry
            d *= 1 - hs[i + 1] * hs[i + 1]
            np.dot(d, w_hh_t, out=carry)
        g["rnn.W_hh"][...] = hs[:t].reshape(rows, hid).T @ dpre
        g["rnn.W_xh"][...] = x.T @ dpre
        g["rnn.b"][...] = dpre.sum(0)
        np.add.at(g["embedding.E"], ids_tm, dpre @ p["rnn.W_xh"].T)

        norm = math.sqrt(float(np.dot(grad, grad)))
        if norm > CLIP:
            grad[...] *= CLIP / (norm + 1e-6)
        steps[0] += 1
        m[...] = BETA1 * m + (1 - BETA1) * grad
        v[...] = BETA2 * v + (1 - BETA2) * grad * grad
        m_hat = m / (1 - BETA1 ** steps[0])
        v_hat = v / (1 - BETA2 ** steps[0])
        flat[...] -= LR * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
        return loss

    return step
