"""Behaviour the interpreter's speed tricks must never change.

The executor recycles big arrays through a buffer pool, lets an op overwrite
a value nobody else reads, and lets kernels write gradients over ``dy``.
These tests pin down what users rely on regardless: arrays handed out stay
theirs, evaluation between training steps changes nothing, the fast training
path computes exactly what the plain path computes, and float32 stays float32.
"""

from __future__ import annotations

import numpy as np
import pytest

import specc
from specc.backend.numpy import kernels
from specc.backend.numpy.base import POOL_MIN_SIZE, BufferPool
from specc.backend.numpy.losses import softmax_cross_entropy
from specc.ir.spec import Adam
from specc.train.optim import clip_global_norm, make_optimizer

from helpers import (
    RNN_LOOPS,
    SPECS,
    B,
    T,
    batch,
    char_rnn,
    check_rnn_gradients,
    grad_check,
    make_mask,
)
from numpy_kernels import RNN, BatchNorm, Dense, Embedding, LeakyReLU, Softmax

BRANCHY = """
model branchy {
    input  words : tokens
    e    = words -> embedding(dim=8)
    fwd  = e -> rnn(hidden=64, activation=tanh)
    bwd  = e -> rnn(hidden=64, activation=relu, reverse=true)
    same = fwd
    both = (fwd, same) -> add
    output tags = (both, bwd) -> concat -> batchnorm -> leaky_relu(slope=0.1)
        -> dense(units=labels) -> softmax
}
"""


def train_steps(net, opt, batches) -> list[float]:
    losses = []
    for ids, targets in batches:
        losses.append(net.backward_flat({"chars": ids}, targets))
        clip_global_norm(net.flat_grads, 5.0)
        opt.step(net.flat_params, net.flat_grads)
    return losses


# ----------------------------------------------------------------- arrays stay the caller's


def test_consecutive_forward_calls_return_independent_arrays():
    net = char_rnn()
    (a, _), (b, _) = batch(1), batch(2)
    first = net.forward({"chars": a})["next"]
    kept = first.copy()
    second = net.forward({"chars": b})["next"]
    assert first is not second and not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(net.forward({"chars": a})["next"], kept)


def test_training_never_overwrites_returned_outputs_or_gradients():
    net = char_rnn()
    opt = make_optimizer(Adam(lr=1e-3), net.flat_params.size, net.dtype)
    ids, targets = batch(3)
    probs = net.forward({"chars": ids}, train=False)["next"]
    loss, grads = net.loss_and_grads({"chars": ids}, targets)
    kept_probs, kept_grads = probs.copy(), {k: v.copy() for k, v in grads.items()}
    train_steps(net, opt, [batch(s) for s in range(4, 8)])
    net.forward({"chars": ids}, train=True)
    np.testing.assert_array_equal(probs, kept_probs)
    for k in grads:
        np.testing.assert_array_equal(grads[k], kept_grads[k])
    assert np.isfinite(loss)


def test_caller_inputs_are_never_modified():
    net = specc.loads(BRANCHY).build("branchy", sizes={"vocab": 11, "labels": 5})
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 11, (B, T))
    targets = rng.integers(0, 5, (B, T))
    mask = np.ones((B, T))
    mask[3, 25:] = 0
    before = (ids.copy(), targets.copy(), mask.copy())
    net.forward({"words": ids}, train=True, mask=mask)
    net.loss_and_grads({"words": ids}, targets, mask=mask)
    upstream = {"tags": rng.standard_normal((B, T, 5)).astype(np.float32)}
    kept = upstream["tags"].copy()
    net.vjp({"words": ids}, upstream, mask=mask)
    for a, b in zip((ids, targets, mask), before, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(upstream["tags"], kept)


def test_eval_forward_between_training_steps_changes_nothing():
    batches = [batch(s) for s in range(10, 14)]
    probe, _ = batch(99)

    net_a = char_rnn()
    opt_a = make_optimizer(Adam(lr=3e-3), net_a.flat_params.size, net_a.dtype)
    losses_a = train_steps(net_a, opt_a, batches)

    net_b = char_rnn()
    opt_b = make_optimizer(Adam(lr=3e-3), net_b.flat_params.size, net_b.dtype)
    losses_b = []
    outs = []
    for one in batches:
        losses_b += train_steps(net_b, opt_b, [one])
        outs.append(net_b.forward({"chars": probe}, train=False)["next"])
        net_b.forward({"chars": probe[:3, :7]}, train=False)  # other shapes too

    assert losses_a == losses_b
    np.testing.assert_array_equal(net_a.flat_params, net_b.flat_params)
    for k in net_a.state:
        np.testing.assert_array_equal(net_a.state[k], net_b.state[k])
    for o in outs:
        assert np.all(np.isfinite(o))
    assert not np.array_equal(outs[0], outs[-1])  # the net did train in between


def test_repeated_steps_on_one_batch_are_deterministic():
    """The pool hands back arrays with stale contents: nothing may depend on them."""
    ids, targets = batch(5)
    runs = []
    for _ in range(2):
        net = char_rnn()
        opt = make_optimizer(Adam(lr=3e-3), net.flat_params.size, net.dtype)
        losses = train_steps(net, opt, [(ids, targets)] * 3 + [batch(6)] + [(ids, targets)])
        runs.append((losses, net.flat_params.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


# ----------------------------------------------------------------- fast path == plain path


def plain_gradients(net, inputs, targets, mask):
    """Loss gradients the slow way: every value kept, nothing overwritten or recycled."""
    from specc.backend.numpy.kernels import mse
    from specc.backend.numpy.kernels import softmax_cross_entropy as xent

    out = net.model.node(net.model.outputs[0])
    if out.op == "softmax":
        values, caches = net._run(inputs, True, mask, stop_before=out.name)
        start = out.inputs[0]
        _, dstart = xent(values[start], targets, mask)
    else:
        values, caches = net._run(inputs, True, mask)
        start = out.name
        pred = values[start]
        _, dstart = mse(pred, targets.reshape(pred.shape), mask if pred.ndim == 3 else None)
    net.flat_grads.fill(0)
    net._backward(caches, {start: dstart})
    return net.flat_grads.copy()


REVERSED = """
model rev {
    input  xs : sequence[3]
    h    = xs -> rnn(hidden=48, activation=sigmoid, reverse=true)
    output y = h -> batchnorm -> tanh -> rnn(hidden=40, activation=relu, return=last)
        -> dense(units=2)
}
"""


def _case(name: str, masked: bool):
    rng = np.random.default_rng(7)
    mask = None
    if masked:
        mask = np.ones((B, T))
        mask[1, 30:] = 0
        mask[4, 2:] = 0
    if name == "branchy":
        program, sizes = specc.loads(BRANCHY), {"vocab": 11, "labels": 5}
        inputs = {"words": rng.integers(0, 11, (B, T))}
        targets = rng.integers(0, 5, (B, T))
    elif name == "char_rnn":
        program, sizes = specc.load(SPECS / "char_rnn.spec"), {"vocab": 13}
        inputs = {"chars": rng.integers(0, 13, (B, T))}
        targets = rng.integers(0, 13, (B, T))
    else:
        program, sizes = specc.loads(REVERSED), {}
        inputs = {"xs": rng.standard_normal((B, T, 3))}
        targets = rng.standard_normal((B, 2))
    nets = [program.build(name, sizes=sizes, dtype="float64") for _ in range(2)]
    return nets, inputs, targets, mask


@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("name", ["branchy", "char_rnn", "rev"])
def test_fast_training_path_equals_plain_path(name, masked):
    (fast, slow), inputs, targets, mask = _case(name, masked)
    for _ in range(3):  # later steps run on recycled buffers
        fast.backward_flat(inputs, targets, mask)
        want = plain_gradients(slow, inputs, targets, mask)
        np.testing.assert_allclose(fast.flat_grads, want, rtol=1e-12, atol=1e-14)
        for net in (fast, slow):
            net.flat_params -= 0.01 * net.flat_grads
    for k in fast.state:
        np.testing.assert_allclose(fast.state[k], slow.state[k], rtol=1e-12)


def test_forward_fast_path_equals_run():
    net = specc.loads(BRANCHY).build("branchy", sizes={"vocab": 11, "labels": 5})
    ids = np.random.default_rng(8).integers(0, 11, (B, T))
    for train in (False, True):
        saved = {k: v.copy() for k, v in net.state.items()}
        values, _ = net._run({"words": ids}, train, None)
        for k, v in saved.items():
            net.state[k][...] = v
        np.testing.assert_array_equal(net.forward({"words": ids}, train=train)["tags"],
                                      values["tags"])  # fmt: skip


@pytest.mark.parametrize("masked", [False, True])
def test_inference_does_the_dense_layer_inside_batchnorm(monkeypatch, masked):
    """Without caches, batchnorm -> leaky_relu -> dense runs as one pass over row
    blocks: the plain run's numbers, for the outputs and the scores, up to the
    rounding of a matrix product taken a few rows at a time."""
    from specc.backend.numpy import base

    monkeypatch.setattr(base, "BLOCK_SIZE", 128 * 7)  # 640 rows of 128 in 7-row blocks
    blocks = []
    project_rows = kernels.Dense.project_rows

    def spy(self, params, x2, out):
        blocks.append(x2.shape[0])
        project_rows(self, params, x2, out)

    monkeypatch.setattr(kernels.Dense, "project_rows", spy)
    net = specc.loads(BRANCHY).build("branchy", sizes={"vocab": 11, "labels": 5})
    ids = np.random.default_rng(10).integers(0, 11, (B, T))
    mask = None
    if masked:
        mask = np.ones((B, T))
        mask[2, 30:] = 0
    for train in (False, True):
        saved = {k: v.copy() for k, v in net.state.items()}
        values, _ = net._run({"words": ids}, train, mask)
        blocks.clear()
        for k, v in saved.items():
            net.state[k][...] = v
        fast = net.forward({"words": ids}, train=train, mask=mask)["tags"]
        assert len(blocks) == -(-B * T // 7) and max(blocks) == 7  # projected block by block
        np.testing.assert_allclose(fast, values["tags"], rtol=1e-6, atol=1e-7)
    logits = net.scores({"words": ids}, mask=mask)
    dense = net.model.node("tags").inputs[0]  # what the softmax reads
    plain = net._run({"words": ids}, False, mask)[0][dense]
    np.testing.assert_allclose(logits, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_training_makes_the_dense_input_gradient_inside_batchnorm(monkeypatch, masked):
    """In a training step, the gradient at the dense layer's input is made block by
    block inside the batchnorm's backward (never as a whole array), with the plain
    path's numbers: the gradients checked against finite differences."""
    from specc.backend.numpy import base

    monkeypatch.setattr(base, "BLOCK_SIZE", 128 * 9)  # 640 rows of 128 in 9-row blocks
    blocks = []
    input_grad_rows = kernels.Dense.input_grad_rows

    def spy(self, params, dy2, out, w_t=None):
        blocks.append((dy2.shape[0], w_t is not None))
        input_grad_rows(self, params, dy2, out, w_t)

    monkeypatch.setattr(kernels.Dense, "input_grad_rows", spy)
    (fast, slow), inputs, targets, mask = _case("char_rnn", masked)
    fast.backward_flat(inputs, targets, mask)
    assert len(blocks) == -(-B * T // 9) and max(blocks) == (9, True)
    blocks.clear()
    want = plain_gradients(slow, inputs, targets, mask)
    assert blocks == [(B * T, False)]  # the plain path: one product over all rows
    np.testing.assert_allclose(fast.flat_grads, want, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------- float32 end to end


def test_float32_end_to_end():
    net = specc.loads(BRANCHY).build("branchy", sizes={"vocab": 11, "labels": 5})
    rng = np.random.default_rng(9)
    ids, targets = rng.integers(0, 11, (B, T)), rng.integers(0, 5, (B, T))
    mask = np.ones((B, T))  # a float64 mask must not upcast anything
    mask[0, 10:] = 0
    values, _ = net._run({"words": ids}, True, mask)
    for name, v in values.items():
        if name != "words":
            assert v.dtype == np.float32, name
    assert net.forward({"words": ids}, mask=mask)["tags"].dtype == np.float32
    loss, grads = net.loss_and_grads({"words": ids}, targets, mask=mask)
    assert np.isfinite(loss)
    assert net.flat_grads.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    opt = make_optimizer(Adam(lr=1e-3), net.flat_params.size, net.dtype)
    opt.step(net.flat_params, net.flat_grads)
    assert net.flat_params.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state.values())


# ----------------------------------------------------------------- kernels called directly


def kernel_cases():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 5))
    return [
        ("rnn", RNN(3), [x]),
        ("rnn-leaky-neg", RNN(3, activation="leaky_relu", slope=-0.3), [x]),
        ("batchnorm", BatchNorm(), [x]),
        ("leaky", LeakyReLU(0.2), [x]),
        ("dense", Dense(units=4), [x]),
        ("softmax", Softmax(), [x]),
        ("embedding", Embedding(9, 3), [rng.integers(0, 9, (4, 6))]),
    ]


@pytest.mark.parametrize(
    ("name", "kernel", "xs"), kernel_cases(), ids=[c[0] for c in kernel_cases()]
)
def test_direct_kernel_calls_modify_nothing_and_repeat(name, kernel, xs):
    """Without `inplace`, forward leaves inputs alone and backward may run twice on one cache."""
    rng = np.random.default_rng(1)
    shapes = [x.shape[-1:] if x.dtype.kind == "f" else () for x in xs]
    params = kernel.init_params(shapes, rng, np.float64)
    state = kernel.init_state(shapes, np.float64)
    kept = [x.copy() for x in xs]
    y, cache = kernel.forward(params, state, xs, None, True, rng)
    for x, k in zip(xs, kept, strict=True):
        np.testing.assert_array_equal(x, k)
    dy = rng.standard_normal(y.shape)
    dy_kept = dy.copy()
    results = []
    for _ in range(2):
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        dxs = kernel.backward(params, cache, dy, grads)
        results.append((dxs, grads))
    np.testing.assert_array_equal(dy, dy_kept)
    for a, b in zip(results[0][0], results[1][0], strict=True):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    for k in params:
        np.testing.assert_array_equal(results[0][1][k], results[1][1][k])


@pytest.mark.parametrize("slope", [-0.3, 0.0, 0.2, 1.0, 2.5])
def test_leaky_relu_derivative_for_every_slope(slope):
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    k = LeakyReLU(slope)
    y, cache = k.forward({}, {}, [x], None, True, None)
    np.testing.assert_array_equal(y, np.where(x > 0, x, slope * x))
    (dx,) = k.backward({}, cache, np.ones_like(y), {})
    np.testing.assert_array_equal(dx, np.where(x > 0, 1.0, slope))


@pytest.mark.parametrize("slope", [-0.3, 0.0, 2.5])
def test_rnn_leaky_gradients_for_unusual_slopes(slope):

    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 2))
    k = RNN(4, activation="leaky_relu", slope=slope)
    params = k.init_params([(2,)], rng, np.float64)
    params["b"] = 0.1 * rng.standard_normal(4)
    grad_check(k, [x], params=params, seed=4)


#: (activation, slope, reverse, masked): every way the rnn's time loop can go.
@RNN_LOOPS
def test_rnn_backward_in_blocks_of_steps_is_exact(monkeypatch, activation, slope, reverse, masked):
    """BPTT takes act' for a block of steps at a time (here 2 steps, the first block
    partial): gradients still match finite differences, masks and reversal included."""
    from specc.backend.numpy import rnn

    monkeypatch.setattr(rnn, "BLOCK_SIZE", 2 * 3 * 4)
    check_rnn_gradients(activation, slope, reverse, masked)


@pytest.mark.parametrize(("train", "masked"), [(True, False), (True, True), (False, True)])
def test_batchnorm_in_many_blocks_is_exact(monkeypatch, train, masked):
    """Batchnorm goes through its rows in blocks and combines each with tiles of its
    per-feature vectors; with blocks of 3 rows (the last one partial) its gradients
    still match finite differences."""
    from specc.backend.numpy import base

    monkeypatch.setattr(base, "BLOCK_SIZE", 3 * 4)
    rng = np.random.default_rng(15)
    x = rng.standard_normal((3, 5, 4)) * 2 + 1
    mask = make_mask([5, 3, 2], 5) if masked else None
    params = {"gamma": rng.standard_normal(4), "beta": rng.standard_normal(4)}
    grad_check(BatchNorm(), [x], mask=mask, train=train, params=params)


@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_fused_batchnorm_in_many_blocks_equals_plain_path(monkeypatch, masked):
    """The same with batchnorm -> leaky_relu fused, in a whole char_rnn training step."""
    from specc.backend.numpy import base

    monkeypatch.setattr(base, "BLOCK_SIZE", 5 * 64)
    test_fast_training_path_equals_plain_path("char_rnn", masked)


@pytest.mark.parametrize("inplace", [False, True])
def test_softmax_of_time_major_logits_is_c_ordered_and_exact(inplace):
    """Softmax reads time-major logits (as a dense layer after an rnn returns them)
    in place and writes C-ordered probabilities, also when given the input to
    overwrite, so a model's output needs no copy."""
    rng = np.random.default_rng(16)
    logits = rng.standard_normal((70, 5, 9)).transpose(1, 0, 2) * 3  # (B, T, V), time-major
    want = np.exp(logits - logits.max(axis=-1, keepdims=True))
    want /= want.sum(axis=-1, keepdims=True)
    y, _ = Softmax().forward({}, {}, [logits.copy(order="K")], None, False, rng, inplace=inplace)
    assert y.flags.c_contiguous
    np.testing.assert_allclose(y, want, rtol=1e-12)


def test_embedding_large_vocabulary_path_matches_add_at():
    rng = np.random.default_rng(2)
    vocab = 5000
    ids = rng.integers(0, 300, size=(30, 20))  # repeats guaranteed
    dy = rng.standard_normal((30, 20, 4))
    assert_embedding_sums_like_add_at(Embedding(vocab=vocab, dim=4), ids, dy)


def test_embedding_small_vocabulary_chunks_match_add_at(monkeypatch):
    """The indicator-matrix path sums a chunk of tokens at a time: chunk edges (here
    every 7 tokens, the last chunk partial) and a time-major gradient change nothing."""
    from specc.backend.numpy import embedding

    monkeypatch.setattr(embedding, "_ONE_HOT_CHUNK", 7 * 65)
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 65, size=(9, 11))
    ids[:, :4] = 3  # repeats inside and across chunks
    dy = rng.standard_normal((11, 9, 5)).transpose(1, 0, 2)  # time-major, as the rnn's
    assert_embedding_sums_like_add_at(Embedding(vocab=65, dim=5), ids, dy)


def assert_embedding_sums_like_add_at(k: Embedding, ids: np.ndarray, dy: np.ndarray) -> None:
    """Embedding backward adds each token's gradient row to its id's row, as np.add.at."""
    rng = np.random.default_rng(0)
    params = k.init_params([()], rng, np.float64)
    _, cache = k.forward(params, {}, [ids], None, True, rng)
    vocab = params["E"].shape[0]
    grads = {"E": np.ones((vocab, k.dim))}
    k.backward(params, cache, dy, grads)
    ref = np.ones((vocab, k.dim))
    np.add.at(ref, ids.ravel(), dy.reshape(-1, k.dim))
    np.testing.assert_allclose(grads["E"], ref, rtol=1e-12)
    # Into gradients promised to be zero, the first chunk's product is written.
    fresh = {"E": np.zeros((vocab, k.dim))}
    k.backward(params, cache, dy, fresh, fresh_grads=True)
    np.testing.assert_allclose(fresh["E"], ref - 1, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("spread", "offset"), [(3.0, 0.0), (30.0, 120.0), (30.0, -60.0), (500.0, 0.0), (5000.0, 0.0)]
)
def test_softmax_and_cross_entropy_agree_with_row_max_reference(spread, offset):
    """Every way of shifting before exp (none, the global max, each row's max) is exact."""
    rng = np.random.default_rng(4)
    targets = rng.integers(0, 9, (80, 7))  # 5040 logits: above the small-array path
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        logits = rng.uniform(-spread / 2, spread / 2, (80, 7, 9)).astype(dtype) + dtype(offset)
        z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)  # exact reference
        ref = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        y, _ = Softmax().forward({}, {}, [logits], None, False, None)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * 1e-3)
        loss, grad = softmax_cross_entropy(logits, targets)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        want = -np.take_along_axis(logp, targets[..., None], -1).mean()
        assert loss == pytest.approx(want, rel=tol)
        onehot = np.eye(9)[targets]
        np.testing.assert_allclose(grad, (ref - onehot) / targets.size, rtol=tol, atol=tol * 1e-3)


# ----------------------------------------------------------------- the pool itself


def test_buffer_pool_hands_out_each_array_once_and_never_parts():
    pool = BufferPool()
    n = POOL_MIN_SIZE
    a = np.empty(2 * n, np.float32)
    pool.give(a)
    pool.give(a.reshape(2, n))  # the same buffer again: ignored
    pool.give(a[:n])  # a part of a buffer: never pooled
    big = np.empty(4 * n, np.float32)
    pool.give(big[: 2 * n])  # a part of a larger buffer, same size as `a`: never pooled
    got = pool.empty((2, n), np.float32)
    assert np.shares_memory(got, a)
    fresh = pool.empty((2, n), np.float32)
    assert not np.shares_memory(fresh, a) and not np.shares_memory(fresh, big)
    assert pool.empty((n,), np.float64).dtype == np.float64
