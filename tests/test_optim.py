"""Optimizers and clipping agree with torch.optim step for step."""

from __future__ import annotations

import numpy as np
import pytest

from specc.ir.spec import Adagrad, Adam, Sgd
from specc.train.optim import clip_global_norm, make_optimizer

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "cfg, make_torch",
    [
        (Sgd(lr=0.1, momentum=0.0), lambda p: torch.optim.SGD(p, lr=0.1)),
        (Sgd(lr=0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
        (Adam(lr=3e-3), lambda p: torch.optim.Adam(p, lr=3e-3)),
        (
            Adam(lr=1e-2, beta1=0.5, beta2=0.9),
            lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.5, 0.9)),
        ),
        (Adagrad(lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10)),
    ],
    ids=["sgd", "sgd-momentum", "adam", "adam-betas", "adagrad"],
)
def test_optimizer_matches_torch(cfg, make_torch):
    rng = np.random.default_rng(0)
    start = rng.normal(size=20)
    ours = start.copy()
    opt = make_optimizer(cfg, ours.size, np.dtype(np.float64))
    theirs = torch.tensor(start.copy(), requires_grad=True)
    topt = make_torch([theirs])
    for _ in range(5):
        g = rng.normal(size=20)
        opt.step(ours, g.copy())
        theirs.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_clip_scales_all_gradients_together():
    g = np.array([3.0, 4.0, 0.0])
    norm = clip_global_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    assert np.linalg.norm(g) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(g / np.linalg.norm(g), [0.6, 0.8, 0.0])
    small = np.array([0.1, 0.1])
    clip_global_norm(small, 1.0)
    np.testing.assert_array_equal(small, [0.1, 0.1])
