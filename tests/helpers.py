"""What several test modules need: where the checkout is, how to run the real
`specc` command, how to lay out a spec with its data files, finite-difference
gradient checks of the kernels, and a char-rnn with batches for it.

One place, so that a change to how the command is started (or where the
example specs live, or how a gradient is checked) is made once and every test
follows it, and no test module imports another.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specc
from specc.backend.numpy.kernels import Kernel

from numpy_kernels import RNN

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"

#: How a user starts the command from a checkout: `python -m specc.cli`.
SPECC_COMMAND = (sys.executable, "-m", "specc.cli")

#: A small char model with a batchnorm after its rnn, and text for it
#: (`write_spec_and_data(folder, BATCHNORM_RNN, FOX_TEXT)`): what covariate
#: shift is measured on.
BATCHNORM_RNN = """
model m {
    input c : tokens
    output y = c -> embedding(dim=8) -> rnn(hidden=24) -> batchnorm -> leaky_relu
        -> dense(units=vocab) -> softmax
}
task t : next_char { model = m  data = text("c.txt")  seq_len = 16  batch = 8
                     optimizer = adam(lr=3e-3) }
"""
FOX_TEXT = {"c.txt": "the quick brown fox jumps over the lazy dog; " * 80}


def checkout_env() -> dict[str, str]:
    """The environment for a subprocess that imports specc: this checkout first on
    the path, so the code under test runs even where an installed specc points
    elsewhere, and no inherited warning filters that would add lines to stderr."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONWARNINGS", None)
    return env


def specc_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `specc ARGS` to the end as a user would, capturing its output."""
    return subprocess.run(
        [*SPECC_COMMAND, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=checkout_env(),
        timeout=timeout,
    )


def start_specc(*args: str, capture: bool = True) -> subprocess.Popen[str]:
    """Start `specc ARGS` without waiting, for tests that signal or kill it.

    With `capture`, stdout and stderr are pipes; without, both are discarded
    (a process that is killed repeatedly need not fill a pipe nobody reads)."""
    stream = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [*SPECC_COMMAND, *args], stdout=stream, stderr=stream, text=True, env=checkout_env()
    )


def write_file(path: Path, content: str | bytes) -> Path:
    """Write `content` to `path` byte for byte (text as UTF-8, newlines untranslated),
    so a test controls exactly what the code under test reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def write_spec_and_data(
    folder: Path,
    spec: str,
    data: Mapping[str, str | bytes] | None = None,
    name: str = "t.spec",
) -> Path:
    """Write `spec` as folder/name and each data file beside it; returns the spec's path.

    Data paths in a spec resolve against the spec's folder, so the files go there."""
    for file_name, content in (data or {}).items():
        write_file(folder / file_name, content)
    return write_file(folder / name, spec)


def interrupt_at(at_step: int):
    """A training reporter that sends this process SIGINT after step `at_step`, as
    Ctrl-C would: the run saves a checkpoint there and stops."""

    class Reporter:
        def start(self, *args):
            pass

        def step(self, step, *args):
            if step == at_step:
                os.kill(os.getpid(), signal.SIGINT)

        def evaluated(self, *args):
            pass

        def finish(self):
            pass

        def note(self, text):
            pass

    return Reporter()


# ----- gradient checks ------------------------------------------------------------------
# Every gradient is checked against central finite differences in float64 on the
# scalar sum(y * G) for a random upstream gradient G: an all-ones G would hide
# transposition and broadcasting mistakes.

#: The finite-difference step, and the largest relative error a gradient may have.
STEP = 1e-6
TOL = 1e-6


def conllu_text(tagged: str) -> str:
    """CoNLL-U for sentences written one a line as `word/TAG word/TAG ...`."""
    blocks = []
    for line in tagged.splitlines():
        pairs = [tok.rsplit("/", 1) for tok in line.split()]
        rows = [f"{i}\t{w}\t_\t{t}\t_\t_\t_\t_\t_\t_" for i, (w, t) in enumerate(pairs, 1)]
        blocks.append("\n".join(rows) + "\n")
    return "\n".join(blocks)


def rel_err(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Norm-based relative error, so tiny components cannot cause false failures."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-300))


def numeric_grad(f: Callable[[], float], a: np.ndarray, step: float = STEP) -> np.ndarray:
    """Central differences of ``f`` with respect to ``a``, perturbing ``a`` in place."""
    g = np.zeros(a.shape, dtype=np.float64)
    for idx in np.ndindex(*a.shape):
        old = a[idx]
        a[idx] = old + step
        fp = f()
        a[idx] = old - step
        fm = f()
        a[idx] = old
        g[idx] = (fp - fm) / (2 * step)
    return g


def in_shapes_of(xs: list[np.ndarray]) -> list[tuple[int, ...]]:
    """Per-example feature dims as the executor passes them: last axis for floats."""
    return [x.shape[-1:] if x.dtype.kind == "f" else () for x in xs]


def run_kernel(
    kernel: Kernel,
    params: dict,
    state: dict,
    xs: list[np.ndarray],
    mask: np.ndarray | None,
    train: bool,
    seed: int = 123,
) -> tuple[np.ndarray, Any, dict]:
    """Forward on a copy of the state, with a fresh identically-seeded rng each call."""
    st = {k: v.copy() for k, v in state.items()}
    y, cache = kernel.forward(params, st, xs, mask, train, np.random.default_rng(seed))
    return y, cache, st


def grad_check(
    kernel: Kernel,
    xs: list[np.ndarray],
    mask: np.ndarray | None = None,
    train: bool = True,
    params: dict | None = None,
    seed: int = 0,
    fresh_grads: bool = False,
) -> tuple[np.ndarray, list, dict]:
    """Assert analytic input and parameter gradients match finite differences."""
    rng = np.random.default_rng(seed)
    shapes = in_shapes_of(xs)
    if params is None:
        params = kernel.init_params(shapes, rng, np.float64)
    state = kernel.init_state(shapes, np.float64)
    assert set(params) == set(kernel.param_names)
    assert {k: v.shape for k, v in params.items()} == kernel.param_shapes(shapes)

    y, cache, _ = run_kernel(kernel, params, state, xs, mask, train)
    g_up = rng.standard_normal(y.shape)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dxs = kernel.backward(params, cache, g_up, grads, fresh_grads=fresh_grads)
    assert len(dxs) == len(xs)

    def f() -> float:
        return float(np.sum(run_kernel(kernel, params, state, xs, mask, train)[0] * g_up))

    for i, x in enumerate(xs):
        if x.dtype.kind != "f":
            assert dxs[i] is None
            continue
        assert dxs[i].shape == x.shape
        err = rel_err(dxs[i], numeric_grad(f, x))
        assert err < TOL, f"input {i}: relative error {err:.2e}"
    for k, p in params.items():
        err = rel_err(grads[k], numeric_grad(f, p))
        assert err < TOL, f"param {k}: relative error {err:.2e}"
    return y, dxs, grads


def make_mask(lengths: list[int], t_len: int) -> np.ndarray:
    """A (B, T) padding mask: 1 for the first `lengths[b]` steps of row b, then 0."""
    return (np.arange(t_len)[None, :] < np.asarray(lengths)[:, None]).astype(np.float64)


# ----- a char-rnn and its batches -------------------------------------------------------

#: Big enough that every large array goes through the executor's buffer pool.
B, T = 16, 40


def char_rnn(dtype: str = "float32", vocab: int = 65, seed: int = 0):
    """specs/char_rnn.spec built with `vocab` characters."""
    return specc.load(SPECS / "char_rnn.spec").build(
        "char_rnn", sizes={"vocab": vocab}, seed=seed, dtype=dtype
    )


def batch(seed: int, vocab: int = 65, b: int = B, t: int = T):
    """Random (ids, targets) of shape (b, t), the same for the same seed."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, (b, t)), rng.integers(0, vocab, (b, t))


#: The rnn loops' variants: each activation, reversed or not, padded or not.
RNN_LOOPS = pytest.mark.parametrize(
    ("activation", "slope", "reverse", "masked"),
    [("tanh", 0.0, False, False), ("tanh", 0.0, True, True), ("sigmoid", 0.0, False, True),
     ("relu", 0.0, True, False), ("leaky_relu", -0.3, False, True)],
)  # fmt: skip


def check_rnn_gradients(activation: str, slope: float, reverse: bool, masked: bool) -> None:
    """Finite differences on a small float64 rnn (batch 3, 7 steps, hidden 4)."""
    b, t_len, n, h = 3, 7, 2, 4
    rng = np.random.default_rng(11)
    x = rng.standard_normal((b, t_len, n))
    mask = make_mask([7, 4, 2], t_len) if masked else None
    k = RNN(h, activation=activation, slope=slope, reverse=reverse)
    params = k.init_params([(n,)], rng, np.float64)
    params["b"] = 0.1 * rng.standard_normal(h)
    grad_check(k, [x], mask=mask, params=params, seed=12)
