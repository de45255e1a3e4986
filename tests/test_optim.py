"""Optimizers and gradient clipping do what their published update rules say.

The references below are written from the equations, not from specc's code:
SGD with momentum as in Sutskever et al. (2013) in the form torch.optim uses
(the buffer starts at the first gradient), Adam as in Kingma & Ba (2015),
Algorithm 1, and Adagrad as in Duchi et al. (2011) with the epsilon outside the
square root; global-norm clipping as in Pascanu et al. (2013). They run with
numpy alone, so these rules are checked on every install; the comparison with
torch.optim, step for step, is the last test and needs torch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from specc.ir.spec import Adagrad, Adam, Optimizer, Sgd
from specc.train.optim import clip_global_norm, make_optimizer


def run_ours(
    cfg: Optimizer, start: np.ndarray, grads: list[np.ndarray], dtype: type = np.float64
) -> np.ndarray:
    """The parameters after one step of specc's optimizer per gradient, in `dtype`."""
    params = start.astype(dtype)
    opt = make_optimizer(cfg, params.size, np.dtype(dtype))
    for g in grads:
        opt.step(params, g.astype(dtype))
    return params


# ----- worked examples: numbers a reader can check by hand ---------------------------------


def test_sgd_steps_against_the_gradient_by_lr():
    # 1 - 0.1·0.5 = 0.95, then 0.95 - 0.1·(-1) = 1.05
    got = run_ours(Sgd(lr=0.1), np.array([1.0]), [np.array([0.5]), np.array([-1.0])])
    np.testing.assert_allclose(got, [1.05], rtol=1e-15)


def test_momentum_accumulates_a_constant_gradient():
    # buffer b = 1, 1.9, 2.71; θ = -0.1, -0.29, -0.561
    ones = [np.array([1.0])] * 3
    for steps, want in ((1, -0.1), (2, -0.29), (3, -0.561)):
        got = run_ours(Sgd(lr=0.1, momentum=0.9), np.array([0.0]), ones[:steps])
        np.testing.assert_allclose(got, [want], rtol=1e-14)


def test_adam_moves_each_parameter_by_lr_under_a_constant_gradient():
    """With bias correction, m̂ = g and v̂ = g² at every step of a constant gradient,
    so each step is lr·g/|g| whatever the gradient's size."""
    g = np.array([2.0, -0.5, 1e-3])
    got = run_ours(Adam(lr=0.01), np.zeros(3), [g] * 4)
    np.testing.assert_allclose(got, [-0.04, 0.04, -0.04], rtol=1e-5)


def test_adagrad_steps_shrink_as_one_over_root_t():
    """A constant gradient c sums to t·c², so step t moves lr·sign(c)/√t."""
    g = np.array([3.0, -0.25])
    got = run_ours(Adagrad(lr=0.1), np.zeros(2), [g] * 3)
    moved = 0.1 * (1 + 1 / math.sqrt(2) + 1 / math.sqrt(3))
    np.testing.assert_allclose(got, [-moved, moved], rtol=1e-9)


# ----- references from the update equations, over random gradients ------------------------


def sgd_reference(start: np.ndarray, grads: list[np.ndarray], lr: float, momentum: float):
    theta, buf = start.copy(), None
    for g in grads:
        if momentum == 0:
            step = g
        else:
            buf = g.copy() if buf is None else momentum * buf + g
            step = buf
        theta = theta - lr * step
    return theta


def adam_reference(
    start: np.ndarray,
    grads: list[np.ndarray],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
):
    theta = start.copy()
    m = np.zeros_like(start)
    v = np.zeros_like(start)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def adagrad_reference(start: np.ndarray, grads: list[np.ndarray], lr: float, eps: float):
    theta, total = start.copy(), np.zeros_like(start)
    for g in grads:
        total = total + g * g
        theta = theta - lr * g / (np.sqrt(total) + eps)
    return theta


REFERENCE_CASES = [
    pytest.param(Sgd(lr=0.1), lambda s, gs: sgd_reference(s, gs, 0.1, 0.0), id="sgd"),
    pytest.param(
        Sgd(lr=0.05, momentum=0.9),
        lambda s, gs: sgd_reference(s, gs, 0.05, 0.9),
        id="sgd-momentum",
    ),
    pytest.param(
        Adam(lr=3e-3), lambda s, gs: adam_reference(s, gs, 3e-3, 0.9, 0.999, 1e-8), id="adam"
    ),
    pytest.param(
        Adam(lr=1e-2, beta1=0.5, beta2=0.9, eps=1e-6),
        lambda s, gs: adam_reference(s, gs, 1e-2, 0.5, 0.9, 1e-6),
        id="adam-betas",
    ),
    pytest.param(Adagrad(lr=0.1), lambda s, gs: adagrad_reference(s, gs, 0.1, 1e-10), id="adagrad"),
]


@pytest.mark.parametrize(
    "dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-4)], ids=["float64", "float32"]
)
@pytest.mark.parametrize("cfg, reference", REFERENCE_CASES)
def test_optimizer_follows_its_update_equations(cfg, reference, dtype, rtol):
    """Over gradients of mixed sizes; training runs in float32, so that is checked too
    (the state arrays take the parameters' dtype)."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=20)
    grads = [rng.normal(size=20) * scale for scale in (1.0, 0.1, 3.0, 1.0, 0.01, 1.0)]
    params = run_ours(cfg, start, grads, dtype)
    assert params.dtype == dtype
    np.testing.assert_allclose(params, reference(start, grads), rtol=rtol, atol=rtol * 1e-2)


# ----- global-norm clipping ----------------------------------------------------------------


def test_clip_scales_all_gradients_together():
    g = np.array([3.0, 4.0, 0.0])
    assert clip_global_norm(g, 1.0) == pytest.approx(5.0)  # the norm before clipping
    np.testing.assert_allclose(g, [0.6, 0.8, 0.0], rtol=1e-5)


def test_clip_keeps_the_direction_and_sets_the_norm():
    rng = np.random.default_rng(2)
    g = rng.normal(size=200) * 10
    before = g.copy()
    norm = math.sqrt(float(np.sum(before * before)))
    assert clip_global_norm(g, 0.5) == pytest.approx(norm, rel=1e-12)
    np.testing.assert_allclose(g, before * (0.5 / norm), rtol=1e-5)


@pytest.mark.parametrize(
    "grads, max_norm",
    [([0.3, 0.4], 1.0), ([3.0, 4.0], 5.0), ([3.0, 4.0], None)],
    ids=["under", "equal", "no-limit"],
)
def test_gradients_within_the_limit_are_left_alone(grads, max_norm):
    g = np.array(grads)
    assert clip_global_norm(g, max_norm) == pytest.approx(math.hypot(*grads))
    np.testing.assert_array_equal(g, grads)


# ----- the same steps as torch.optim ---------------------------------------------------------


@pytest.mark.parametrize(
    "cfg, name, options",
    [
        (Sgd(lr=0.1, momentum=0.0), "SGD", {"lr": 0.1}),
        (Sgd(lr=0.05, momentum=0.9), "SGD", {"lr": 0.05, "momentum": 0.9}),
        (Adam(lr=3e-3), "Adam", {"lr": 3e-3}),
        (Adam(lr=1e-2, beta1=0.5, beta2=0.9), "Adam", {"lr": 1e-2, "betas": (0.5, 0.9)}),
        (Adagrad(lr=0.1), "Adagrad", {"lr": 0.1, "eps": 1e-10}),
    ],
    ids=["sgd", "sgd-momentum", "adam", "adam-betas", "adagrad"],
)
def test_optimizer_matches_torch(cfg, name, options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.normal(size=20)
    grads = [rng.normal(size=20) for _ in range(5)]
    theirs = torch.tensor(start.copy(), requires_grad=True)
    topt = getattr(torch.optim, name)([theirs], **options)
    for g in grads:
        theirs.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(
        run_ours(cfg, start, grads), theirs.detach().numpy(), rtol=1e-10, atol=1e-12
    )


def test_clip_matches_torch_over_several_arrays():
    """specc clips one flat array holding every parameter's gradient; torch clips a
    list of tensors by their joint norm. Split the same numbers both ways."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    flat = rng.normal(size=30) * 4
    pieces = [torch.zeros(n, dtype=torch.float64, requires_grad=True) for n in (5, 10, 15)]
    for piece, part in zip(pieces, np.split(flat.copy(), [5, 15]), strict=True):
        piece.grad = torch.tensor(part)
    their_norm = torch.nn.utils.clip_grad_norm_(pieces, 1.0)
    our_norm = clip_global_norm(flat, 1.0)
    assert our_norm == pytest.approx(float(their_norm), rel=1e-12)
    theirs = np.concatenate([piece.grad.numpy() for piece in pieces])
    np.testing.assert_allclose(flat, theirs, rtol=1e-12)
