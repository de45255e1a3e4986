"""Optimizers over one flat parameter array: one update covers every parameter.

The update rules follow torch.optim (SGD with momentum and weight decay, Adam,
AdamW, Adagrad), so a spec's learning rates mean what they mean elsewhere.
State is a dict of flat arrays plus a step counter, which is all a checkpoint
needs to resume exactly. `lr` is an attribute the loop sets before each step
from the task's schedule.

Weight decay applies to the `decay` slices of the flat array: by default the
matrices (weights, embedding tables) and not the vectors (biases, batchnorm's
γ and β), which is what practitioners mean by weight decay (decaying a bias
or a scale towards zero only biases the model); see :func:`decay_slices`.
"""

from __future__ import annotations

import math

import numpy as np

from specc.ir.spec import Adagrad, Adam, AdamW, Optimizer, Sgd


class FlatOptimizer:
    """Base: holds the state arrays and applies `update` in place."""

    state_names: tuple[str, ...] = ()

    lr: float

    def __init__(self, size: int, dtype: np.dtype) -> None:
        self.t = 0
        self.decay: list[slice] = []
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
        self.lr, self.momentum, self.weight_decay = cfg.lr, cfg.momentum, cfg.weight_decay

    def update(self, params, grads):
        if self.weight_decay:  # coupled, as torch.optim.SGD: g ← g + wd·p
            for sl in self.decay:
                np.multiply(params[sl], self.weight_decay, out=self._tmp[sl])
                grads[sl] += self._tmp[sl]
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


class AdamWOptimizer(AdamOptimizer):
    """Adam after shrinking the decayed parameters by lr·weight_decay (torch.optim.AdamW)."""

    def __init__(self, cfg: AdamW, size: int, dtype: np.dtype) -> None:
        FlatOptimizer.__init__(self, size, dtype)
        self.lr, self.b1, self.b2, self.eps = cfg.lr, cfg.beta1, cfg.beta2, cfg.eps
        self.weight_decay = cfg.weight_decay

    def update(self, params, grads):
        shrink = 1 - self.lr * self.weight_decay
        for sl in self.decay:
            params[sl] *= shrink
        super().update(params, grads)


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


def make_optimizer(
    cfg: Optimizer, size: int, dtype: np.dtype, decay: list[slice] | None = None
) -> FlatOptimizer:
    """The optimizer `cfg` names over `size` parameters; `decay` are the slices its
    weight decay applies to (ignored by optimizers without one)."""
    opt: FlatOptimizer
    if isinstance(cfg, Sgd):
        opt = SgdOptimizer(cfg, size, dtype)
    elif isinstance(cfg, AdamW):
        opt = AdamWOptimizer(cfg, size, dtype)
    elif isinstance(cfg, Adam):
        opt = AdamOptimizer(cfg, size, dtype)
    else:
        opt = AdagradOptimizer(cfg, size, dtype)
    opt.decay = list(decay or [])
    return opt


def decay_slices(
    layout: dict[str, slice], shapes: dict[str, tuple[int, ...]], which: str = "weights"
) -> list[slice]:
    """The slices of the flat parameters weight decay shrinks, adjacent ones merged:
    every parameter for `all`; for `weights` the matrices (two or more dimensions), so
    biases and batchnorm's γ and β are left alone."""
    chosen = sorted(
        (sl.start, sl.stop) for key, sl in layout.items() if which == "all" or len(shapes[key]) >= 2
    )
    merged: list[list[int]] = []
    for start, stop in chosen:
        if merged and merged[-1][1] == start:
            merged[-1][1] = stop
        else:
            merged.append([start, stop])
    return [slice(a, b) for a, b in merged]


def clip_global_norm(grads: np.ndarray, max_norm: float | None) -> float:
    """Scale all gradients together so their joint L2 norm is at most `max_norm`;
    returns the norm before clipping."""
    norm = float(np.sqrt(np.dot(grads, grads)))
    if max_norm is not None and norm > max_norm:
        grads *= max_norm / (norm + 1e-6)
    return norm
