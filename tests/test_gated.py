"""lstm and gru: finite-difference gradients for every option, padding, the watch hook,
and their initialisation (parity with PyTorch is in tests/test_torch_parity.py)."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

import specc

from helpers import grad_check, make_mask
from numpy_kernels import GRU, LSTM

CELLS = {"lstm": LSTM, "gru": GRU}
INITS = ["default", "xavier", "orthogonal"]


def _params(kernel, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Initial weights with every bias random: a zero bias would leave a blind spot."""
    params = kernel.init_params([(n,)], rng, np.float64)
    for name in params:
        if name.startswith("b"):
            params[name] = 0.3 * rng.standard_normal(params[name].shape)
    return params


@pytest.mark.parametrize(
    ("cell", "reverse", "return_last", "masked"),
    list(itertools.product(CELLS, [False, True], [False, True], [False, True])),
)
def test_gradients_match_finite_differences(
    cell: str, reverse: bool, return_last: bool, masked: bool
) -> None:
    seed = zlib.crc32(repr((cell, reverse, return_last, masked)).encode()) % 1000
    rng = np.random.default_rng(seed)
    b, t_len, n, h = 3, 5, 3, 4
    x = rng.standard_normal((b, t_len, n))
    mask = make_mask([5, 3, 1], t_len) if masked else None
    k = CELLS[cell](h, reverse=reverse, return_last=return_last)
    y, dxs, _ = grad_check(k, [x], mask=mask, params=_params(k, n, rng), seed=seed)
    assert y.shape == ((b, h) if return_last else (b, t_len, h))
    if masked:
        assert np.all(dxs[0][mask == 0] == 0)  # padding is never read
        if not return_last:
            assert np.all(y[mask == 0] == 0)


@pytest.mark.parametrize(("cell", "init"), list(itertools.product(CELLS, INITS)))
def test_gradients_every_init_at_batch_one(cell: str, init: str) -> None:
    rng = np.random.default_rng(3)
    k = CELLS[cell](4, init=init)
    x = rng.standard_normal((1, 6, 2))
    grad_check(k, [x], params=_params(k, 2, rng), seed=5)
    grad_check(k, [x], params=_params(k, 2, rng), seed=6, fresh_grads=True)


@pytest.mark.parametrize(
    ("cell", "reverse", "return_last"),
    list(itertools.product(CELLS, [False, True], [False, True])),
)
def test_padding_equals_running_rows_alone(cell: str, reverse: bool, return_last: bool) -> None:
    rng = np.random.default_rng(5)
    b, t_len, n, h = 3, 6, 3, 4
    lengths = [6, 3, 1]
    mask = make_mask(lengths, t_len)
    x = rng.standard_normal((b, t_len, n)) * 3  # padded entries are large junk on purpose
    k = CELLS[cell](h, reverse=reverse, return_last=return_last)
    params = _params(k, n, rng)
    y, cache = k.forward(params, {}, [x], mask, True, rng)
    g_up = rng.standard_normal(y.shape)
    if not return_last:
        g_up *= mask[:, :, None]
    grads = {name: np.zeros_like(p) for name, p in params.items()}
    (dx,) = k.backward(params, cache, g_up, grads)
    summed = {name: np.zeros_like(p) for name, p in params.items()}
    for i, length in enumerate(lengths):
        yi, ci = k.forward(params, {}, [x[i : i + 1, :length]], None, True, rng)
        gi = g_up[i : i + 1] if return_last else g_up[i : i + 1, :length]
        (dxi,) = k.backward(params, ci, gi, summed)
        want = y[i] if return_last else y[i, :length]
        np.testing.assert_allclose(want, yi[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dx[i, :length], dxi[0], rtol=1e-12, atol=1e-14)
    assert np.all(dx[mask == 0] == 0)
    for name in params:
        np.testing.assert_allclose(grads[name], summed[name], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize(("cell", "reverse"), list(itertools.product(CELLS, [False, True])))
def test_watch_sees_the_gradient_at_every_hidden_state(cell: str, reverse: bool) -> None:
    """dL/dh_t as the watch sees it equals finite differences of the loss in h_t: the
    sequence is run in two pieces, the state between them perturbed."""
    rng = np.random.default_rng(8)
    b, t_len, n, h = 2, 5, 3, 3
    x = rng.standard_normal((b, t_len, n))
    k = CELLS[cell](h)  # run forwards; a reversed input gives the reversed layer
    params = _params(k, n, rng)
    xs = x[:, ::-1] if reverse else x
    g_up = rng.standard_normal((b, t_len, h))
    seen: list[np.ndarray] = []
    kr = CELLS[cell](h, reverse=reverse)
    _, cache = kr.forward(params, {}, [x], None, True, rng)
    kr.watch = seen.append
    kr.backward(params, cache, g_up, {p: np.zeros_like(v) for p, v in params.items()})
    dh = seen[0][:, ::-1] if reverse else seen[0]  # in processing order
    g_proc = g_up[:, ::-1] if reverse else g_up

    def loss_after(split: int, delta: np.ndarray) -> float:
        """Run steps 0..split, add delta to h_split, run the rest (the reference cell,
        one step at a time, exposing its state)."""
        h_t = np.zeros((b, h))
        c_t = np.zeros((b, h))
        total = 0.0
        for t in range(t_len):
            h_t, c_t = _step(cell, params, xs[:, t], h_t, c_t)
            if t == split:
                h_t = h_t + delta
            total += float(np.sum(h_t * g_proc[:, t]))
        return total

    eps = 1e-6
    for split in range(t_len):
        numeric = np.zeros((b, h))
        for idx in np.ndindex(b, h):
            d = np.zeros((b, h))
            d[idx] = eps
            numeric[idx] = (loss_after(split, d) - loss_after(split, -d)) / (2 * eps)
        np.testing.assert_allclose(dh[:, split], numeric, rtol=1e-6, atol=1e-8)


def _step(cell: str, params: dict, x_t: np.ndarray, h: np.ndarray, c: np.ndarray):
    """One step of the cell's equations, written out (independent of both kernels)."""
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    hid = h.shape[1]
    if cell == "lstm":
        a = x_t @ params["W_xh"] + h @ params["W_hh"] + params["b"]
        i, f = sig(a[:, :hid]), sig(a[:, hid : 2 * hid])
        g, o = np.tanh(a[:, 2 * hid : 3 * hid]), sig(a[:, 3 * hid :])
        c = f * c + i * g
        return o * np.tanh(c), c
    ax = x_t @ params["W_xh"] + params["b_xh"]
    ah = h @ params["W_hh"] + params["b_hh"]
    r = sig(ax[:, :hid] + ah[:, :hid])
    z = sig(ax[:, hid : 2 * hid] + ah[:, hid : 2 * hid])
    n = np.tanh(ax[:, 2 * hid :] + r * ah[:, 2 * hid :])
    return (1 - z) * n + z * h, c


def test_lstm_forget_bias_is_added_to_the_forget_gate_only() -> None:
    rng = np.random.default_rng(0)
    for forget_bias in (1.0, 0.0, 2.5):
        b = LSTM(5, forget_bias=forget_bias).init_params([(3,)], rng, np.float64)["b"]
        np.testing.assert_array_equal(b[5:10], forget_bias)
        np.testing.assert_array_equal(np.delete(b, np.s_[5:10]), 0)


@pytest.mark.parametrize(("cell", "init"), list(itertools.product(CELLS, INITS)))
def test_inits_draw_each_gate_as_its_own_block(cell: str, init: str) -> None:
    k = CELLS[cell](6, init=init)
    gates = 4 if cell == "lstm" else 3
    p = k.init_params([(5,)], np.random.default_rng(1), np.float64)
    assert p["W_xh"].shape == (5, gates * 6) and p["W_hh"].shape == (6, gates * 6)
    blocks = np.split(p["W_hh"], gates, axis=1)
    if init == "orthogonal":
        for blk in blocks:
            np.testing.assert_allclose(blk.T @ blk, np.eye(6), atol=1e-12)
    bound = {"default": 1 / np.sqrt(6), "xavier": np.sqrt(6 / 12)}.get(init)
    if bound is not None:
        assert np.abs(p["W_hh"]).max() <= bound
    assert not np.allclose(blocks[0], blocks[1])  # every gate draws its own weights
    again = k.init_params([(5,)], np.random.default_rng(1), np.float64)
    np.testing.assert_array_equal(p["W_hh"], again["W_hh"])  # deterministic


def test_identity_init_is_refused_for_gated_cells() -> None:
    from specc.errors import SpecError

    text = "model m {\n    input x : sequence[2]\n    output y = x -> lstm(4, init=identity)\n}\n"
    with pytest.raises(SpecError, match="init"):
        specc.loads(text)


def test_float32_stays_float32() -> None:
    rng = np.random.default_rng(0)
    for make in CELLS.values():
        k = make(4)
        params = k.init_params([(3,)], rng, np.float32)
        x = rng.standard_normal((2, 5, 3)).astype(np.float32)
        y, cache = k.forward(params, {}, [x], None, True, rng)
        grads = {n: np.zeros_like(p) for n, p in params.items()}
        (dx,) = k.backward(params, cache, np.ones_like(y), grads)
        assert y.dtype == dx.dtype == np.float32


GATED_ADDER = """
model adder {{
    input  pairs : sequence[2]
    output sum   = pairs -> {layer} -> dense(units=1)
}}
task adding : regress {{
    model = adder
    data  = adding(length=100, samples=64)
    batch = 16
    steps = 3
}}
"""


def _flow_ratio(layer: str) -> float:
    """‖∂L_T/∂h_0‖ / ‖∂L_T/∂h_T‖ at initialisation, as `specc diagnose` measures it."""
    from specc.diagnose.flow import gradient_flow
    from specc.train.prepare import prepare

    program = specc.loads(GATED_ADDER.format(layer=layer))
    task = program.task()
    prepared = prepare(task, None)
    net = program.build(task.model, prepared.sizes, seed=0, dtype="float64")
    flow = gradient_flow(net, prepared.batch(0, 0), task)
    assert flow.length == 100
    return flow.ratio


def test_diagnose_shows_the_lstm_keeps_the_gradient_the_tanh_rnn_loses() -> None:
    """Over 100 steps at initialisation, the lstm's forget gate (bias 1) keeps orders of
    magnitude more of the last step's gradient at h_0 than a tanh rnn does."""
    tanh = _flow_ratio("rnn(hidden=32, activation=tanh, return=last)")
    lstm = _flow_ratio("lstm(hidden=32, return=last)")
    lstm_forgetful = _flow_ratio("lstm(hidden=32, forget_bias=-3.0, return=last)")
    assert lstm > 1e3 * tanh
    assert lstm > 1e3 * lstm_forgetful  # the forget gate's bias is what carries it
