"""Gradient checks and behavioural tests for the NumPy op kernels.

Every gradient is checked against central finite differences in float64 on
the scalar ``sum(y * G)`` for a random upstream gradient ``G``: an all-ones
``G`` would hide transposition and broadcasting mistakes.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable

import numpy as np
import pytest

from specc.backend.numpy.kernels import KERNELS, Kernel, mse, softmax_cross_entropy
from specc.ir import ops
from specc.ir.ops import OP_CLASSES, RNN_ACTIVATIONS, RNN_INITS

from helpers import TOL, grad_check, in_shapes_of, make_mask, numeric_grad, rel_err
from numpy_kernels import (
    RNN,
    Add,
    BatchNorm,
    Concat,
    Dense,
    Dropout,
    Embedding,
    Gelu,
    LeakyReLU,
    OneHot,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)

# ---------------------------------------------------------------- helpers


def small_dims(seed: int) -> tuple[int, int, int, int]:
    """Random small (B, T, N, H) so shape bugs that cancel for square sizes show up."""
    r = np.random.default_rng(seed)
    return (int(r.integers(2, 4)), int(r.integers(3, 6)), int(r.integers(2, 5)),
            int(r.integers(2, 5)))  # fmt: skip


def random_lengths(rng: np.random.Generator, b: int, t_len: int) -> list[int]:
    """Lengths in [1, T] with at least one full row and one strictly shorter row."""
    lengths = [int(v) for v in rng.integers(1, t_len + 1, size=b)]
    lengths[0] = t_len
    lengths[-1] = min(lengths[-1], t_len - 1)
    return lengths


# ---------------------------------------------------------------- rnn gradients


@pytest.mark.parametrize(
    ("activation", "reverse", "return_last", "masked"),
    list(itertools.product(RNN_ACTIVATIONS, [False, True], [False, True], [False, True])),
)
def test_rnn_gradients(activation: str, reverse: bool, return_last: bool, masked: bool) -> None:
    seed = zlib.crc32(repr((activation, reverse, return_last, masked)).encode()) % 1000
    b, t_len, n, h = small_dims(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, t_len, n))
    mask = make_mask(random_lengths(rng, b, t_len), t_len) if masked else None
    k = RNN(h, activation=activation, slope=0.2, reverse=reverse, return_last=return_last)
    params = k.init_params([(n,)], rng, np.float64)
    params["b"] = 0.1 * rng.standard_normal(h)  # a zero bias would leave a blind spot
    y, dxs, _ = grad_check(k, [x], mask=mask, params=params, seed=seed)
    assert y.shape == ((b, h) if return_last else (b, t_len, h))
    if masked:
        assert np.all(dxs[0][mask == 0] == 0)
        if not return_last:
            assert np.all(y[mask == 0] == 0)


@pytest.mark.parametrize(
    ("activation", "reverse", "masked", "fresh"),
    list(itertools.product(RNN_ACTIVATIONS, [False, True], [False, True], [False, True])),
)
def test_rnn_gradients_at_batch_one(activation: str, reverse: bool, masked: bool, fresh: bool):
    """Batch 1 takes its own BPTT product (a column, W_hh @ g.T), the classic
    minimal char-RNN's case; written or added, its gradients must be right."""
    seed = zlib.crc32(repr((activation, reverse, masked, fresh)).encode()) % 1000
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 5, 3))
    k = RNN(4, activation=activation, slope=0.2, reverse=reverse)
    params = k.init_params([(3,)], rng, np.float64)
    params["b"] = 0.1 * rng.standard_normal(4)
    mask = make_mask([3], 5) if masked else None
    grad_check(k, [x], mask=mask, params=params, seed=seed, fresh_grads=fresh)


@pytest.mark.parametrize(("init", "reverse"), list(itertools.product(RNN_INITS, [False, True])))
def test_rnn_gradients_every_init(init: str, reverse: bool) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 3))
    k = RNN(4, init=init, reverse=reverse)
    grad_check(k, [x], mask=make_mask([4, 2, 3], 4), seed=11)


def test_rnn_leaky_slope_applies() -> None:
    k = RNN(2, activation="leaky_relu", slope=0.2)
    params = {"W_xh": np.eye(2), "W_hh": np.zeros((2, 2)), "b": np.zeros(2)}
    x = np.array([[[1.0, -1.0]]])
    y, _ = k.forward(params, {}, [x], None, True, np.random.default_rng(0))
    np.testing.assert_allclose(y, [[[1.0, -0.2]]])


def test_rnn_hands_its_watch_the_gradient_at_every_hidden_state() -> None:
    """dL/dh_t as the watch sees it equals finite differences of the loss in h_t,
    computed by perturbing h_t through a second kernel run split at step t."""
    rng = np.random.default_rng(3)
    for reverse in (False, True):
        k = RNN(4, reverse=reverse)
        seen: list[np.ndarray] = []
        params = k.init_params([(3,)], rng, np.float64)
        x = rng.standard_normal((2, 5, 3))
        y, cache = k.forward(params, {}, [x], None, True, rng)
        g_up = rng.standard_normal(y.shape)
        k.watch = seen.append
        k.backward(params, cache, g_up, {n: np.zeros_like(p) for n, p in params.items()})
        k.watch = None
        k.backward(params, cache, g_up, {n: np.zeros_like(p) for n, p in params.items()})
        assert len(seen) == 1  # only while watched
        dh = seen[0]
        assert dh.shape == (2, 5, 4)
        # The last step processed receives gradient only from the output itself.
        last = 0 if reverse else 4
        np.testing.assert_allclose(dh[:, last], g_up[:, last], rtol=1e-12)
        # Every other step: what arrives from above plus what the next step sends back.
        w_hh = params["W_hh"]
        for t in range(5):
            nxt = t - 1 if reverse else t + 1
            if not 0 <= nxt < 5:
                continue
            h_next = y[:, nxt]
            d_pre = dh[:, nxt] * (1 - h_next**2)  # tanh' from the output
            np.testing.assert_allclose(dh[:, t], g_up[:, t] + d_pre @ w_hh.T, rtol=1e-10)


# ---------------------------------------------------------------- rnn masking


@pytest.mark.parametrize(
    ("reverse", "return_last", "activation"),
    [(False, False, "tanh"), (True, False, "tanh"), (False, True, "relu"), (True, True, "relu"),
     (True, False, "sigmoid")],
)  # fmt: skip
def test_rnn_padding_equals_running_rows_alone(
    reverse: bool, return_last: bool, activation: str
) -> None:
    rng = np.random.default_rng(5)
    b, t_len, n, h = 3, 6, 3, 4
    lengths = [6, 3, 1]
    mask = make_mask(lengths, t_len)
    x = rng.standard_normal((b, t_len, n)) * 3  # padded entries are large junk on purpose
    k = RNN(h, activation=activation, reverse=reverse, return_last=return_last)
    params = k.init_params([(n,)], rng, np.float64)
    params["b"] = 0.1 * rng.standard_normal(h)

    y, cache = k.forward(params, {}, [x], mask, True, rng)
    g_up = rng.standard_normal(y.shape)
    if not return_last:
        g_up *= mask[:, :, None]  # loss restricted to real tokens
    grads = {name: np.zeros_like(p) for name, p in params.items()}
    (dx,) = k.backward(params, cache, g_up, grads)

    summed = {name: np.zeros_like(p) for name, p in params.items()}
    for i, length in enumerate(lengths):
        xi = x[i : i + 1, :length]
        yi, ci = k.forward(params, {}, [xi], None, True, rng)
        gi = g_up[i : i + 1] if return_last else g_up[i : i + 1, :length]
        (dxi,) = k.backward(params, ci, gi, summed)
        if return_last:
            np.testing.assert_allclose(y[i], yi[0], rtol=1e-12, atol=1e-14)
        else:
            np.testing.assert_allclose(y[i, :length], yi[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dx[i, :length], dxi[0], rtol=1e-12, atol=1e-14)
    assert np.all(dx[mask == 0] == 0)
    for name in params:
        np.testing.assert_allclose(grads[name], summed[name], rtol=1e-11, atol=1e-13)


# ---------------------------------------------------------------- batchnorm


@pytest.mark.parametrize(
    ("ndim", "affine", "masked"),
    [(3, True, False), (3, False, False), (3, True, True), (3, False, True), (2, True, False),
     (2, False, False)],
)  # fmt: skip
def test_batchnorm_train_gradients(ndim: int, affine: bool, masked: bool) -> None:
    rng = np.random.default_rng(ndim * 10 + affine * 2 + masked)
    b, t_len, n, _ = small_dims(ndim + affine + masked)
    shape = (b, t_len, n) if ndim == 3 else (b + 2, n)
    x = rng.standard_normal(shape) * 2 + 1
    mask = make_mask(random_lengths(rng, b, t_len), t_len) if masked else None
    k = BatchNorm(affine=affine)
    params = k.init_params([(n,)], rng, np.float64)
    if affine:
        params = {"gamma": rng.standard_normal(n), "beta": rng.standard_normal(n)}
    _, dxs, _ = grad_check(k, [x], mask=mask, train=True, params=params)
    if masked:
        assert np.all(dxs[0][mask == 0] == 0)


@pytest.mark.parametrize("masked", [False, True])
def test_batchnorm_eval_gradients(masked: bool) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 2))
    k = BatchNorm()
    params = {"gamma": rng.standard_normal(2), "beta": rng.standard_normal(2)}
    state = {"running_mean": rng.standard_normal(2), "running_var": rng.random(2) + 0.5}
    mask = make_mask([4, 2, 1], 4) if masked else None
    y, _ = k.forward(params, state, [x], mask, False, rng)
    expected = (x - state["running_mean"]) / np.sqrt(state["running_var"] + 1e-5)
    expected = expected * params["gamma"] + params["beta"]
    if masked:
        expected *= mask[:, :, None]  # padded outputs are zeroed
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # grad_check re-initialises state; eval gradients are checked at default state here.
    grad_check(k, [x], mask=mask, train=False, params=params)


def test_batchnorm_mask_uses_real_tokens_only() -> None:
    rng = np.random.default_rng(9)
    b, t_len, n = 3, 5, 4
    mask = make_mask([5, 2, 3], t_len)
    x = rng.standard_normal((b, t_len, n)) + 2
    x[mask == 0] = 1e3  # junk that would wreck the statistics if it leaked in
    real = x[mask > 0]
    k = BatchNorm(momentum=0.3)
    params = {"gamma": rng.standard_normal(n), "beta": rng.standard_normal(n)}

    state = k.init_state([(n,)], np.float64)
    y, cache = k.forward(params, state, [x], mask, True, rng)
    state_ref = k.init_state([(n,)], np.float64)
    y_ref, cache_ref = k.forward(params, state_ref, [real], None, True, rng)

    np.testing.assert_allclose(y[mask > 0], y_ref, rtol=1e-12, atol=1e-13)
    mean, var = real.mean(axis=0), real.var(axis=0)
    np.testing.assert_allclose(
        y[mask > 0], (real - mean) / np.sqrt(var + 1e-5) * params["gamma"] + params["beta"],
        rtol=1e-12, atol=1e-13,
    )  # fmt: skip
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(state[name], state_ref[name], rtol=1e-12)
    np.testing.assert_allclose(state["running_mean"], 0.3 * mean, rtol=1e-12)
    np.testing.assert_allclose(state["running_var"], 0.7 + 0.3 * real.var(axis=0, ddof=1))

    g_up = rng.standard_normal(y.shape)
    grads = {name: np.zeros(n) for name in params}
    grads_ref = {name: np.zeros(n) for name in params}
    (dx,) = k.backward(params, cache, g_up, grads)
    (dx_ref,) = k.backward(params, cache_ref, g_up[mask > 0], grads_ref)
    np.testing.assert_allclose(dx[mask > 0], dx_ref, rtol=1e-10, atol=1e-13)
    assert np.all(dx[mask == 0] == 0)
    for name in params:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-11, atol=1e-13)


def test_batchnorm_eval_does_not_touch_state_and_train_does() -> None:
    k = BatchNorm()
    x = np.random.default_rng(0).standard_normal((4, 3))
    state = k.init_state([(3,)], np.float64)
    params = k.init_params([(3,)], np.random.default_rng(0), np.float64)
    k.forward(params, state, [x], None, False, np.random.default_rng(0))
    np.testing.assert_array_equal(state["running_mean"], 0)
    np.testing.assert_array_equal(state["running_var"], 1)
    k.forward(params, state, [x], None, True, np.random.default_rng(0))
    np.testing.assert_allclose(state["running_mean"], 0.1 * x.mean(axis=0))
    assert k.param_names == ("gamma", "beta")
    assert BatchNorm(affine=False).param_names == ()


# ---------------------------------------------------------------- other ops


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Inputs kept clear of kinks so finite differences never straddle one."""
    x = rng.standard_normal(shape)
    return x + np.sign(x) * 0.1


@pytest.mark.parametrize(
    "kernel",
    [LeakyReLU(), LeakyReLU(slope=0.2), ReLU(), Tanh(), Sigmoid(), Gelu(), Softmax(),
     Dropout(0.0), Dropout(0.4)],
    ids=repr,
)  # fmt: skip
@pytest.mark.parametrize("ndim", [2, 3])
def test_elementwise_gradients(kernel: Kernel, ndim: int) -> None:
    rng = np.random.default_rng(ndim)
    x = _away_from_zero(rng, (3, 4, 5)[-ndim:] if ndim == 2 else (2, 3, 4))
    grad_check(kernel, [x], mask=make_mask([3, 1], 3) if ndim == 3 else None)


@pytest.mark.parametrize(("bias", "ndim"), list(itertools.product([True, False], [2, 3])))
def test_dense_gradients(bias: bool, ndim: int) -> None:
    rng = np.random.default_rng(int(bias) + ndim)
    x = rng.standard_normal((3, 4) if ndim == 2 else (2, 3, 4))
    k = Dense(units=5, bias=bias)
    y, _, _ = grad_check(k, [x])
    assert y.shape == (*x.shape[:-1], 5)


def test_embedding_gradients_with_repeated_ids() -> None:
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 5, size=(3, 6))
    ids[0, :3] = 2  # guaranteed repeats
    k = Embedding(vocab=7, dim=3)
    y, dxs, grads = grad_check(k, [ids])
    assert y.shape == (3, 6, 3)
    assert dxs == [None]
    assert np.all(grads["E"][5:] == 0)  # unused rows get nothing


def test_embedding_accumulation_matches_add_at() -> None:
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 50, size=(8, 30))
    dy = rng.standard_normal((8, 30, 6))
    k = Embedding(vocab=50, dim=6)
    params = k.init_params([()], rng, np.float64)
    _, cache = k.forward(params, {}, [ids], None, True, rng)
    grads = {"E": np.ones((50, 6))}
    k.backward(params, cache, dy, grads)
    ref = np.ones((50, 6))
    np.add.at(ref, ids.ravel(), dy.reshape(-1, 6))
    np.testing.assert_allclose(grads["E"], ref, rtol=1e-12)


def test_embedding_rejects_out_of_range_ids() -> None:
    k = Embedding(vocab=4, dim=2)
    params = k.init_params([()], np.random.default_rng(0), np.float64)
    for bad in (np.array([[0, 4]]), np.array([[-1, 0]])):
        with pytest.raises(ValueError, match="out of range"):
            k.forward(params, {}, [bad], None, True, np.random.default_rng(0))


def test_one_hot() -> None:
    k = OneHot(vocab=4, dtype=np.float64)
    ids = np.array([[0, 3, 1], [2, 2, 0]])
    y, cache = k.forward({}, {}, [ids], None, True, np.random.default_rng(0))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, np.eye(4)[ids])
    assert k.backward({}, cache, np.ones_like(y), {}) == [None]


def test_concat_and_add_gradients() -> None:
    rng = np.random.default_rng(8)
    xs = [rng.standard_normal((2, 3, n)) for n in (2, 4, 1)]
    y, _, _ = grad_check(Concat(), xs)
    assert y.shape == (2, 3, 7)
    xs = [rng.standard_normal((2, 3, 4)) for _ in range(3)]
    y, dxs, _ = grad_check(Add(), xs)
    np.testing.assert_allclose(y, xs[0] + xs[1] + xs[2])
    assert dxs[0] is not dxs[1]


def test_add_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="equal shapes"):
        Add().forward({}, {}, [np.ones((2, 3)), np.ones((2, 4))], None, True, None)


def test_softmax_stable_and_normalised() -> None:
    x = np.array([[1000.0, 0.0, -1000.0], [3.0, 3.0, 3.0]])
    y, _ = Softmax().forward({}, {}, [x], None, True, None)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0)
    np.testing.assert_allclose(y[1], 1 / 3)


@pytest.mark.parametrize(
    ("kernel", "shape"),
    [
        (RNN(5), (1, 6, 3)),
        (RNN(5, activation="relu", reverse=True), (3, 6, 3)),
        (Dense(4), (3, 6, 5)),
        (BatchNorm(), (3, 6, 5)),
    ],
    ids=["rnn-batch-1", "rnn", "dense", "batchnorm"],
)
def test_fresh_gradients_are_written_exactly_as_added(kernel: Kernel, shape) -> None:
    """The executor promises zeroed gradients (``fresh_grads``), and kernels then write
    their products straight into them: that must give what adding to zeros gives, and
    without the promise a kernel must still add to what is there."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape)
    params = kernel.init_params([shape[2:]], rng, np.float64)
    state = kernel.init_state([shape[2:]], np.float64)
    y, cache = kernel.forward(params, state, [x], None, True, rng)
    g_up = rng.standard_normal(y.shape)
    added = {n: np.zeros_like(p) for n, p in params.items()}
    kernel.backward(params, cache, g_up, added)
    written = {n: np.zeros_like(p) for n, p in params.items()}
    kernel.backward(params, cache, g_up, written, fresh_grads=True)
    onto_ones = {n: np.ones_like(p) for n, p in params.items()}
    kernel.backward(params, cache, g_up, onto_ones)
    for name in params:
        np.testing.assert_array_equal(written[name], added[name])
        assert np.any(written[name] != 0)
        np.testing.assert_allclose(onto_ones[name], added[name] + 1, rtol=1e-13)


def test_backward_accumulates_into_existing_gradients() -> None:
    rng = np.random.default_rng(6)
    k = RNN(3)
    params = k.init_params([(2,)], rng, np.float64)
    x = rng.standard_normal((2, 4, 2))
    y, cache = k.forward(params, {}, [x], None, True, rng)
    g_up = rng.standard_normal(y.shape)
    fresh = {n: np.zeros_like(p) for n, p in params.items()}
    k.backward(params, cache, g_up, fresh)
    flat = np.full(sum(p.size for p in params.values()), 0.5)
    views, offset = {}, 0
    for name, p in params.items():  # views into one flat buffer, as the executor may use
        views[name] = flat[offset : offset + p.size].reshape(p.shape)
        offset += p.size
    k.backward(params, cache, g_up, views)
    for name in params:
        np.testing.assert_allclose(views[name], fresh[name] + 0.5, rtol=1e-13)


# ---------------------------------------------------------------- dropout


def test_dropout_seeded_eval_identity_and_mean() -> None:
    k = Dropout(0.3)
    x = np.ones((200, 500))
    y1, _ = k.forward({}, {}, [x], None, True, np.random.default_rng(42))
    y2, _ = k.forward({}, {}, [x], None, True, np.random.default_rng(42))
    y3, _ = k.forward({}, {}, [x], None, True, np.random.default_rng(43))
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    assert abs(y1.mean() - 1.0) < 0.02
    assert abs((y1 == 0).mean() - 0.3) < 0.01
    y_eval, cache = k.forward({}, {}, [x], None, False, np.random.default_rng(42))
    np.testing.assert_array_equal(y_eval, x)
    np.testing.assert_array_equal(k.backward({}, cache, x * 2, {})[0], x * 2)
    y0, _ = Dropout(0.0).forward({}, {}, [x], None, True, np.random.default_rng(42))
    np.testing.assert_array_equal(y0, x)
    with pytest.raises(ValueError):
        Dropout(1.0)


# ---------------------------------------------------------------- losses


def naive_cross_entropy(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> float:
    p = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    picked = np.take_along_axis(p, targets[..., None], axis=-1)[..., 0]
    return float((-np.log(picked) * mask).sum() / mask.sum())


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("ndim", [2, 3])
def test_softmax_cross_entropy_value_and_gradient(masked: bool, ndim: int) -> None:
    rng = np.random.default_rng(ndim + 2 * masked)
    shape = (4, 5) if ndim == 2 else (3, 4, 5)
    logits = rng.standard_normal(shape) * 3
    targets = rng.integers(0, 5, size=shape[:-1])
    mask = None
    if masked:
        mask = make_mask([4, 2, 1], 4) if ndim == 3 else np.array([1.0, 0.0, 1.0, 1.0])
        targets[mask == 0] = -100  # padding targets are never read
    loss, grad = softmax_cross_entropy(logits, targets, mask)
    ref_mask = np.ones(shape[:-1]) if mask is None else mask
    safe_targets = np.where(ref_mask > 0, targets, 0)
    assert math.isclose(loss, naive_cross_entropy(logits, safe_targets, ref_mask), rel_tol=1e-12)
    numeric = numeric_grad(lambda: softmax_cross_entropy(logits, targets, mask)[0], logits)
    assert rel_err(grad, numeric) < TOL
    if masked:
        assert np.all(grad[ref_mask == 0] == 0)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int8, np.uint8])
def test_softmax_cross_entropy_rejects_targets_outside_the_vocabulary(dtype) -> None:
    logits = np.zeros((2, 3, 5))
    ok = np.array([[0, 4, 2], [1, 3, 0]], dtype=dtype)
    assert softmax_cross_entropy(logits, ok)[0] == pytest.approx(np.log(5))
    bad_values = [5, 127] + ([-1] if np.dtype(dtype).kind == "i" else [255])
    for bad in bad_values:
        targets = ok.copy()
        targets[1, 2] = bad
        with pytest.raises(ValueError, match="out of range"):
            softmax_cross_entropy(logits, targets)


def test_softmax_cross_entropy_extreme_logits() -> None:
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, -1000.0]])
    loss, grad = softmax_cross_entropy(logits, np.array([0, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert math.isclose(loss, (0.0 + 2000.0) / 2)
    loss32, grad32 = softmax_cross_entropy(logits.astype(np.float32), np.array([0, 0]))
    assert np.isfinite(loss32) and np.all(np.isfinite(grad32))


@pytest.mark.parametrize("masked", [False, True])
def test_mse_value_and_gradient(masked: bool) -> None:
    rng = np.random.default_rng(12)
    pred, target = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    mask = make_mask([4, 1, 2], 4) if masked else None
    loss, grad = mse(pred, target, mask)
    real = np.ones((3, 4), bool) if mask is None else mask > 0
    assert math.isclose(loss, float(((pred - target)[real] ** 2).mean()), rel_tol=1e-12)
    numeric = numeric_grad(lambda: mse(pred, target, mask)[0], pred)
    assert rel_err(grad, numeric) < TOL


# ---------------------------------------------------------------- dtypes, registry, init


FLOAT_CASES: list[tuple[str, Callable[[], Kernel], Callable[[np.random.Generator], list]]] = [
    ("embedding", lambda: Embedding(6, 3), lambda r: [r.integers(0, 6, (2, 4))]),
    ("one_hot", lambda: OneHot(6), lambda r: [r.integers(0, 6, (2, 4))]),
    *[
        (f"rnn-{a}-{rev}-{last}",
         lambda a=a, rev=rev, last=last: RNN(3, activation=a, reverse=rev, return_last=last),
         lambda r: [r.standard_normal((2, 4, 3))])
        for a, rev, last in itertools.product(RNN_ACTIVATIONS, [False, True], [False, True])
    ],
    ("batchnorm3", BatchNorm, lambda r: [r.standard_normal((2, 4, 3))]),
    ("batchnorm2", BatchNorm, lambda r: [r.standard_normal((5, 3))]),
    ("leaky_relu", LeakyReLU, lambda r: [r.standard_normal((2, 4, 3))]),
    ("relu", ReLU, lambda r: [r.standard_normal((2, 4, 3))]),
    ("tanh", Tanh, lambda r: [r.standard_normal((2, 4, 3))]),
    ("sigmoid", Sigmoid, lambda r: [r.standard_normal((2, 4, 3))]),
    ("dense", lambda: Dense(units=4), lambda r: [r.standard_normal((2, 4, 3))]),
    ("softmax", Softmax, lambda r: [r.standard_normal((2, 4, 3))]),
    ("dropout", lambda: Dropout(0.5), lambda r: [r.standard_normal((2, 4, 3))]),
    ("concat", Concat, lambda r: [r.standard_normal((2, 4, 3)), r.standard_normal((2, 4, 2))]),
    ("add", Add, lambda r: [r.standard_normal((2, 4, 3)), r.standard_normal((2, 4, 3))]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "inputs"), FLOAT_CASES, ids=[c[0] for c in FLOAT_CASES])
@pytest.mark.parametrize("train", [True, False])
def test_float32_stays_float32(name: str, make: Callable, inputs: Callable, train: bool) -> None:
    rng = np.random.default_rng(0)
    xs = [x.astype(np.float32) if x.dtype.kind == "f" else x for x in inputs(rng)]
    k = make()
    shapes = in_shapes_of(xs)
    params = k.init_params(shapes, rng, np.float32)
    state = k.init_state(shapes, np.float32)
    for arr in (*params.values(), *state.values()):
        assert arr.dtype == np.float32
    mask = np.ones((2, 4), dtype=np.float64)  # a float64 mask must not upcast either
    mask[1, 2:] = 0
    y, cache = k.forward(params, state, xs, mask, train, rng)
    assert y.dtype == np.float32, name
    for arr in state.values():
        assert arr.dtype == np.float32
    grads = {n: np.zeros_like(p) for n, p in params.items()}
    dxs = k.backward(params, cache, np.ones_like(y), grads)
    for x, dx in zip(xs, dxs, strict=True):
        if x.dtype.kind == "f":
            assert dx.dtype == np.float32, name
        else:
            assert dx is None


def test_losses_keep_float32() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 4)).astype(np.float32)
    _, grad = softmax_cross_entropy(logits, rng.integers(0, 4, (2, 3)), np.ones((2, 3)))
    assert grad.dtype == np.float32
    _, grad = mse(logits, np.zeros_like(logits), np.ones((2, 3)))
    assert grad.dtype == np.float32


def test_registry_has_a_kernel_for_every_op() -> None:
    assert set(KERNELS) == set(OP_CLASSES)
    assert all(issubclass(cls, Kernel) for cls in KERNELS.values())


def test_rnn_inits() -> None:
    rng = np.random.default_rng(0)
    n, h = 5, 8
    for init in RNN_INITS:
        p = RNN(h, init=init).init_params([(n,)], rng, np.float32)
        assert {k: v.shape for k, v in p.items()} == {"W_xh": (n, h), "W_hh": (h, h), "b": (h,)}
        assert all(v.dtype == np.float32 for v in p.values())
        np.testing.assert_array_equal(p["b"], 0)
        if init == "default":
            assert np.abs(p["W_hh"]).max() <= 1 / math.sqrt(h)
            assert np.abs(p["W_xh"]).max() <= 1 / math.sqrt(h)
        if init == "xavier":
            assert np.abs(p["W_hh"]).max() <= math.sqrt(6 / (2 * h))
            assert np.abs(p["W_xh"]).max() <= math.sqrt(6 / (n + h))
        if init == "orthogonal":
            np.testing.assert_allclose(p["W_hh"] @ p["W_hh"].T, np.eye(h), atol=1e-6)
            assert np.abs(p["W_xh"]).max() <= math.sqrt(6 / (n + h))
        if init == "identity":
            np.testing.assert_array_equal(p["W_hh"], np.eye(h))
            assert np.abs(p["W_xh"]).max() < 0.01
    with pytest.raises(ValueError):
        RNN(h, init="nope")
    with pytest.raises(ValueError):
        ops.Activation(name="gelu")


def test_dense_init_bounds() -> None:
    p = Dense(units=7).init_params([(16,)], np.random.default_rng(0), np.float64)
    assert np.abs(p["W"]).max() <= 0.25 and np.abs(p["b"]).max() <= 0.25
    assert p["W"].shape == (16, 7) and p["b"].shape == (7,)
    assert "b" not in Dense(units=7, bias=False).init_params(
        [(16,)], np.random.default_rng(0), float
    )
