"""The numpy stepper's compiled chains (specc/backend/numpy/chainstep.py) and the
draw every sampler shares: folding embeddings, batchnorm and rectifiers into the
products must leave the scores those of the whole sequence, and sampling exact."""

from __future__ import annotations

import numpy as np
import pytest

import specc
from specc.backend import build_network
from specc.train.infer import Draws, generate

#: Chains that exercise each fold: a one-hot table with maps folded in, a batchnorm
#: folded into a product or through a rectifier, stacked cells, products large enough
#: for MKL (with the mkl extra), maps left pending at the end, and rows that are not
#: tokens.
CHAINS = {
    "char_model": "chars -> embedding(dim=5) -> rnn(hidden=6, activation=tanh) -> batchnorm"
    " -> leaky_relu(slope=0.01) -> dense(units=vocab) -> softmax",
    "one_hot_relu": "chars -> one_hot -> lstm(hidden=7) -> batchnorm(affine=false) -> relu"
    " -> dense(units=vocab, bias=false) -> softmax",
    "batchnorm_dense": "chars -> embedding(dim=4) -> rnn(hidden=6, activation=relu)"
    " -> dropout(p=0.3) -> rnn(hidden=5, activation=leaky_relu(slope=0.2)) -> batchnorm"
    " -> dense(units=vocab) -> softmax",
    "maps_on_the_table": "chars -> embedding(dim=4) -> batchnorm -> tanh -> lstm(hidden=5)"
    " -> batchnorm -> batchnorm -> sigmoid -> dense(units=6) -> leaky_relu(slope=1.5)"
    " -> dense(units=vocab) -> softmax",
    "gru": "chars -> embedding(dim=4) -> gru(hidden=6) -> batchnorm -> gru(hidden=5)"
    " -> relu -> dense(units=vocab) -> softmax",
    "wide": "chars -> embedding(dim=8) -> lstm(hidden=100) -> rnn(hidden=200, activation=tanh)"
    " -> batchnorm -> leaky_relu(slope=0.1) -> dense(units=vocab) -> softmax",  # MKL's sizes
    "ends_in_batchnorm": "chars -> embedding(dim=4) -> rnn(hidden=5) -> dropout(p=0.1)"
    " -> batchnorm",
}
SEQUENCE = (
    "x -> rnn(hidden=4) -> relu -> lstm(hidden=5) -> gru(hidden=3) -> batchnorm -> dense(units=2)"
)


def chain_net(flow: str, gammas: str, tokens: bool = True):
    head = "input chars : tokens" if tokens else "input x : sequence[3]"
    model = specc.loads(f"model m {{ {head}\n output y = {flow} }}").bound_model("m", {"vocab": 9})
    net = build_network(model, "numpy", seed=3, dtype="float64")
    rng = np.random.default_rng(5)
    for key, value in net.state.items():  # running statistics as after some training
        value[...] = (
            rng.uniform(0.5, 1.5, value.shape) if "var" in key else rng.normal(size=value.shape)
        )
    for key, value in net.params.items():
        if key.endswith("gamma"):
            value[...] = np.abs(rng.normal(size=value.shape)) + 0.1
            if gammas == "negative":
                value *= -1
            elif gammas == "mixed":
                value[::2] *= -1
                value[1] = 0.0
    return net


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("gammas", ["positive", "negative", "mixed"])
@pytest.mark.parametrize("name", [*CHAINS, "sequence"])
def test_a_compiled_chain_gives_the_scores_of_the_whole_sequence(name, gammas, rows):
    tokens = name != "sequence"
    net = chain_net(CHAINS.get(name, SEQUENCE), gammas, tokens)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 9, size=(rows, 8)) if tokens else rng.standard_normal((rows, 8, 3))
    start = {k: v + rng.uniform(-0.5, 0.5, v.shape) for k, v in net.zero_state(rows).items()}
    stepper = net.stepper(start)
    assert stepper.plan == "chain"
    got = np.stack([stepper.scores(x[:, t]).copy() for t in range(8)], axis=1)
    with net.carrying(start) as carried:
        want = net.scores({"chars" if tokens else "x": x})
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    for key, value in carried.state.items():
        np.testing.assert_allclose(stepper.state[key], value, rtol=0, atol=1e-12)


def test_a_chain_refuses_a_token_outside_the_vocabulary():
    for rows in (1, 2):
        stepper = chain_net(CHAINS["char_model"], "positive").stepper(batch=rows)
        with pytest.raises(IndexError, match="outside the vocabulary of 9"):
            stepper.scores(np.full(rows, 9))


def test_models_that_are_not_chains_step_node_by_node():
    model = specc.loads(
        "model m { input chars : tokens\n e = chars -> embedding(dim=3)\n o = chars -> one_hot\n"
        " output y = (e, o) -> concat -> rnn(hidden=4) -> dense(units=vocab) -> softmax }"
    ).bound_model("m", {"vocab": 9})
    assert build_network(model, "numpy").stepper().plan == "nodes"


@pytest.mark.parametrize("temperature", [1.0, 0.6, 2.5])
def test_draws_follow_the_softmax_at_the_temperature(temperature):
    logits = np.array([1.0, -0.5, 0.3, 2.0, -3.0, 0.0])
    draw = Draws(np.random.default_rng(11), temperature)
    counts = np.bincount([draw(logits) for _ in range(60_000)], minlength=6)
    p = np.exp(logits / temperature)
    p /= p.sum()
    # four standard deviations of each frequency
    np.testing.assert_array_less(
        np.abs(counts / 60_000 - p), 4 * np.sqrt(p * (1 - p) / 60_000) + 1e-9
    )


def test_a_shorter_text_is_the_start_of_a_longer_one_from_the_same_seed():
    from specc.data.vocab import Vocab

    net = chain_net(CHAINS["char_model"], "mixed")
    net.params["dense.W"][...] *= 5
    vocab = Vocab(list("abcdefgh\n"))
    long = generate(net, vocab, "ab", 700, 0.8, seed=4)
    assert generate(net, vocab, "ab", 700, 0.8, seed=4) == long
    assert long.startswith(generate(net, vocab, "ab", 30, 0.8, seed=4))
    assert generate(net, vocab, "ab", 700, 0.8, seed=5) != long
