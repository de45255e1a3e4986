"""Parity with PyTorch in float64: the kernels must agree to ~1e-10.

Gradient checks prove each kernel is self-consistent; these prove the
conventions (weight layout, biased vs unbiased variance, momentum direction,
mean reduction of the loss, leaky slope, padding semantics) are the standard ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from specc.backend.numpy.kernels import softmax_cross_entropy

from numpy_kernels import GRU, LSTM, RNN, BatchNorm, Dense, Embedding, LeakyReLU

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {"rtol": 1e-10, "atol": 1e-10}


def t64(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


def close(ours: np.ndarray, theirs: torch.Tensor) -> None:
    np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL)


def zero_grads(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.zeros_like(v) for k, v in params.items()}


def set_rnn_weights(t_rnn: torch.nn.RNN, params: dict[str, np.ndarray], suffix: str = "") -> None:
    """Torch keeps weights as (out, in) and two biases; ours are (in, out) and one bias."""
    with torch.no_grad():
        getattr(t_rnn, f"weight_ih_l0{suffix}").copy_(t64(params["W_xh"].T))
        getattr(t_rnn, f"weight_hh_l0{suffix}").copy_(t64(params["W_hh"].T))
        getattr(t_rnn, f"bias_ih_l0{suffix}").copy_(t64(params["b"]))
        getattr(t_rnn, f"bias_hh_l0{suffix}").zero_()


def check_rnn_grads(grads: dict[str, np.ndarray], t_rnn: torch.nn.RNN, suffix: str = "") -> None:
    close(grads["W_xh"], getattr(t_rnn, f"weight_ih_l0{suffix}").grad.T)
    close(grads["W_hh"], getattr(t_rnn, f"weight_hh_l0{suffix}").grad.T)
    # d/db of b_ih + b_hh is the same for both torch biases, and equals ours.
    close(grads["b"], getattr(t_rnn, f"bias_ih_l0{suffix}").grad)
    close(grads["b"], getattr(t_rnn, f"bias_hh_l0{suffix}").grad)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_chain_matches_torch(nonlinearity: str, reverse: bool) -> None:
    b_sz, t_len, vocab, emb_dim, hid, classes, slope = 4, 6, 11, 5, 7, 3, 0.1
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, size=(b_sz, t_len))
    targets = rng.integers(0, classes, size=(b_sz, t_len))

    emb = Embedding(vocab, emb_dim)
    rnn = RNN(hid, activation=nonlinearity, reverse=reverse)
    bn = BatchNorm(momentum=0.1)
    leaky = LeakyReLU(slope)
    dense = Dense(units=classes)
    p_emb = emb.init_params([()], rng, np.float64)
    p_rnn = rnn.init_params([(emb_dim,)], rng, np.float64)
    p_rnn["b"] = 0.1 * rng.standard_normal(hid)
    p_bn = {"gamma": 1 + 0.2 * rng.standard_normal(hid), "beta": 0.2 * rng.standard_normal(hid)}
    s_bn = bn.init_state([(hid,)], np.float64)
    p_dense = dense.init_params([(hid,)], rng, np.float64)

    # --- ours
    e, c_emb = emb.forward(p_emb, {}, [ids], None, True, rng)
    h, c_rnn = rnn.forward(p_rnn, {}, [e], None, True, rng)
    z, c_bn = bn.forward(p_bn, s_bn, [h], None, True, rng)
    a, c_leaky = leaky.forward({}, {}, [z], None, True, rng)
    logits, c_dense = dense.forward(p_dense, {}, [a], None, True, rng)
    loss, dlogits = softmax_cross_entropy(logits, targets)

    g_emb, g_rnn, g_bn, g_dense = map(zero_grads, (p_emb, p_rnn, p_bn, p_dense))
    (da,) = dense.backward(p_dense, c_dense, dlogits, g_dense)
    (dz,) = leaky.backward({}, c_leaky, da, {})
    (dh,) = bn.backward(p_bn, c_bn, dz, g_bn)
    (de,) = rnn.backward(p_rnn, c_rnn, dh, g_rnn)
    assert emb.backward(p_emb, c_emb, de, g_emb) == [None]

    # --- torch, same weights
    t_emb = torch.nn.Embedding(vocab, emb_dim, dtype=torch.float64)
    t_rnn = torch.nn.RNN(
        emb_dim, hid, batch_first=True, nonlinearity=nonlinearity, dtype=torch.float64
    )
    t_bn = torch.nn.BatchNorm1d(hid, momentum=0.1, dtype=torch.float64)
    t_lin = torch.nn.Linear(hid, classes, dtype=torch.float64)
    with torch.no_grad():
        t_emb.weight.copy_(t64(p_emb["E"]))
        t_bn.weight.copy_(t64(p_bn["gamma"]))
        t_bn.bias.copy_(t64(p_bn["beta"]))
        t_lin.weight.copy_(t64(p_dense["W"].T))
        t_lin.bias.copy_(t64(p_dense["b"]))
    set_rnn_weights(t_rnn, p_rnn)
    t_bn.train()

    te = t_emb(torch.tensor(ids))
    th, _ = t_rnn(te.flip(1) if reverse else te)
    if reverse:
        th = th.flip(1)
    tz = t_bn(th.transpose(1, 2)).transpose(1, 2)  # BatchNorm1d wants (B, N, T)
    ta = F.leaky_relu(tz, negative_slope=slope)
    tlogits = t_lin(ta)
    tloss = F.cross_entropy(tlogits.reshape(-1, classes), torch.tensor(targets).reshape(-1))
    tloss.backward()

    for ours, theirs in ((e, te), (h, th), (z, tz), (a, ta), (logits, tlogits)):
        close(ours, theirs)
    assert abs(loss - tloss.item()) < 1e-10

    close(g_emb["E"], t_emb.weight.grad)
    check_rnn_grads(g_rnn, t_rnn)
    close(g_bn["gamma"], t_bn.weight.grad)
    close(g_bn["beta"], t_bn.bias.grad)
    close(g_dense["W"], t_lin.weight.grad.T)
    close(g_dense["b"], t_lin.bias.grad)
    close(s_bn["running_mean"], t_bn.running_mean)
    close(s_bn["running_var"], t_bn.running_var)

    # Eval mode then uses those running statistics, as torch does.
    t_bn.eval()
    z_eval, _ = bn.forward(p_bn, s_bn, [h], None, False, rng)
    close(z_eval, t_bn(th.transpose(1, 2)).transpose(1, 2))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_masked_rnn_matches_packed_bidirectional_torch(nonlinearity: str) -> None:
    """Our masked forward/reverse rnns equal the two halves of a packed bidirectional torch RNN.

    Packing is torch's own way of running each row at its true length, so this
    checks padding semantics (including the reverse start state and the final
    state under ``return_last``) against an independent implementation.
    """
    b_sz, t_len, n_in, hid = 4, 7, 3, 5
    lengths = [7, 4, 1, 5]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((b_sz, t_len, n_in))
    mask = (np.arange(t_len)[None, :] < np.array(lengths)[:, None]).astype(np.float64)

    fwd = RNN(hid, activation=nonlinearity)
    bwd = RNN(hid, activation=nonlinearity, reverse=True)
    fwd_last = RNN(hid, activation=nonlinearity, return_last=True)
    bwd_last = RNN(hid, activation=nonlinearity, reverse=True, return_last=True)
    p_f = fwd.init_params([(n_in,)], rng, np.float64)
    p_b = bwd.init_params([(n_in,)], rng, np.float64)
    p_f["b"] = 0.1 * rng.standard_normal(hid)
    p_b["b"] = 0.1 * rng.standard_normal(hid)

    g_out = rng.standard_normal((b_sz, t_len, 2 * hid)) * mask[:, :, None]
    g_last = rng.standard_normal((2, b_sz, hid))

    grads_f, grads_b = zero_grads(p_f), zero_grads(p_b)
    dx = np.zeros_like(x)
    outs = []
    for kernel, params, grads, g in (
        (fwd, p_f, grads_f, g_out[:, :, :hid]),
        (bwd, p_b, grads_b, g_out[:, :, hid:]),
        (fwd_last, p_f, grads_f, g_last[0]),
        (bwd_last, p_b, grads_b, g_last[1]),
    ):
        y, cache = kernel.forward(params, {}, [x], mask, True, rng)
        outs.append(y)
        dx += kernel.backward(params, cache, g, grads)[0]

    t_rnn = torch.nn.RNN(
        n_in, hid, batch_first=True, nonlinearity=nonlinearity, bidirectional=True,
        dtype=torch.float64,
    )  # fmt: skip
    set_rnn_weights(t_rnn, p_f)
    set_rnn_weights(t_rnn, p_b, "_reverse")
    tx = t64(x).requires_grad_(True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        tx, torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    t_packed_out, t_hn = t_rnn(packed)
    t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(
        t_packed_out, batch_first=True, total_length=t_len
    )
    ((t_out * t64(g_out)).sum() + (t_hn * t64(g_last)).sum()).backward()

    close(outs[0], t_out[:, :, :hid])  # padded positions are zero in both
    close(outs[1], t_out[:, :, hid:])
    close(outs[2], t_hn[0])
    close(outs[3], t_hn[1])
    close(dx, tx.grad)
    check_rnn_grads(grads_f, t_rnn)
    check_rnn_grads(grads_b, t_rnn, "_reverse")


def test_gelu_matches_torch_tanh_gelu() -> None:
    """Both backends' gelu against torch's GELU(approximate="tanh"): values and gradients."""
    from specc.backend.reference.elementwise import Gelu as ReferenceGelu
    from specc.ir import ops

    from numpy_kernels import SPAN, Gelu

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 4)) * 3
    dy = rng.standard_normal(x.shape)
    tx = t64(x).requires_grad_(True)
    ty = F.gelu(tx, approximate="tanh")
    ty.backward(t64(dy))
    node = ops.Gelu(name="g", inputs=["x"], span=SPAN)
    for kernel in (Gelu(), ReferenceGelu(node)):
        y, cache = kernel.forward({}, {}, [x], None, True, rng)
        close(y, ty.detach())
        (dx,) = kernel.backward({}, cache, dy, {})
        close(dx, tx.grad)


# ---------------------------------------------------------------- lstm and gru


def set_gated_weights(t_mod, cell: str, params: dict[str, np.ndarray], suffix: str = "") -> None:
    """Torch keeps (gates·H, in) weights and two biases. Our lstm has one bias, which
    is torch's b_ih + b_hh (here b_ih = ours, b_hh = 0); our gru keeps both, as torch."""
    with torch.no_grad():
        getattr(t_mod, f"weight_ih_l0{suffix}").copy_(t64(params["W_xh"].T))
        getattr(t_mod, f"weight_hh_l0{suffix}").copy_(t64(params["W_hh"].T))
        b_ih, b_hh = (params["b"], 0 * params["b"]) if cell == "lstm" else (
            params["b_xh"], params["b_hh"])  # fmt: skip
        getattr(t_mod, f"bias_ih_l0{suffix}").copy_(t64(b_ih))
        getattr(t_mod, f"bias_hh_l0{suffix}").copy_(t64(b_hh))


def check_gated_grads(grads, t_mod, cell: str, suffix: str = "") -> None:
    close(grads["W_xh"], getattr(t_mod, f"weight_ih_l0{suffix}").grad.T)
    close(grads["W_hh"], getattr(t_mod, f"weight_hh_l0{suffix}").grad.T)
    if cell == "lstm":  # b_ih + b_hh: each torch bias has our bias's gradient
        close(grads["b"], getattr(t_mod, f"bias_ih_l0{suffix}").grad)
        close(grads["b"], getattr(t_mod, f"bias_hh_l0{suffix}").grad)
    else:
        close(grads["b_xh"], getattr(t_mod, f"bias_ih_l0{suffix}").grad)
        close(grads["b_hh"], getattr(t_mod, f"bias_hh_l0{suffix}").grad)


GATED = {"lstm": (LSTM, "LSTM"), "gru": (GRU, "GRU")}


def _random_biases(params: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    for name in params:
        if name.startswith("b"):
            params[name] = 0.3 * rng.standard_normal(params[name].shape)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_chain_matches_torch(cell: str, reverse: bool) -> None:
    """embedding -> lstm|gru -> dense -> cross-entropy: every value, the loss and every
    gradient equal torch's, forwards and reversed."""
    b_sz, t_len, vocab, emb_dim, hid, classes = 4, 6, 11, 5, 7, 3
    rng = np.random.default_rng(2)
    ids = rng.integers(0, vocab, size=(b_sz, t_len))
    targets = rng.integers(0, classes, size=(b_sz, t_len))
    make, torch_name = GATED[cell]
    emb, layer, dense = Embedding(vocab, emb_dim), make(hid, reverse=reverse), Dense(classes)
    p_emb = emb.init_params([()], rng, np.float64)
    p_cell = layer.init_params([(emb_dim,)], rng, np.float64)
    _random_biases(p_cell, rng)
    p_dense = dense.init_params([(hid,)], rng, np.float64)

    e, c_emb = emb.forward(p_emb, {}, [ids], None, True, rng)
    h, c_cell = layer.forward(p_cell, {}, [e], None, True, rng)
    logits, c_dense = dense.forward(p_dense, {}, [h], None, True, rng)
    loss, dlogits = softmax_cross_entropy(logits, targets)
    g_emb, g_cell, g_dense = map(zero_grads, (p_emb, p_cell, p_dense))
    (dh,) = dense.backward(p_dense, c_dense, dlogits, g_dense)
    (de,) = layer.backward(p_cell, c_cell, dh, g_cell)
    emb.backward(p_emb, c_emb, de, g_emb)

    t_emb = torch.nn.Embedding(vocab, emb_dim, dtype=torch.float64)
    t_cell = getattr(torch.nn, torch_name)(emb_dim, hid, batch_first=True, dtype=torch.float64)
    t_lin = torch.nn.Linear(hid, classes, dtype=torch.float64)
    with torch.no_grad():
        t_emb.weight.copy_(t64(p_emb["E"]))
        t_lin.weight.copy_(t64(p_dense["W"].T))
        t_lin.bias.copy_(t64(p_dense["b"]))
    set_gated_weights(t_cell, cell, p_cell)
    te = t_emb(torch.tensor(ids))
    th, _ = t_cell(te.flip(1) if reverse else te)
    if reverse:
        th = th.flip(1)
    tlogits = t_lin(th)
    tloss = F.cross_entropy(tlogits.reshape(-1, classes), torch.tensor(targets).reshape(-1))
    tloss.backward()

    close(h, th)
    close(logits, tlogits)
    assert abs(loss - tloss.item()) < 1e-10
    close(g_emb["E"], t_emb.weight.grad)
    check_gated_grads(g_cell, t_cell, cell)
    close(g_dense["W"], t_lin.weight.grad.T)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_masked_gated_matches_packed_bidirectional_torch(cell: str) -> None:
    """Masked forward and reversed layers, with every state and with return=last, equal
    the two halves of a packed bidirectional torch layer and its final states h_n."""
    b_sz, t_len, n_in, hid = 4, 7, 3, 5
    lengths = [7, 4, 1, 5]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((b_sz, t_len, n_in))
    mask = (np.arange(t_len)[None, :] < np.array(lengths)[:, None]).astype(np.float64)
    make, torch_name = GATED[cell]
    fwd, bwd = make(hid), make(hid, reverse=True)
    fwd_last, bwd_last = make(hid, return_last=True), make(hid, reverse=True, return_last=True)
    p_f = fwd.init_params([(n_in,)], rng, np.float64)
    p_b = bwd.init_params([(n_in,)], rng, np.float64)
    _random_biases(p_f, rng)
    _random_biases(p_b, rng)
    g_out = rng.standard_normal((b_sz, t_len, 2 * hid)) * mask[:, :, None]
    g_last = rng.standard_normal((2, b_sz, hid))

    grads_f, grads_b = zero_grads(p_f), zero_grads(p_b)
    dx = np.zeros_like(x)
    outs = []
    for kernel, params, grads, g in (
        (fwd, p_f, grads_f, g_out[:, :, :hid]),
        (bwd, p_b, grads_b, g_out[:, :, hid:]),
        (fwd_last, p_f, grads_f, g_last[0]),
        (bwd_last, p_b, grads_b, g_last[1]),
    ):
        y, cache = kernel.forward(params, {}, [x], mask, True, rng)
        outs.append(y)
        dx += kernel.backward(params, cache, g, grads)[0]

    t_mod = getattr(torch.nn, torch_name)(
        n_in, hid, batch_first=True, bidirectional=True, dtype=torch.float64
    )
    set_gated_weights(t_mod, cell, p_f)
    set_gated_weights(t_mod, cell, p_b, "_reverse")
    tx = t64(x).requires_grad_(True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        tx, torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    t_packed_out, t_state = t_mod(packed)
    t_hn = t_state[0] if cell == "lstm" else t_state
    t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(
        t_packed_out, batch_first=True, total_length=t_len
    )
    ((t_out * t64(g_out)).sum() + (t_hn * t64(g_last)).sum()).backward()

    close(outs[0], t_out[:, :, :hid])  # padded positions are zero in both
    close(outs[1], t_out[:, :, hid:])
    close(outs[2], t_hn[0])
    close(outs[3], t_hn[1])
    close(dx, tx.grad)
    check_gated_grads(grads_f, t_mod, cell)
    check_gated_grads(grads_b, t_mod, cell, "_reverse")
