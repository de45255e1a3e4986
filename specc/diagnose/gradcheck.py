"""Numerical gradient checks of whole models, for `specc check --gradcheck`.

The scalar checked is sum(output * G) for a random G, so every entry of the
output's gradient matters (an all-ones G would hide errors that cancel, such
as batchnorm's input gradient). Central differences in float64; each
parameter is probed at a seeded sample of its entries to stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

import numpy as np

from specc.backend.graph import Network
from specc.ir.ops import spelling_feed
from specc.ir.spec import Model

TOLERANCE = 1e-6
SMALL_SIZES = {"vocab": 7, "labels": 5, "chars": 6}


@dataclass
class ParamCheck:
    name: str
    checked: int
    total: int
    rel_error: float


def random_inputs(
    model: Model,
    rng: np.random.Generator,
    batch: int = 3,
    time: int = 5,
    vocab: int = 7,
    chars: int = 6,
    letters: int = 4,
) -> dict[str, np.ndarray]:
    """Random values for every input; a spelled tokens input gets random letters too,
    words of 0 (padding) to ``letters`` letters."""
    values = {}
    spelled = any(n.op == "spell" for n in model.nodes)
    for inp in model.inputs:
        if inp.type == "tokens":
            values[inp.name] = rng.integers(0, vocab, size=(batch, time))
            if spelled:
                ids = rng.integers(1, chars, size=(batch, time, letters))
                lengths = rng.integers(0, letters + 1, size=(batch, time, 1))
                values[spelling_feed(inp.name)] = np.where(np.arange(letters) < lengths, ids, 0)
        elif inp.type == "sequence":
            values[inp.name] = rng.normal(size=(batch, time, inp.size))
        else:
            values[inp.name] = rng.normal(size=(batch, inp.size))
    return values


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-based relative error: tiny entries cannot fake a failure."""
    denom = max(float(np.linalg.norm(a) + np.linalg.norm(b)), 1e-12)
    return float(np.linalg.norm(a - b)) / denom


def check_network(
    net: Network,
    inputs: dict[str, np.ndarray],
    mask: np.ndarray | None = None,
    samples: int = 24,
    seed: int = 0,
    eps: float = 1e-6,
    jitter: float = 0.1,
) -> list[ParamCheck]:
    """Compare analytic and central-difference gradients for every parameter."""
    rng = np.random.default_rng(seed)
    if jitter:
        # Move off special initial values (zero biases, identity W_hh, tiny
        # W_xh): there relu's kink sits at the probe point and central
        # differences straddle it, which would report a false failure.
        net.flat_params += rng.normal(0.0, jitter, size=net.flat_params.shape)

    def run(upstream=None):
        net.rng = np.random.default_rng(seed)  # dropout draws the same mask every time
        if upstream is None:
            values = net.trace(inputs, True, mask).values
            return {n: values[n] for n in net.model.outputs}
        return net.vjp(inputs, upstream, mask)

    outs = run()
    weights = {n: rng.normal(size=v.shape) for n, v in outs.items()}
    if mask is not None:
        for n, v in outs.items():
            if v.ndim == 3:  # padding is never read, so its gradient is not defined
                weights[n] = weights[n] * mask[..., None]

    def scalar() -> float:
        values = run()
        return float(sum(np.sum(values[n] * weights[n]) for n in values))

    run(weights)
    analytic = net.flat_grads.copy()
    results = []
    for key, sl in net.param_slices.items():
        size = sl.stop - sl.start
        idx = np.arange(size) if size <= samples else rng.choice(size, samples, replace=False)
        flat = net.flat_params
        num = np.empty(len(idx))
        for j, i in enumerate(idx):
            k = sl.start + int(i)
            old = flat[k]
            flat[k] = old + eps
            plus = scalar()
            flat[k] = old - eps
            minus = scalar()
            flat[k] = old
            num[j] = (plus - minus) / (2 * eps)
        ana = analytic[sl.start + idx]
        results.append(ParamCheck(key, len(idx), size, rel_error(ana, num)))
    return results


def report_gradcheck(program, out: TextIO) -> bool:
    """Check every model of a program; print one line per parameter; True if all pass."""
    ok = True
    for model_ir in program.ir.models:
        sizes = {k: v for k, v in SMALL_SIZES.items()}
        net = program.build(model_ir.name, sizes=sizes, seed=0, dtype="float64")
        rng = np.random.default_rng(0)
        inputs = random_inputs(net.model, rng, vocab=sizes["vocab"], chars=sizes["chars"])
        results = check_network(net, inputs)
        worst = max((r.rel_error for r in results), default=0.0)
        passed = worst < TOLERANCE
        ok &= passed
        out.write(
            f"{program.path}: model {model_ir.name}: "
            f"{'ok' if passed else 'FAILED'} (worst relative error {worst:.1e}, "
            f"tolerance {TOLERANCE:.0e})\n"
        )
        for r in results:
            flag = "" if r.rel_error < TOLERANCE else "   <-- above tolerance"
            out.write(
                f"  {r.name:<24} {r.rel_error:9.1e}   ({r.checked} of {r.total} entries){flag}\n"
            )
    return ok
