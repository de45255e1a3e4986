"""The products of a recurrence's time loop, through Intel MKL when the optional
``mkl`` package is installed (``pip install specc[mkl]``).

A recurrent layer multiplies a (batch, hidden) block by (hidden, hidden) once
per step, and every step waits for the one before, so these small products set
the pace of the whole layer. numpy multiplies with the OpenBLAS in its wheels,
which on this kind of product takes up to 1.6x as long as MKL on one thread.
MKL's ``cblas_?gemm`` called through ctypes also adds into its output
(``beta = 1``), which saves a step the separate pass that sums its two terms.

Only these loops go to MKL, single-threaded: the large whole-sequence
products stay with numpy's BLAS and the threads the user gave it, and so do
loop products big enough to gain from those threads (from about 4M
multiply-adds, e.g. batch 64 at hidden 256, two threads beat MKL's one).

Without the package, or with ``SPECC_BLAS=numpy`` in the environment, every
product is numpy's. The choice is made once, when specc is imported, so a
run's numbers depend only on its spec, its seed and the installation.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

_ROW_MAJOR, _NO_TRANS = 101, 111
_SEQUENTIAL = 1  # MKL_THREADING_SEQUENTIAL

#: Loops whose products have fewer multiply-adds than this stay with numpy:
#: below it, calling through ctypes costs about what MKL saves.
MIN_WORK = 1 << 15

#: With more than one BLAS thread, loop products with at least this many
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
    if os.environ.get("SPECC_BLAS", "").strip().lower() == "numpy":
        return None
    path = _library_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(str(path))
        lib.MKL_Set_Threading_Layer(ctypes.c_int(_SEQUENTIAL))
        for fn in (lib.cblas_sgemm, lib.cblas_dgemm):
            fn.restype = None
    except (OSError, AttributeError):
        return None
    return lib


def _numpy_blas_threads() -> int:
    """How many threads numpy's OpenBLAS runs, found the way it decides: the
    environment, else every CPU this process may use."""
    for var in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_LIB = _load()
_THREADS = _numpy_blas_threads()


def name() -> str:
    """Which library runs the loops' products: ``"mkl"`` or ``"numpy"``."""
    return "numpy" if _LIB is None else "mkl"


def step_product(w: np.ndarray, rows: int, *, accumulate: bool = False) -> StepProduct | None:
    """A function that computes ``dst = src @ w`` (``dst += ...`` with
    ``accumulate``) for C-ordered (rows, k) blocks ``src`` and (rows, n) blocks ``dst`` at the given
    addresses (see `row_addresses`).

    ``None`` when numpy should do the product instead: no MKL, a dtype it does
    not cover, a ``w`` that is not C-ordered, too little work to gain, or work
    that numpy's threads split faster.
    The caller must not change ``w`` while it uses the function.
    """
    if _LIB is None or w.ndim != 2 or not w.flags.c_contiguous:
        return None
    if w.dtype == np.float32:
        gemm, scalar = _LIB.cblas_sgemm, ctypes.c_float
    elif w.dtype == np.float64:
        gemm, scalar = _LIB.cblas_dgemm, ctypes.c_double
    else:
        return None
    k, n = w.shape
    work = rows * k * n
    if work < MIN_WORK or (_THREADS > 1 and work >= THREADED_WORK):
        return None
    w_at = ctypes.c_void_p(w.ctypes.data)
    alpha, beta = scalar(1.0), scalar(1.0 if accumulate else 0.0)

    def product(src: ctypes.c_void_p, dst: ctypes.c_void_p) -> None:
        gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, rows, n, k, alpha, src, k, w_at, n, beta, dst, n)

    product.weights = w  # type: ignore[attr-defined]  # keeps the address valid
    return product


def row_addresses(a: np.ndarray) -> list[ctypes.c_void_p]:
    """The address of each ``a[i]`` of a C-ordered array, for a `step_product`."""
    if not a.flags.c_contiguous:
        raise ValueError("row_addresses needs a C-ordered array")
    base, stride = a.ctypes.data, a.strides[0]
    return [ctypes.c_void_p(base + i * stride) for i in range(a.shape[0])]


def describe() -> dict[str, Any]:
    """What runs the loops' products, for the benchmark's report."""
    path = _library_path() if _LIB is not None else None
    return {"loop_products": name(), "library": None if path is None else str(path)}
