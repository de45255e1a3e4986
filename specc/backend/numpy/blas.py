"""Matrix products through Intel MKL when the optional ``mkl`` package is
installed (``pip install specc[mkl]``), numpy's otherwise.

A recurrent layer multiplies a (batch, hidden) block by (hidden, hidden) once
per step, and every step waits for the one before, so these small products set
the pace of the whole layer. numpy multiplies with the OpenBLAS in its wheels,
which on this kind of product takes up to 1.6x as long as MKL on one thread.
MKL's ``cblas_?gemm``, called through ctypes, also adds into its output
(``beta = 1``): a step needs no pass to sum its two terms, and a weight
gradient no temporary of the weight's size. `step_product` serves the loops,
`gemm` the products over a whole sequence (about 6% faster on one thread).
`packed_step_product` serves loops that multiply by one weight many times
(the lstm's and gru's): MKL packs the weight once (``?gemm_pack``) instead of
reordering it inside every gemm; the packed copy takes the weight's size plus
about 8 MB that this MKL asks for whatever the size.

MKL runs single-threaded. When numpy's BLAS has several threads, products big
enough to gain from them stay with numpy (from about 4M multiply-adds: at
batch 64 and hidden 256, two OpenBLAS threads beat one MKL thread), except
on a thread that runs beside another one's products (`serial`). Products too
small for MKL to win back what a ctypes call costs stay with numpy too.

Without the package, or with ``SPECC_BLAS=numpy`` in the environment, every
product is numpy's. Which library does a product depends only on its sizes,
the installation and the thread settings, never on timings, so a run's
numbers are the same every time.

Calls into MKL are guarded: every foreign function has its C signature
declared before its first call (`SIGNATURES`), so a wrong argument raises
instead of reaching MKL, and MKL is pinned to 32-bit integers (LP64) before
its first product, whatever ``MKL_INTERFACE_LAYER`` says. How many threads
numpy's BLAS runs is what that library reports through threadpoolctl, read
once at import.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import threadpoolctl

_INT, _PTR = ctypes.c_int, ctypes.c_void_p  # MKL_INT is a C int in the LP64 interface

# The enums cblas takes, made once: ctypes passes an instance of the declared
# type through unconverted, where a Python int would cost a conversion per call.
_ROW_MAJOR, _NO_TRANS, _TRANS = _INT(101), _INT(111), _INT(112)
_SEQUENTIAL = 1  # MKL_THREADING_SEQUENTIAL
_LP64, _ILP64 = 0, 1  # MKL_INTERFACE_LP64, MKL_INTERFACE_ILP64

#: The largest size or leading dimension MKL takes as a 32-bit MKL_INT. ctypes
#: wraps a larger Python int silently, so products past it stay with numpy.
MKL_INT_MAX = (1 << 31) - 1


def _gemm_signature(scalar: type) -> tuple[None, tuple[type, ...]]:
    """``cblas_?gemm(layout, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta,
    c, ldc)`` returning void, with ``scalar`` the C type of alpha and beta."""
    layout_and_sizes = (_INT,) * 6  # layout, transa, transb, m, n, k
    return None, (*layout_and_sizes, scalar, _PTR, _INT, _PTR, _INT, scalar, _PTR, _INT)


#: Every function of MKL this module calls: its result type and argument types,
#: declared before the first call so that ctypes checks each call's arguments
#: (an argument of the wrong type raises ``ctypes.ArgumentError``) instead of
#: handing MKL whatever bits the argument happens to have.
SIGNATURES: dict[str, tuple[type | None, tuple[type, ...]]] = {
    "MKL_Set_Interface_Layer": (_INT, (_INT,)),
    "MKL_Set_Threading_Layer": (_INT, (_INT,)),
    "cblas_sgemm": _gemm_signature(ctypes.c_float),
    "cblas_dgemm": _gemm_signature(ctypes.c_double),
}


def _compute_signature(scalar: type) -> tuple[None, tuple[type, ...]]:
    """``cblas_?gemm_compute(layout, transa, transb, m, n, k, a, lda, b, ldb, beta, c,
    ldc)`` returning void: a gemm whose ``b`` (transb = packed) `PACKED` laid out."""
    return None, (*(_INT,) * 6, _PTR, _INT, _PTR, _INT, scalar, _PTR, _INT)


#: MKL's packed products, declared as `SIGNATURES` is: ``?gemm_pack`` lays a weight
#: out once in the order its kernel reads it, ``?gemm_compute`` multiplies by that
#: copy. Loaded only if every one is there (older MKLs lack them): not needed.
PACKED_SIGNATURES: dict[str, tuple[type | None, tuple[type, ...]]] = {
    "cblas_sgemm_pack_get_size": (ctypes.c_size_t, (_INT,) * 4),
    "cblas_dgemm_pack_get_size": (ctypes.c_size_t, (_INT,) * 4),
    "cblas_sgemm_pack": (None, (*(_INT,) * 6, ctypes.c_float, _PTR, _INT, _PTR)),
    "cblas_dgemm_pack": (None, (*(_INT,) * 6, ctypes.c_double, _PTR, _INT, _PTR)),
    "cblas_sgemm_compute": _compute_signature(ctypes.c_float),
    "cblas_dgemm_compute": _compute_signature(ctypes.c_double),
}

#: Loops whose products have fewer multiply-adds than this stay with numpy:
#: below it, calling through ctypes costs about what MKL saves.
MIN_WORK = 1 << 15

#: Whole-sequence products below this many multiply-adds stay with numpy: for
#: them the three array addresses ctypes needs (about 1.2 µs each) cost more
#: than MKL saves.
GEMM_MIN_WORK = 1 << 20

#: With more than one BLAS thread, products with at least this many
#: multiply-adds stay with numpy: its threads split them faster than MKL's one.
THREADED_WORK = 1 << 22

#: A loop product: ``dst (+)= src @ W`` with W fixed, on row blocks given by address.
StepProduct = Callable[[ctypes.c_void_p, ctypes.c_void_p], None]


def _library_path() -> Path | None:
    """Where the ``mkl`` wheel put its single dynamic library, if it is installed."""
    try:
        files = metadata.distribution("mkl").files or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name.startswith("libmkl_rt.so"):
            return Path(str(f.locate())).resolve()
    return None


def _load() -> ctypes.CDLL | None:
    """MKL's library with `SIGNATURES` declared and its layers set, or ``None``
    when it is absent, turned off, or already running with 64-bit integers."""
    if os.environ.get("SPECC_BLAS", "").strip().lower() == "numpy":
        return None
    path = _library_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(str(path))
        for fn_name, (restype, argtypes) in SIGNATURES.items():
            fn = getattr(lib, fn_name)
            fn.restype, fn.argtypes = restype, argtypes
        # MKL takes both layers only before any other of its calls, and either setter
        # answers with the layer in force. An ILP64 layer (from MKL_INTERFACE_LAYER,
        # taken when someone else started MKL first) would read each 32-bit int this
        # module passes as 64 bits: wrong sizes, wild memory. Then numpy does it all.
        if lib.MKL_Set_Interface_Layer(_LP64) & _ILP64:
            return None
        lib.MKL_Set_Threading_Layer(_SEQUENTIAL)
    except (OSError, AttributeError):
        return None
    return lib


def _in_numpy(path: Path, numpy_dir: Path) -> bool:
    """Whether a library ships inside numpy's own installation, as its wheels'
    BLAS does (``numpy.libs/`` beside the package, or ``numpy/.dylibs/``)."""
    return path.is_relative_to(numpy_dir) or path.parent == numpy_dir.with_name("numpy.libs")


def numpy_blas() -> dict[str, Any] | None:
    """threadpoolctl's report on the BLAS that numpy multiplies with (its
    ``internal_api``, ``version``, ``num_threads``...), or ``None`` if it sees none.

    Asked of the library itself, so it counts threads as the library decided
    them (its environment variables, capped at the CPUs it found), not as a
    reading of the variables would guess. MKL loaded here is not numpy's: the
    BLAS inside numpy's installation is, else the one other BLAS loaded, else
    the one with most threads. Each call asks again (milliseconds): not for a
    hot path.
    """
    ours = None if _LIB is None else Path(_LIB._name).resolve()
    numpy_dir = Path(np.__file__).resolve().parent
    found = []
    for info in threadpoolctl.threadpool_info():
        path = Path(info.get("filepath", "")).resolve()
        if info.get("user_api") != "blas" or path == ours:
            continue
        if _in_numpy(path, numpy_dir):
            return info
        found.append(info)
    return max(found, key=lambda info: info.get("num_threads", 1), default=None)


def _numpy_blas_threads() -> int:
    """How many threads numpy's BLAS runs (see `numpy_blas`). 1 when none other
    than the MKL loaded here is found: numpy then multiplies with no BLAS, or
    with this very MKL, which runs sequentially."""
    info = numpy_blas()
    return max(int(info.get("num_threads") or 1), 1) if info else 1


def _declare_packed(lib: ctypes.CDLL | None) -> bool:
    """Declare `PACKED_SIGNATURES` on ``lib``; whether it has them all."""
    if lib is None:
        return False
    try:
        for fn_name, (restype, argtypes) in PACKED_SIGNATURES.items():
            fn = getattr(lib, fn_name)
            fn.restype, fn.argtypes = restype, argtypes
    except AttributeError:
        return False
    return True


_LIB = _load()
_PACKED = _declare_packed(_LIB)
_THREADS = _numpy_blas_threads()  # read once: `threads` and every decision use this
_local = threading.local()


def name() -> str:
    """Which library makes the products it can: ``"mkl"`` or ``"numpy"``."""
    return "numpy" if _LIB is None else "mkl"


#: For each dtype MKL multiplies: its gemm's name, and alpha/beta 0 and 1 made
#: once in the gemm's scalar type (passed through by ctypes unconverted).
_SCALARS = {
    np.dtype(np.float32): ("cblas_sgemm", ctypes.c_float(0.0), ctypes.c_float(1.0)),
    np.dtype(np.float64): ("cblas_dgemm", ctypes.c_double(0.0), ctypes.c_double(1.0)),
}


def _routine(dtype: np.dtype) -> tuple[Any, Any, Any] | None:
    """MKL's gemm for ``dtype`` and its scalars 0 and 1, or ``None``."""
    if _LIB is None or dtype not in _SCALARS:
        return None
    fn_name, zero, one = _SCALARS[dtype]
    return getattr(_LIB, fn_name), zero, one


def threads() -> int:
    """How many threads numpy's BLAS runs, and so how many specc may keep busy."""
    return _THREADS


def _mkl_makes(work: int, least: int) -> bool:
    """The rule for every product of ``work`` multiply-adds: MKL, if installed, from
    ``least`` on, unless numpy's BLAS threads split it faster (and this thread is
    not `serial`)."""
    return (
        _LIB is not None
        and work >= least
        and (_THREADS == 1 or work < THREADED_WORK or getattr(_local, "serial", False))
    )


def takes_step(work: int) -> bool:
    """Whether MKL makes a loop's product of ``work`` multiply-adds (see `step_product`)."""
    return _mkl_makes(work, MIN_WORK)


@contextmanager
def serial() -> Iterator[None]:
    """Within this block, on this thread, MKL makes every product it can, on one thread
    however large: for a thread that runs beside another one's products."""
    before = getattr(_local, "serial", False)
    _local.serial = True
    try:
        yield
    finally:
        _local.serial = before


# ----- the helper thread: products beside a loop ---------------------------------------

_helper: ThreadPoolExecutor | None = None
_helper_lock = threading.Lock()


def _forget_helper() -> None:
    """A forked child has no copy of the helper's thread: it makes its own."""
    global _helper, _helper_lock
    _helper, _helper_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helper)


def _serially(fn: Callable[..., None], *args: Any) -> None:
    with serial():  # one MKL thread here; the loop's thread uses the other
        fn(*args)


def runs_beside(step_work: int) -> bool:
    """Whether products may run on the helper thread beside a loop whose own products
    are of ``step_work`` multiply-adds: with MKL and two threads or more, when those
    products are too small to use both threads themselves."""
    return name() == "mkl" and threads() > 1 and step_work < THREADED_WORK


def beside(fn: Callable[..., None], *args: Any) -> Future[None]:
    """Run ``fn(*args)`` on specc's one helper thread, its products on one MKL thread,
    while the caller goes on (the rnn's products over the steps BPTT is done with)."""
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="specc-helper")
        return _helper.submit(_serially, fn, *args)


def step_product(w: np.ndarray, rows: int, *, accumulate: bool = False) -> StepProduct | None:
    """A function that computes ``dst = src @ w`` (``dst += ...`` with
    ``accumulate``) for C-ordered (rows, k) blocks ``src`` and (rows, n) blocks
    ``dst`` at the given addresses (see `row_addresses`): the loops' products.

    ``None`` when numpy should do the product instead: no MKL, a dtype it does
    not cover, a ``w`` that is not C-ordered, too little work to gain, or work
    that numpy's threads split faster. The caller must not change ``w`` while
    it uses the function.
    """
    routine = _routine(w.dtype)
    if routine is None or w.ndim != 2 or not w.flags.c_contiguous:
        return None
    gemm, zero, one = routine
    k, n = w.shape
    if not takes_step(rows * k * n) or max(rows, k, n) > MKL_INT_MAX:
        return None
    w_at = ctypes.c_void_p(w.ctypes.data)
    beta = one if accumulate else zero
    # Made once as ctypes ints, which the declared signature takes without a conversion:
    # a loop calls this once a step, and converting nine Python ints costs ~0.5 us a call.
    m_, n_, k_ = _INT(rows), _INT(n), _INT(k)

    def product(src: ctypes.c_void_p, dst: ctypes.c_void_p) -> None:
        gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m_, n_, k_, one, src, k_, w_at, n_, beta, dst, n_)

    product.weights = w  # type: ignore[attr-defined]  # keeps the address valid
    return product


#: Loops of fewer rows than this multiply by the weight as it is: packing pays off
#: once MKL would otherwise reorder the weight at every step of a batch.
PACK_MIN_ROWS = 8

#: CBLAS_IDENTIFIER for the right-hand matrix, and CBLAS_STORAGE for a packed one.
_B_MATRIX, _PACKED_B = _INT(162), _INT(151)
_ALIGN = 64  # bytes: where a packed weight starts in the buffer it is given
#: Per dtype: how big a packed weight is, how to pack it, how to multiply by it.
_PACK_ROUTINES = {
    np.dtype(np.float32): ("cblas_sgemm_pack_get_size", "cblas_sgemm_pack", "cblas_sgemm_compute"),
    np.dtype(np.float64): ("cblas_dgemm_pack_get_size", "cblas_dgemm_pack", "cblas_dgemm_compute"),
}


def packed_step_product(
    w: np.ndarray, rows: int, buffer: Callable[[int], np.ndarray], *, accumulate: bool = False
) -> StepProduct | None:
    """`step_product` with ``w`` packed once by MKL (``?gemm_pack``) into memory from
    ``buffer(nbytes)`` (a C-ordered uint8 array the caller keeps while it uses the
    function): a loop of many products by one weight then skips the copy of ``w``
    that MKL's gemm makes at every call. ``None`` where `step_product` would not use
    MKL, where this MKL cannot pack, or for fewer than `PACK_MIN_ROWS` rows.

    The packed copy is of ``w`` as it is now: changing ``w`` afterwards changes
    nothing the function computes.
    """
    routine = _routine(w.dtype)
    if not _PACKED or routine is None or rows < PACK_MIN_ROWS or w.ndim != 2:
        return None
    k, n = w.shape
    if not takes_step(rows * k * n) or max(rows, k, n) > MKL_INT_MAX:
        return None
    get_size, pack, compute = (getattr(_LIB, f) for f in _PACK_ROUTINES[w.dtype])
    _, zero, one = routine
    m_, n_, k_ = _INT(rows), _INT(n), _INT(k)
    size = int(get_size(_B_MATRIX, m_, n_, k_))
    raw = buffer(size + _ALIGN)
    start = (-raw.ctypes.data) % _ALIGN
    dest = raw[start : start + size]
    src = np.ascontiguousarray(w)
    pack(_ROW_MAJOR, _B_MATRIX, _NO_TRANS, m_, n_, k_, one, src.ctypes.data, n_, dest.ctypes.data)
    dest_at = ctypes.c_void_p(dest.ctypes.data)
    beta = one if accumulate else zero

    def product(src_at: ctypes.c_void_p, dst_at: ctypes.c_void_p) -> None:
        compute(_ROW_MAJOR, _NO_TRANS, _PACKED_B, m_, n_, k_, src_at, k_, dest_at, n_, beta,
                dst_at, n_)  # fmt: skip

    product.weights = raw  # type: ignore[attr-defined]  # keeps the packed copy alive
    return product


def _leading(a: np.ndarray) -> int:
    """BLAS leading dimension of a 2-D array with contiguous rows, or 0 if it has none."""
    item = a.itemsize
    if a.ndim != 2 or a.strides[1] != item or a.strides[0] % item or a.strides[0] < 0:
        return 0
    return max(a.strides[0] // item, a.shape[1], 1)


def gemm(
    a: np.ndarray,
    b: np.ndarray,
    out: np.ndarray,
    *,
    trans_a: bool = False,
    trans_b: bool = False,
    accumulate: bool = False,
) -> None:
    """``out = op(a) @ op(b)`` (``out += ...`` with ``accumulate``) for 2-D arrays,
    ``op`` transposing when asked: the whole-sequence products.

    MKL reads the transposes in place and accumulates without a temporary, so
    a weight gradient costs no array of the weight's size. The same rule as
    `step_product` decides between MKL and numpy.
    """
    m = a.shape[1] if trans_a else a.shape[0]
    k = a.shape[0] if trans_a else a.shape[1]
    n = b.shape[0] if trans_b else b.shape[1]
    work = m * n * k
    routine = lda = ldb = ldc = 0
    # The cheap tests first: small products, the common case at batch 1, pay for no more.
    if _mkl_makes(work, GEMM_MIN_WORK):
        routine = _routine(out.dtype) if a.dtype == b.dtype == out.dtype else None
        lda, ldb, ldc = _leading(a), _leading(b), _leading(out)
    if not (routine and lda and ldb and ldc) or max(m, n, k, lda, ldb, ldc) > MKL_INT_MAX:
        lhs = a.T if trans_a else a
        rhs = b.T if trans_b else b
        if trans_b and work >= GEMM_MIN_WORK:
            # OpenBLAS is slower on a transposed right operand; below this size the
            # copy costs about what it saves, and memory of the weight's size.
            rhs = np.ascontiguousarray(rhs)
        if accumulate:
            out += lhs @ rhs
        else:
            np.matmul(lhs, rhs, out=out)
        return
    fn, zero, one = routine
    fn(
        _ROW_MAJOR,
        _TRANS if trans_a else _NO_TRANS,
        _TRANS if trans_b else _NO_TRANS,
        m,
        n,
        k,
        one,
        a.ctypes.data,
        lda,
        b.ctypes.data,
        ldb,
        one if accumulate else zero,
        out.ctypes.data,
        ldc,
    )


def row_addresses(a: np.ndarray) -> list[ctypes.c_void_p]:
    """The address of each ``a[i]`` of a C-ordered array, for a `step_product`."""
    if not a.flags.c_contiguous:
        raise ValueError("row_addresses needs a C-ordered array")
    base, stride = a.ctypes.data, a.strides[0]
    return [ctypes.c_void_p(base + i * stride) for i in range(a.shape[0])]
