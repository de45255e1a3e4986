"""Weight initialisers, shared by every op's `init_params` (and so by every backend).

Each draws in float64 from the caller's generator and casts once at the end,
so a given seed yields the same weights (up to rounding) in float32 and
float64 runs, and the draw order is fixed per kernel for reproducibility.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def uniform(
    rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype: Any
) -> np.ndarray:
    """U(-bound, bound): the shape of PyTorch's default layer initialisation."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def normal(rng: np.random.Generator, shape: tuple[int, ...], std: float, dtype: Any) -> np.ndarray:
    """N(0, std^2); used where a near-zero but symmetry-breaking start is wanted."""
    return rng.normal(0.0, std, size=shape).astype(dtype)


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, dtype: Any) -> np.ndarray:
    """Glorot/Xavier uniform, keeping activation variance roughly equal in both directions."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(rng, (fan_in, fan_out), bound, dtype)


def orthogonal(rng: np.random.Generator, n: int, dtype: Any) -> np.ndarray:
    """A random orthogonal matrix, uniformly distributed (Haar).

    Plain QR of a Gaussian is biased by LAPACK's sign convention; flipping
    each column by the sign of R's diagonal removes that bias. Orthogonal
    recurrent weights preserve norms, which delays vanishing/exploding.
    """
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return (q * signs).astype(dtype)


def rnn_params(
    init: str, n_in: int, hidden: int, rng: np.random.Generator, dtype: Any
) -> dict[str, np.ndarray]:
    """Parameters of a simple RNN under one of its inits (`specc.ir.ops.RNN_INITS`).

    The bias always starts at zero: with a single bias (PyTorch has two that
    add up) a random start would only add noise to the first steps.
    """
    if init == "default":
        bound = 1.0 / math.sqrt(hidden)
        w_xh = uniform(rng, (n_in, hidden), bound, dtype)
        w_hh = uniform(rng, (hidden, hidden), bound, dtype)
    elif init == "xavier":
        w_xh = glorot_uniform(rng, n_in, hidden, dtype)
        w_hh = glorot_uniform(rng, hidden, hidden, dtype)
    elif init == "orthogonal":
        w_xh = glorot_uniform(rng, n_in, hidden, dtype)
        w_hh = orthogonal(rng, hidden, dtype)
    elif init == "identity":
        # IRNN (Le, Jaitly & Hinton 2015): start as a perfect integrator.
        w_xh = normal(rng, (n_in, hidden), 0.001, dtype)
        w_hh = np.eye(hidden, dtype=dtype)
    else:
        raise ValueError(f"unknown rnn init {init!r}")
    return {"W_xh": w_xh, "W_hh": w_hh, "b": np.zeros(hidden, dtype=dtype)}


def linear_params(
    n_in: int, units: int, bias: bool, rng: np.random.Generator, dtype: Any
) -> dict[str, np.ndarray]:
    """Dense layer weights as torch.nn.Linear draws them: U(±1/sqrt(fan_in)) for W and b."""
    bound = 1.0 / math.sqrt(n_in)
    params = {"W": uniform(rng, (n_in, units), bound, dtype)}
    if bias:
        params["b"] = uniform(rng, (units,), bound, dtype)
    return params


def gated_params(
    init: str, n_in: int, hidden: int, gates: int, rng: np.random.Generator, dtype: Any
) -> dict[str, np.ndarray]:
    """``W_xh`` (n_in, gates·hidden) and ``W_hh`` (hidden, gates·hidden) of a gated cell
    (lstm: 4 gates, gru: 3) under one of its inits; the biases are the op's business.

    Each gate's block is drawn as its own matrix, so `xavier` takes the fan of one
    gate (not of all of them together) and `orthogonal` makes every gate's
    hidden → hidden block orthogonal, as the rnn's inits do for its one block.
    """
    blocks_x, blocks_h = [], []
    for _ in range(gates):
        if init == "default":  # PyTorch's U(±1/sqrt(H)), as for the rnn
            bound = 1.0 / math.sqrt(hidden)
            blocks_x.append(uniform(rng, (n_in, hidden), bound, dtype))
            blocks_h.append(uniform(rng, (hidden, hidden), bound, dtype))
        elif init in ("xavier", "orthogonal"):
            blocks_x.append(glorot_uniform(rng, n_in, hidden, dtype))
            if init == "xavier":
                blocks_h.append(glorot_uniform(rng, hidden, hidden, dtype))
            else:
                blocks_h.append(orthogonal(rng, hidden, dtype))
        else:
            raise ValueError(f"unknown gated-cell init {init!r}")
    return {
        "W_xh": np.ascontiguousarray(np.concatenate(blocks_x, axis=1)),
        "W_hh": np.ascontiguousarray(np.concatenate(blocks_h, axis=1)),
    }
