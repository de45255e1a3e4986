"""Synthetic long-memory benchmarks: the adding problem and copy memory.

Both tasks have a known score for a model that remembers nothing, so a run
can be judged without any reference implementation: a recurrent model has
learned something only once it clearly beats that baseline.
"""

from __future__ import annotations

import math

import numpy as np

# y is the sum of two independent U(0, 1) values: mean 1, variance 2/12.
# Always answering 1 therefore scores the variance as its mean squared error.
ADDING_BASELINE_MSE: float = 1 / 6

COPY_SYMBOLS_SHOWN = 10
"""How many symbols the copy-memory task asks the model to repeat."""


def adding_problem(length: int, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Hochreiter & Schmidhuber 1997) as set up by Le et al. 2015.

    Returns ``X`` of shape ``(samples, length, 2)`` and ``y`` of shape
    ``(samples, 1)``, both float64. Channel 0 holds U[0, 1) noise; channel 1
    marks exactly two steps with 1.0, one in the first half
    (``[0, length // 2)``) and one in the second (``[length // 2, length)``),
    so the two values to add are always far apart and the model has to carry
    the first one across about half the sequence.
    """
    if length < 2:
        raise ValueError(f"adding problem needs length >= 2, got {length}")
    if samples < 1:
        raise ValueError(f"adding problem needs samples >= 1, got {samples}")
    rng = np.random.default_rng(seed)
    half = length // 2
    values = rng.random((samples, length))
    first = rng.integers(0, half, size=samples)
    second = rng.integers(half, length, size=samples)
    rows = np.arange(samples)
    markers = np.zeros((samples, length))
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second]).reshape(samples, 1)
    return x, y


def copy_memory(
    length: int, symbols: int, samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The copy-memory task (Arjovsky et al. 2016), as int64 ids.

    Each input row is 10 symbols drawn from ``1..symbols``, then ``length``
    blanks (0), then the delimiter ``symbols + 1``, then 9 blanks: ``length +
    20`` steps. The target row is blank except for its last 10 steps, which
    repeat the 10 symbols; the first of them lines up with the delimiter, so
    the model answers from the step it is told to. Input ids therefore span
    ``symbols + 2`` values and labels ``symbols + 1``.
    """
    if length < 0:
        raise ValueError(f"copy memory needs length >= 0, got {length}")
    if symbols < 1:
        raise ValueError(f"copy memory needs symbols >= 1, got {symbols}")
    if samples < 1:
        raise ValueError(f"copy memory needs samples >= 1, got {samples}")
    rng = np.random.default_rng(seed)
    n = COPY_SYMBOLS_SHOWN
    total = length + 2 * n
    shown = rng.integers(1, symbols + 1, size=(samples, n), dtype=np.int64)
    inputs = np.zeros((samples, total), dtype=np.int64)
    inputs[:, :n] = shown
    inputs[:, n + length] = symbols + 1
    targets = np.zeros((samples, total), dtype=np.int64)
    targets[:, total - n :] = shown
    return inputs, targets


def copy_baseline(length: int, symbols: int) -> float:
    """Mean cross-entropy, in nats per step, of the best memoryless model.

    Such a model gets every blank right for free (it can count steps) but has
    to guess the 10 recalled symbols uniformly, paying ``ln(symbols)`` for
    each; averaged over all ``length + 20`` steps that is the value returned.
    """
    if symbols < 1 or length < 0:
        raise ValueError(
            f"copy baseline needs symbols >= 1 and length >= 0, got {symbols}, {length}"
        )
    return COPY_SYMBOLS_SHOWN * math.log(symbols) / (length + 2 * COPY_SYMBOLS_SHOWN)


def parity(length: int, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bit strings and whether each holds an odd number of 1s.

    Returns ``X`` (samples, length) int64 in {0, 1} and ``y`` (samples,) int64.
    Every bit matters to the answer, so the first bit's influence must survive
    the whole sequence: a classification twin of the adding problem. Always
    guessing one class scores 50%.
    """
    if length < 1:
        raise ValueError(f"parity needs length >= 1, got {length}")
    if samples < 1:
        raise ValueError(f"parity needs samples >= 1, got {samples}")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(samples, length), dtype=np.int64)
    return x, x.sum(axis=1) % 2
