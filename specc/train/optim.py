"""Optimizers over one flat parameter array: one update covers every parameter.

The update rules follow torch.optim (SGD with momentum, Adam, Adagrad), so a
spec's learning rates mean what they mean elsewhere. State is a dict of flat
arrays plus a step counter, which is all a checkpoint needs to resume exactly.
"""

from __future__ import annotations

import math

import numpy as np

from specc.ir.spec import Adagrad, Adam, Optimizer, Sgd


class FlatOptimizer:
    """Base: holds the state arrays and applies `update` in place."""

    state_names: tuple[str, ...] = ()

    def __init__(self, size: int, dtype: np.dtype) -> None:
        self.t = 0
        self.state = {name: np.zeros(size, dtype=dtype) for name in self.state_names}
        self._tmp = np.empty(size, dtype=dtype)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        self.t += 1
        self.update(params, grads)

    def update(self, params: np.ndarray, grads: np.ndarray) -> None:
        raise NotImplementedError


class SgdOptimizer(FlatOptimizer):
    def __init__(self, cfg: Sgd, size: int, dtype: np.dtype) -> None:
        self.state_names = ("velocity",) if cfg.momentum > 0 else ()
        super().__init__(size, dtype)
        self.lr, self.momentum = cfg.lr, cfg.momentum

    def update(self, params, grads):
        if self.momentum > 0:
            v = self.state["velocity"]
            if self.t == 1:
                v[...] = grads  # torch starts the buffer at the first gradient
            else:
                v *= self.momentum
                v += grads
            np.multiply(v, self.lr, out=self._tmp)
        else:
            np.multiply(grads, self.lr, out=self._tmp)
        params -= self._tmp


class AdamOptimizer(FlatOptimizer):
    state_names = ("m", "v")

    def __init__(self, cfg: Adam, size: int, dtype: np.dtype) -> None:
        super().__init__(size, dtype)
        self.lr, self.b1, self.b2, self.eps = cfg.lr, cfg.beta1, cfg.beta2, cfg.eps

    def update(self, params, grads):
        m, v, tmp = self.state["m"], self.state["v"], self._tmp
        # m += (1 - b1) (g - m): torch's lerp, three passes and no temporaries
        np.subtract(grads, m, out=tmp)
        tmp *= 1 - self.b1
        m += tmp
        v *= self.b2
        np.multiply(grads, grads, out=tmp)
        tmp *= 1 - self.b2
        v += tmp
        bias1 = 1 - self.b1**self.t
        root2 = math.sqrt(1 - self.b2**self.t)
        # p -= lr * (m / bias1) / (sqrt(v / bias2) + eps), as torch.optim.Adam, with the
        # two bias corrections folded into the scalars:
        # = (lr * root2 / bias1) * m / (sqrt(v) + eps * root2)
        np.sqrt(v, out=tmp)
        tmp += self.eps * root2
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * root2 / bias1
        params -= tmp


class AdagradOptimizer(FlatOptimizer):
    state_names = ("sum",)

    def __init__(self, cfg: Adagrad, size: int, dtype: np.dtype) -> None:
        super().__init__(size, dtype)
        self.lr, self.eps = cfg.lr, cfg.eps

    def update(self, params, grads):
        s, tmp = self.state["sum"], self._tmp
        np.multiply(grads, grads, out=tmp)
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(grads, tmp, out=tmp)
        tmp *= self.lr
        params -= tmp


def make_optimizer(cfg: Optimizer, size: int, dtype: np.dtype) -> FlatOptimizer:
    if isinstance(cfg, Sgd):
        return SgdOptimizer(cfg, size, dtype)
    if isinstance(cfg, Adam):
        return AdamOptimizer(cfg, size, dtype)
    return AdagradOptimizer(cfg, size, dtype)


def clip_global_norm(grads: np.ndarray, max_norm: float | None) -> float:
    """Scale all gradients together so their joint L2 norm is at most `max_norm`;
    returns the norm before clipping."""
    norm = float(np.sqrt(np.dot(grads, grads)))
    if max_norm is not None and norm > max_norm:
        grads *= max_norm / (norm + 1e-6)
    return norm
