"""Matrix products through MKL (the optional ``mkl`` extra): the rnn's step
products and the products over whole sequences.

Skipped without the extra. With it, the products must equal numpy's to
rounding, gradients through them must match finite differences, the rule
that picks the library must hold, and ``SPECC_BLAS=numpy`` must turn MKL off.
Every foreign call must have a declared signature, an ILP64 environment must
not reach MKL's products, and the thread count must be what numpy's BLAS
reports through threadpoolctl.
"""

from __future__ import annotations

import ast
import ctypes
import inspect
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

from specc.backend.numpy import blas

from helpers import (
    RNN_LOOPS,
    batch,
    char_rnn,
    check_rnn_gradients,
    checkout_env,
    grad_check,
    make_mask,
)
from numpy_kernels import Dense

pytestmark = pytest.mark.skipif(blas.name() != "mkl", reason="the mkl extra is not installed")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_step_product_equals_numpy_on_every_row(monkeypatch, dtype, accumulate, packed):
    monkeypatch.setattr(blas, "MIN_WORK", 0)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((7, 9)).astype(dtype)
    src = rng.standard_normal((4, 8, 7)).astype(dtype)
    dst = rng.standard_normal((4, 8, 9)).astype(dtype)
    expected = src @ w + (dst if accumulate else 0)
    if packed:
        given = []
        buffer = lambda n: given.append(np.empty(n, np.uint8)) or given[-1]  # noqa: E731
        product = blas.packed_step_product(w, 8, buffer, accumulate=accumulate)
        assert len(given) == 1
        w[:] = 0  # the packed copy is what the product multiplies by
    else:
        product = blas.step_product(w, 8, accumulate=accumulate)
    assert product is not None
    for s, d in zip(blas.row_addresses(src), blas.row_addresses(dst), strict=True):
        product(s, d)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dst, expected, rtol=tol, atol=tol)


def test_packing_is_left_out_below_its_row_count(monkeypatch):
    monkeypatch.setattr(blas, "MIN_WORK", 0)
    w = np.ones((7, 9))
    unused = []
    few = blas.packed_step_product(w, blas.PACK_MIN_ROWS - 1, unused.append)
    assert few is None and not unused  # nothing asked of the buffer either


def test_step_product_declines_what_numpy_should_do(monkeypatch):
    monkeypatch.setattr(blas, "_THREADS", 1)
    rng = np.random.default_rng(1)
    big = rng.standard_normal((256, 256)).astype(np.float32)
    assert blas.step_product(big, 32) is not None
    assert blas.step_product(big.T, 32) is None  # not C-ordered
    assert blas.step_product(big.astype(np.float16), 32) is None  # no such gemm
    assert blas.step_product(big[:8, :8].copy(), 2) is None  # too little work to gain
    with pytest.raises(ValueError, match="C-ordered"):
        blas.row_addresses(big.T)


def test_big_loop_products_stay_with_numpy_when_it_has_threads(monkeypatch):
    w = np.zeros((512, 512), np.float32)
    monkeypatch.setattr(blas, "_THREADS", 2)
    assert blas.step_product(w, 64) is None  # 16M multiply-adds: two threads win
    assert blas.step_product(w, 8) is not None  # 2M: MKL's one thread wins
    monkeypatch.setattr(blas, "_THREADS", 1)
    assert blas.step_product(w, 64) is not None


@pytest.fixture
def mkl_for_everything(monkeypatch):
    """Every product through MKL, however small, as on one thread."""
    monkeypatch.setattr(blas, "MIN_WORK", 0)
    monkeypatch.setattr(blas, "GEMM_MIN_WORK", 0)
    monkeypatch.setattr(blas, "_THREADS", 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("trans_a", "trans_b"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_gemm_equals_numpy(mkl_for_everything, dtype, trans_a, trans_b, accumulate):
    rng = np.random.default_rng(2)
    m, k, n = 6, 5, 4
    # operands with rows longer than their width, as slices of the rnn's buffers are
    a = rng.standard_normal((k, m + 3) if trans_a else (m, k + 3)).astype(dtype)
    a = a[:, :m] if trans_a else a[:, :k]
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    out = rng.standard_normal((m, n)).astype(dtype)
    expected = (a.T if trans_a else a) @ (b.T if trans_b else b) + (out if accumulate else 0)
    blas.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


def test_gemm_leaves_strided_operands_to_numpy(mkl_for_everything):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 10)).astype(np.float32)[:, ::2]  # no contiguous rows
    b = rng.standard_normal((5, 4)).astype(np.float32)
    out = np.empty((6, 4), np.float32)
    blas.gemm(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5)


@RNN_LOOPS
def test_rnn_through_mkl_matches_finite_differences(
    mkl_for_everything, activation, slope, reverse, masked
):
    check_rnn_gradients(activation, slope, reverse, masked)


@pytest.mark.parametrize(
    ("cell", "reverse", "masked"),
    [("lstm", False, False), ("lstm", True, True), ("gru", False, True), ("gru", True, False)],
)
def test_gated_loops_through_packed_weights_match_finite_differences(
    mkl_for_everything, monkeypatch, cell, reverse, masked
):
    """The lstm's and gru's step products, forward and backward, by packed weights."""
    from specc.backend.numpy import gated

    from numpy_kernels import GRU, LSTM

    monkeypatch.setattr(blas, "PACK_MIN_ROWS", 1)
    packed = []
    pack = blas.packed_step_product

    def spy(*args, **kwargs):
        packed.append(pack(*args, **kwargs))
        return packed[-1]

    monkeypatch.setattr(gated, "packed_step_product", spy)
    rng = np.random.default_rng(11)
    kernel = {"lstm": LSTM, "gru": GRU}[cell](4, reverse=reverse)
    x = rng.standard_normal((3, 5, 3))
    mask = make_mask([5, 3, 1], 5) if masked else None
    grad_check(kernel, [x], mask=mask, seed=3)
    assert packed and all(p is not None for p in packed)


@pytest.fixture
def background_products(monkeypatch):
    """rnn backward's products over all steps made on a second thread (as with MKL
    and two threads), in chunks of two steps of the small test sizes."""
    from specc.backend.numpy import rnn

    monkeypatch.setattr(blas, "MIN_WORK", 0)
    monkeypatch.setattr(blas, "GEMM_MIN_WORK", 0)
    monkeypatch.setattr(blas, "_THREADS", 2)
    monkeypatch.setattr(rnn, "BACKGROUND_MIN_WORK", 0)
    monkeypatch.setattr(rnn, "BACKGROUND_CHUNK_ROWS", 2)
    monkeypatch.setattr(rnn, "BLOCK_SIZE", 1)  # one step per block of act'
    threads = []
    sequence_products = rnn.RNN._sequence_products

    def spy(*args):
        threads.append(threading.current_thread().name)
        sequence_products(*args)

    monkeypatch.setattr(rnn.RNN, "_sequence_products", staticmethod(spy))
    return threads


@RNN_LOOPS
def test_rnn_products_made_beside_the_loop_match_finite_differences(
    background_products, activation, slope, reverse, masked
):
    check_rnn_gradients(activation, slope, reverse, masked)
    assert len(background_products) > 1  # in chunks
    assert all(name.startswith("specc-helper") for name in background_products)


def test_training_with_products_beside_the_loop_is_deterministic(background_products):
    """Chunked products add up in a fixed order: the same numbers every time, and
    the plain path's up to rounding."""
    ids, targets = batch(3, vocab=13, b=4, t=9)
    grads = []
    for _ in range(2):
        net = char_rnn("float32", vocab=13)
        net.backward_flat({"chars": ids}, targets)
        grads.append(net.flat_grads.copy())
    np.testing.assert_array_equal(grads[0], grads[1])
    assert len(background_products) > 2
    blas._THREADS = 1  # the fixture restores it
    plain = char_rnn("float32", vocab=13)
    plain.backward_flat({"chars": ids}, targets)
    np.testing.assert_allclose(grads[0], plain.flat_grads, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_products_beside_the_loop_work_in_a_forked_child(background_products):
    """The helper thread does not survive a fork; a child must not wait on it."""
    ids, targets = batch(3, vocab=13, b=4, t=9)
    char_rnn("float32", vocab=13).backward_flat({"chars": ids}, targets)  # helper exists
    pid = os.fork()
    if pid == 0:  # the child: train a step, report through the exit status
        try:
            net = char_rnn("float32", vocab=13)
            net.backward_flat({"chars": ids}, targets)
            os._exit(0 if np.all(np.isfinite(net.flat_grads)) else 1)
        except BaseException:
            os._exit(2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on the parent's helper thread")


def test_dense_through_mkl_matches_finite_differences(mkl_for_everything):
    rng = np.random.default_rng(4)
    grad_check(Dense(3), [rng.standard_normal((2, 4, 5))], seed=4)
    grad_check(Dense(3, bias=False), [rng.standard_normal((3, 5))], seed=5)


def test_training_with_and_without_mkl_agrees(monkeypatch):
    """A few float32 char-rnn steps at a size where MKL runs the loops: the two
    libraries round differently, so the losses agree closely but not exactly."""

    from specc.backend.numpy import rnn

    used = []

    def spy(*args, **kwargs):
        product = blas.step_product(*args, **kwargs)
        used.append(product is not None)
        return product

    monkeypatch.setattr(rnn, "step_product", spy)

    def losses(lib) -> list[float]:
        monkeypatch.setattr(blas, "_LIB", lib)
        net = char_rnn("float32")
        out = []
        for seed in range(3):
            ids, targets = batch(seed)
            out.append(net.backward_flat({"chars": ids}, targets))
            net.flat_params -= 0.1 * net.flat_grads
        return out

    with_mkl = losses(blas._LIB)
    assert used and all(used)  # forward and backward loops both went to MKL
    used.clear()
    without = losses(None)
    assert used and not any(used)
    np.testing.assert_allclose(with_mkl, without, rtol=1e-4)
    assert with_mkl == losses(blas._LIB)  # and each is deterministic


def test_environment_variable_turns_mkl_off():
    code = "from specc.backend.numpy import blas; print(blas.name())"
    env = {**checkout_env(), "SPECC_BLAS": "numpy"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "numpy", out.stderr


# ----------------------------------------------------------------- guarded foreign calls

ROOT = Path(__file__).resolve().parent.parent
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run_python(code: str, *args: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter that imports this checkout, with no thread
    variables but those in ``env``, and return the JSON it prints last."""
    full = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    full.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=full, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_foreign_function_has_its_signature_declared(mkl_for_everything):
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):  # both gemms, through both entry points
        w = rng.standard_normal((4, 3)).astype(dtype)
        blas.gemm(np.ones((2, 4), dtype), w, np.empty((2, 3), dtype))
        product = blas.step_product(w, 2)
        src, dst = np.ones((1, 2, 4), dtype), np.empty((1, 2, 3), dtype)
        product(blas.row_addresses(src)[0], blas.row_addresses(dst)[0])
    lib = blas._LIB
    # ctypes keeps every function looked up on a CDLL as an attribute of it
    looked_up = {k: v for k, v in vars(lib).items() if isinstance(v, lib._FuncPtr)}
    declared = blas.SIGNATURES | blas.PACKED_SIGNATURES
    assert set(looked_up) == set(declared)
    for fn_name, (restype, argtypes) in declared.items():
        assert looked_up[fn_name].restype is restype, fn_name
        assert tuple(looked_up[fn_name].argtypes) == argtypes, fn_name
    assert {fn_name for fn_name, _, _ in blas._SCALARS.values()} <= set(blas.SIGNATURES)


def test_the_module_names_no_foreign_function_it_does_not_declare():
    """Also the calls no test reaches: every attribute taken of the library in the
    source is a declared function, or one of the CDLL's own."""
    tree = ast.parse(inspect.getsource(blas))
    named = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("lib", "_LIB")
    }
    assert named, "the scan found no use of the library: it needs updating"
    declared = set(blas.SIGNATURES) | set(blas.PACKED_SIGNATURES)
    assert named - {"_name", "_handle", "_FuncPtr"} <= declared
    assert {f for names in blas._PACK_ROUTINES.values() for f in names} <= declared


def test_a_wrong_argument_raises_instead_of_reaching_mkl():
    sgemm = blas._LIB.cblas_sgemm
    assert sgemm.argtypes is not None  # else the calls below would reach MKL
    a = np.ones((2, 2), np.float32)
    good = [101, 111, 111, 2, 2, 2, 1.0, a.ctypes.data, 2, a.ctypes.data, 2, 0.0, a.ctypes.data, 2]
    for at, wrong in ((3, 2.5), (7, a), (6, "one")):  # a float size, an array, a string
        args = [*good]
        args[at] = wrong
        with pytest.raises(ctypes.ArgumentError):
            sgemm(*args)
    with pytest.raises(TypeError):
        sgemm(*good[:-1])  # a missing argument


PRODUCTS = """
import json, sys
import numpy as np
from specc.backend.numpy import blas

blas.MIN_WORK = blas.GEMM_MIN_WORK = 0
blas._THREADS = 1
rng = np.random.default_rng(6)
worst = 0.0
for dtype in (np.float32, np.float64):
    for trans_a, trans_b in ((False, False), (True, False), (False, True)):
        m, k, n = 6, 5, 4  # operands with rows longer than their width
        a = rng.standard_normal((k, m + 3) if trans_a else (m, k + 3)).astype(dtype)
        a = a[:, :m] if trans_a else a[:, :k]
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        out = rng.standard_normal((m, n)).astype(dtype)
        want = (a.T if trans_a else a) @ (b.T if trans_b else b) + out
        blas.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b, accumulate=True)
        worst = max(worst, float(np.abs(out - want).max()))
    w = rng.standard_normal((7, 9)).astype(dtype)
    src, dst = rng.standard_normal((3, 5, 7)).astype(dtype), np.zeros((3, 5, 9), dtype)
    product = blas.step_product(w, 5)
    stepped = product is not None  # None: numpy's to make
    for s, d in zip(blas.row_addresses(src), blas.row_addresses(dst)):
        product(s, d) if stepped else None
    worst = max(worst, float(np.abs(dst - src @ w).max()) if stepped else 0.0)
print(json.dumps({"name": blas.name(), "stepped": stepped, "worst": worst}))
"""


@pytest.mark.parametrize("layer", ["ILP64", "GNU,ILP64"])
def test_an_ilp64_environment_cannot_reach_the_products(layer):
    """MKL_INTERFACE_LAYER=ILP64 would have MKL read each 32-bit size as 64 bits
    (a crash, before the layer was pinned): MKL still makes the products, right."""
    report = run_python(PRODUCTS, MKL_INTERFACE_LAYER=layer)
    assert report["name"] == "mkl" and report["stepped"]
    assert report["worst"] < 1e-5


def test_mkl_started_as_ilp64_before_specc_is_left_alone():
    """MKL takes its layer only before its first call: started by someone else
    first, it keeps ILP64, and numpy makes every product."""
    start_mkl_first = (
        "import ctypes, sys\n"
        "get = ctypes.CDLL(sys.argv[1]).MKL_Get_Max_Threads\n"
        "get.argtypes, get.restype = (), ctypes.c_int\n"
        "get()\n"
    )
    path = str(blas._library_path())
    report = run_python(start_mkl_first + PRODUCTS, path, MKL_INTERFACE_LAYER="ILP64")
    assert report["name"] == "numpy" and not report["stepped"]
    assert report["worst"] < 1e-5


THREADS = """
import json
from pathlib import Path
import threadpoolctl
from specc.backend.numpy import blas

ours = str(Path(blas._LIB._name).resolve())
mkl = [i for i in threadpoolctl.threadpool_info() if str(Path(i["filepath"]).resolve()) == ours]
print(json.dumps({"threads": blas.threads(), "numpy": blas.numpy_blas(), "mkl": mkl}))
"""
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.mark.parametrize(
    ("env", "openblas_threads"),
    [
        ({"OMP_NUM_THREADS": "1"}, 1),
        ({"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}, min(2, CPUS)),
        ({"MKL_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}, 1),  # not numpy's variable
        # None: as many as OpenBLAS found CPUs for (capped also by how it was built),
        # never more than asked for, as a reading of the variable would have said
        ({"OPENBLAS_NUM_THREADS": str(CPUS + 2)}, None),
        ({}, None),
    ],
)
def test_threads_are_what_numpys_blas_reports(env, openblas_threads):
    report = run_python(THREADS, **env)
    numpy_blas = report["numpy"]
    assert numpy_blas is not None, "threadpoolctl found no BLAS of numpy's"
    assert report["threads"] == numpy_blas["num_threads"]
    assert numpy_blas["filepath"] != blas._LIB._name  # not the MKL loaded for specc
    if numpy_blas["internal_api"] == "openblas":  # numpy's wheels
        if openblas_threads is None:
            assert 1 <= report["threads"] <= CPUS
        else:
            assert report["threads"] == openblas_threads
    # and the MKL loaded for specc runs one thread, whatever MKL_NUM_THREADS says
    assert [(i["threading_layer"], i["num_threads"]) for i in report["mkl"]] == [("sequential", 1)]


def test_threads_are_read_once_not_on_each_product(monkeypatch):
    """threadpoolctl takes milliseconds: the decisions use the count read at import."""

    def asked(*args, **kwargs):
        raise AssertionError("threadpoolctl asked in a product")

    monkeypatch.setattr(threadpoolctl, "threadpool_info", asked)
    monkeypatch.setattr(blas, "MIN_WORK", 0)
    monkeypatch.setattr(blas, "GEMM_MIN_WORK", 0)
    w = np.ones((300, 300), np.float32)
    for rows in (2, 64):  # one side of THREADED_WORK and the other
        blas.step_product(w, rows)
        blas.gemm(np.ones((rows, 300), np.float32), w, np.empty((rows, 300), np.float32))
    assert blas.threads() == blas._THREADS
