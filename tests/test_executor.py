"""The executor and the Python API: whole graphs, masks, shared inputs, live params."""

from __future__ import annotations

import numpy as np
import pytest

import specc
from specc.diagnose.gradcheck import check_network, random_inputs

from helpers import SPECS

TAGGER = """
model tagger {
    input  words : tokens
    e    = words -> embedding(dim=6)
    fwd  = e -> rnn(hidden=5, activation=leaky_relu(slope=0.01), init=identity)
    bwd  = e -> rnn(hidden=4, reverse=true)
    output tags = (fwd, bwd) -> concat -> batchnorm -> dense(units=labels) -> softmax
}
"""

NO_BN_TAGGER = """
model tagger {
    input  words : tokens
    e    = words -> embedding(dim=6)
    fwd  = e -> rnn(hidden=5, activation=relu, init=identity)
    bwd  = e -> rnn(hidden=4, reverse=true)
    output tags = (fwd, bwd) -> concat -> leaky_relu(0.1) -> dense(units=labels) -> softmax
}
"""


def _mask(lengths: list[int], time: int) -> np.ndarray:
    return (np.arange(time)[None, :] < np.array(lengths)[:, None]).astype(np.float64)


def test_char_rnn_whole_graph_gradients_match_finite_differences():
    program = specc.load(SPECS / "char_rnn.spec")
    net = program.build("char_rnn", sizes={"vocab": 9}, dtype="float64")
    inputs = random_inputs(net.model, np.random.default_rng(1), batch=4, time=6, vocab=9)
    for result in check_network(net, inputs, samples=12):
        assert result.rel_error < 1e-6, result


def test_char_rnn_at_batch_one_gradients_match_finite_differences():
    """Batch 1 has its own BPTT product and writes the weight gradients in place."""
    net = specc.load(SPECS / "char_rnn.spec").build("char_rnn", sizes={"vocab": 9}, dtype="float64")
    inputs = random_inputs(net.model, np.random.default_rng(4), batch=1, time=7, vocab=9)
    for result in check_network(net, inputs, samples=12):
        assert result.rel_error < 1e-6, result


@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_tagger_whole_graph_gradients_match_finite_differences(masked):
    net = specc.loads(TAGGER).build("tagger", sizes={"vocab": 11, "labels": 4}, dtype="float64")
    inputs = random_inputs(net.model, np.random.default_rng(2), batch=3, time=6, vocab=11)
    mask = _mask([6, 3, 4], 6) if masked else None
    for result in check_network(net, inputs, mask=mask, samples=12):
        assert result.rel_error < 1e-6, result


def test_shared_input_gradients_accumulate():
    """`e` feeds both rnns: its gradient must be the sum of both paths."""
    net = specc.loads(NO_BN_TAGGER).build(
        "tagger", sizes={"vocab": 8, "labels": 3}, dtype="float64"
    )
    ids = np.random.default_rng(0).integers(0, 8, (2, 5))
    targets = np.random.default_rng(1).integers(0, 3, (2, 5))
    _, grads = net.loss_and_grads({"words": ids}, targets)
    # cut the backward path: zero bwd's input weights and check E's gradient changes
    net.params["bwd.W_xh"][...] = 0
    _, only_fwd = net.loss_and_grads({"words": ids}, targets)
    assert not np.allclose(grads["e.E"], only_fwd["e.E"])


def test_padded_batch_equals_sentences_run_one_by_one():
    """Without batchnorm, padding changes nothing: per-token losses and summed gradients."""
    program = specc.loads(NO_BN_TAGGER)
    net = program.build("tagger", sizes={"vocab": 10, "labels": 4}, dtype="float64")
    rng = np.random.default_rng(3)
    lengths = [5, 2, 4]
    ids = rng.integers(0, 10, (3, 5))
    targets = rng.integers(0, 4, (3, 5))
    mask = _mask(lengths, 5)
    ids_padded = ids * mask.astype(int)  # padding holds id 0, a real token id
    loss, grads = net.loss_and_grads({"words": ids_padded}, targets, mask=mask)
    total = sum(lengths)
    summed = {k: np.zeros_like(v) for k, v in grads.items()}
    token_loss = 0.0
    for row, n in enumerate(lengths):
        one_loss, one = net.loss_and_grads(
            {"words": ids[row : row + 1, :n]}, targets[row : row + 1, :n]
        )
        token_loss += one_loss * n
        for k in summed:
            summed[k] += one[k] * n
    assert loss == pytest.approx(token_loss / total, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k] * total, summed[k], rtol=1e-10, atol=1e-12)


def test_batchnorm_statistics_ignore_padding():
    program = specc.loads(TAGGER)
    net = program.build("tagger", sizes={"vocab": 10, "labels": 4}, dtype="float64")
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 10, (2, 6))
    mask = _mask([6, 2], 6)
    before = net.state["batchnorm.running_mean"].copy()
    net.forward({"words": ids}, train=True, mask=mask)
    # the same real tokens with different padding give the same statistics
    net2 = program.build("tagger", sizes={"vocab": 10, "labels": 4}, dtype="float64")
    ids2 = ids.copy()
    ids2[1, 2:] = (ids2[1, 2:] + 3) % 10
    net2.forward({"words": ids2}, train=True, mask=mask)
    assert not np.allclose(net.state["batchnorm.running_mean"], before)
    np.testing.assert_allclose(
        net.state["batchnorm.running_mean"], net2.state["batchnorm.running_mean"], rtol=1e-12
    )
    np.testing.assert_allclose(
        net.state["batchnorm.running_var"], net2.state["batchnorm.running_var"], rtol=1e-12
    )


def test_params_are_live_and_float32_by_default():
    program = specc.load(SPECS / "char_rnn.spec")
    net = program.build("char_rnn", sizes={"vocab": 12})
    assert all(v.dtype == np.float32 for v in net.params.values())
    ids = np.zeros((1, 3), dtype=np.int64)
    before = net.forward({"chars": ids})["next"]
    assert before.dtype == np.float32
    net.params["dense.b"][:] = np.arange(12, dtype=np.float32) * 3
    after = net.forward({"chars": ids})["next"]
    assert np.argmax(after[0, 0]) == 11 and not np.allclose(before, after)


def test_same_seed_same_numbers_and_different_seed_differs():
    program = specc.load(SPECS / "char_rnn.spec")
    a = program.build("char_rnn", sizes={"vocab": 12}, seed=5)
    b = program.build("char_rnn", sizes={"vocab": 12}, seed=5)
    c = program.build("char_rnn", sizes={"vocab": 12}, seed=6)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.params["rnn.W_hh"], c.params["rnn.W_hh"])


def test_loss_is_mean_nats_and_grads_match_finite_differences_of_the_loss():
    program = specc.load(SPECS / "char_rnn.spec")
    net = program.build("char_rnn", sizes={"vocab": 6}, dtype="float64")
    rng = np.random.default_rng(0)
    ids, targets = rng.integers(0, 6, (3, 4)), rng.integers(0, 6, (3, 4))
    loss, grads = net.loss_and_grads({"chars": ids}, targets)
    probs = net.forward({"chars": ids}, train=True)["next"]
    manual = -np.mean(np.log(np.take_along_axis(probs, targets[..., None], -1)))
    assert loss == pytest.approx(manual, rel=1e-10)
    p = net.params["dense.W"]
    for idx in [(0, 0), (5, 3), (100, 2)]:
        old = p[idx]
        p[idx] = old + 1e-6
        up, _ = net.loss_and_grads({"chars": ids}, targets)
        p[idx] = old - 1e-6
        down, _ = net.loss_and_grads({"chars": ids}, targets)
        p[idx] = old
        assert grads["dense.W"][idx] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-9)


def test_unbound_size_is_a_clear_error():
    program = specc.load(SPECS / "char_rnn.spec")
    with pytest.raises(specc.SpecError, match="size 'vocab'"):
        program.build("char_rnn")


def test_check_gradcheck_cli_passes_on_every_spec(capsys):
    from specc.cli import main

    for path in sorted(SPECS.glob("*.spec")):
        try:
            specc.load(path)
        except specc.SpecError:
            continue  # a spec whose data files are not present in this checkout
        assert main(["check", "--gradcheck", str(path)]) == 0, capsys.readouterr().out
        assert "ok (worst relative error" in capsys.readouterr().out


def test_vanishing_gradients_flushed_below_float32_range_change_nothing_visible():
    """A long sigmoid rnn's gradient sinks below float32's normal range; it is flushed
    to zero (subnormals are very slow), and the parameter gradients still agree with
    float64, where nothing is flushed."""
    text = (
        "model m { input x : sequence[2]\n"
        " output y = x -> rnn(hidden=16, activation=sigmoid, return=last) -> dense(units=1) }"
    )
    program = specc.loads(text)
    x = np.random.default_rng(0).normal(size=(4, 120, 2))
    y = np.random.default_rng(1).normal(size=(4, 1))
    g32 = program.build("m", dtype="float32").loss_and_grads({"x": x}, y)[1]
    g64 = program.build("m", dtype="float64").loss_and_grads({"x": x}, y)[1]
    for k in g64:
        assert np.all(np.isfinite(g32[k]))
        np.testing.assert_allclose(g32[k], g64[k], rtol=2e-3, atol=1e-6, err_msg=k)
