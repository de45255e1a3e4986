"""Memory a training step needs, against the activations backward must keep.

Allocation is deterministic, so these bounds are exact checks rather than
timings. The classic minimal char-RNN (batch 1, 25 steps) is the sharp case:
its activations are smaller than one weight matrix, so any temporary of a
weight's size (a transposed copy, a gradient built before it is added) shows.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import specc
from specc.ir.spec import Adam
from specc.train.optim import clip_global_norm, make_optimizer

from helpers import SPECS

VOCAB = 65


def step_peak_and_floor(batch: int, time: int) -> tuple[int, int]:
    """Peak bytes allocated by one training step of specs/char_rnn.spec, and the
    activations it must keep: inputs embedded, hidden states, the batchnorm's
    output, the dense layer's input and the logits."""
    net = specc.load(SPECS / "char_rnn.spec").build("char_rnn", sizes={"vocab": VOCAB}, seed=0)
    opt = make_optimizer(Adam(lr=1e-3), net.flat_params.size, net.dtype)
    rng = np.random.default_rng(0)
    inputs = {"chars": rng.integers(0, VOCAB, (batch, time))}
    targets = rng.integers(0, VOCAB, (batch, time))

    def step() -> None:
        net.backward_flat(inputs, targets)
        clip_global_norm(net.flat_grads, 5.0)
        opt.step(net.flat_params, net.flat_grads)

    step()  # the optimizer's state exists before measuring
    net._pool.clear()  # every array the step needs is then allocated inside it
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    hidden = net.params["rnn.W_hh"].shape[0]
    dim = net.params["embedding.E"].shape[1]
    floor = batch * time * (dim + 3 * hidden + VOCAB) * net.flat_params.dtype.itemsize
    return peak, floor


@pytest.mark.parametrize(("batch", "time"), [(1, 25), (16, 40)], ids=["minimal", "batched"])
def test_training_step_needs_little_beyond_its_activations(batch: int, time: int) -> None:
    peak, floor = step_peak_and_floor(batch, time)
    assert peak <= 1.5 * floor, f"peak {peak} bytes is {peak / floor:.2f}x the {floor} kept"
