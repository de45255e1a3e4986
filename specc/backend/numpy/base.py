"""The contract every op kernel of the fast backend honours, and helpers they share.

A kernel is built once per node of the compiled graph from the IR node itself
(`Kernel(node, sizes, dtype)`), and is then driven by the executor through
forward and backward. What parameters and buffers an op has, and how they
start, is the op's declaration (specc.ir.ops), not the kernel's: the
executor allocates them from the IR. Forward and backward live side by side
in each op so a reader can check one against the other without jumping
between files; specc.backend.reference holds the plainer reading copy.

Called directly, a kernel never modifies its inputs, ``dy`` or its cache. The
executor's fast path adds promises (``inplace``), a `BufferPool`, and token
layouts (`token_rows`): all of it exists for speed and none of it changes a
result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from specc.ir.ops import NodeBase, Shape

Params = dict[str, np.ndarray]
Shapes = list[tuple[int, ...]]

#: Arrays smaller than this (in elements) bypass the pool: malloc serves them from
#: memory it already holds, and the bookkeeping would cost more than it saves.
POOL_MIN_SIZE = 1 << 15


class Kernel:
    """Base class for op kernels; the defaults describe an op with nothing to learn.

    ``backward`` *accumulates* into ``grads`` (``grads[k] += ...``) rather than
    returning fresh arrays, because the executor hands out views into a single
    flat gradient buffer and a caller may sum several backward passes there.
    ``grads`` must hold an array for every parameter the op declares.

    A subclass reads its arguments off ``node`` in its constructor (the one
    place a kernel turns IR fields into what its loops use).
    """

    def __init__(
        self, node: NodeBase, sizes: Mapping[str, int] | None = None, dtype: Any = np.float32
    ) -> None:
        self.node = node
        self.sizes = dict(sizes or {})
        self.dtype = float_dtype(dtype)

    #: True when ``forward`` always returns a new array that its cache does not hold,
    #: so the executor may let the next op (or the loss) overwrite it.
    fresh_output: bool = False
    #: Where big arrays come from and dead ones go (the executor sets one pool for all
    #: its kernels); ``None`` means plain ``np.empty`` and nothing is kept.
    _pool: BufferPool | None = None

    def _empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A new uninitialised array, recycled from the pool when one is set."""
        if self._pool is None or math.prod(shape) < POOL_MIN_SIZE:
            return np.empty(shape, dtype)
        return self._pool.empty(shape, dtype)

    def _empty_like(self, a: np.ndarray) -> np.ndarray:
        """A new array of ``a``'s shape and dtype, time-major if ``a`` is."""
        if is_time_major(a):
            b, t, n = a.shape
            return self._empty((t, b, n), a.dtype).transpose(1, 0, 2)
        return self._empty(a.shape, a.dtype)

    def _kept(self, key: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A scratch array this kernel keeps between calls under ``key`` (never handed
        out, never pooled): for small temporaries that every call needs again."""
        kept = self.__dict__.setdefault("_kept_arrays", {})
        buf = kept.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = kept[key] = np.empty(shape, dtype)
        return buf

    def _recycle(self, *arrays: np.ndarray | None) -> None:
        """Hand arrays nobody will read again back to the pool (see `BufferPool.give`)."""
        if self._pool is not None:
            for a in arrays:
                if a is not None and a.size >= POOL_MIN_SIZE:
                    self._pool.give(a)

    # The op's declaration, bound to concrete input feature dims: for a kernel used on
    # its own (tests, benchmarks). The executor reads the same declaration off the IR.

    def param_shapes(self, in_shapes: Shapes) -> dict[str, tuple[int, ...]]:
        """Shapes of the trainable parameters, given per-example input feature dims."""
        return self._bound(self.node.param_shapes(_feature_shapes(in_shapes)))

    def state_shapes(self, in_shapes: Shapes) -> dict[str, tuple[int, ...]]:
        """Shapes of the non-trainable buffers (e.g. running statistics)."""
        return self._bound(self.node.state_shapes(_feature_shapes(in_shapes)))

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.node.param_shapes(_feature_shapes([(1,)])))

    def init_params(self, in_shapes: Shapes, rng: np.random.Generator, dtype: Any) -> Params:
        """Fresh trainable parameters; ``rng`` is the only source of randomness."""
        shapes = self.param_shapes(in_shapes)
        return self.node.init_params(shapes, rng, float_dtype(dtype))

    def init_state(self, in_shapes: Shapes, dtype: Any) -> Params:
        """Fresh buffers; deterministic, so a reset never depends on a seed."""
        return self.node.init_state(self.state_shapes(in_shapes), float_dtype(dtype))

    def _size(self, value: int | str) -> int:
        """A size argument of the node, bound: a number, or a symbol such as vocab."""
        return self.sizes[value] if isinstance(value, str) else int(value)

    def _bound(self, shapes: dict[str, tuple]) -> dict[str, tuple[int, ...]]:
        return {
            k: tuple(self.sizes[d] if isinstance(d, str) else d for d in v)
            for k, v in shapes.items()
        }

    def forward(
        self,
        params: Params,
        state: Params,
        xs: list[np.ndarray],
        mask: np.ndarray | None,
        train: bool,
        rng: np.random.Generator,
        inplace: bool = False,
    ) -> tuple[np.ndarray, Any]:
        """Return ``(output, cache)``; the cache keeps only what backward needs.

        ``inplace=True`` is the executor's promise that nothing else reads
        ``xs[0]`` any more, so the kernel may overwrite it (even return it).
        """
        raise NotImplementedError

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
    ) -> list[np.ndarray | None]:
        """Accumulate parameter gradients into ``grads``; return one gradient per input.

        ``inplace=True`` is the executor's promise that ``dy`` and ``cache`` are
        used by nobody after this call, so the kernel may overwrite both. Without
        it (the default, and what direct callers get) neither is modified, and the
        same cache may be run backward again.

        ``fresh_grads=True`` promises that ``grads`` hold zeros, so writing a
        gradient is the same as adding it: a product can land in the gradient
        itself, where adding would first build a temporary of the weight's size.
        """
        raise NotImplementedError

    def release(self, cache: Any) -> None:
        """The executor drops ``cache`` unused (a forward without backward): give back
        the arrays in it that this kernel alone allocated."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.node.op}: {self.node.name})"


def _feature_shapes(in_shapes: Shapes) -> list[Shape]:
    """Per-example feature dims as IR shapes: () is token ids, (n,) a sequence of n."""
    return [
        Shape(dims=("B", "T", *dims), ids=not dims) if len(dims) <= 1 else Shape(dims=dims)
        for dims in in_shapes
    ]


class BufferPool:
    """Arrays known to be dead, kept by (size, dtype) to be handed out again.

    A training step allocates the same big arrays every time; fresh memory costs
    a page fault per 4 KiB on first touch, which is a large share of a NumPy
    step. Kernels therefore take their big outputs and scratch arrays from the
    executor's pool and, where they can prove it, give dead ones back.

    The rule that makes this safe: ``give`` only what nobody holds or will
    read: a kernel's own scratch at once, and its cache or ``dy`` only in a
    backward the executor marked ``inplace`` (which promises that no one else
    uses them). An array taken from the pool has left it, so a caller may keep
    it forever: outputs returned to users are never overwritten.
    """

    def __init__(self, limit_bytes: int = 1 << 30) -> None:
        self.limit_bytes = limit_bytes
        self._free: dict[tuple[int, str], list[np.ndarray]] = {}
        self._ids: set[int] = set()
        self._bytes = 0

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        dt = np.dtype(dtype)
        size = 1
        for d in shape:
            size *= int(d)
        free = self._free.get((size, dt.str))
        if not free:
            return np.empty(shape, dt)
        base = free.pop()
        self._ids.discard(id(base))
        self._bytes -= base.nbytes
        return base.reshape(shape)

    def give(self, a: np.ndarray | None) -> None:
        """Take back an array (or a view covering all of its buffer) that is dead."""
        if a is None:
            return
        root = a
        while isinstance(root.base, np.ndarray):
            root = root.base
        if (
            root.base is not None  # memory owned by something that is not an array
            or root.size != a.size  # a part of a larger buffer: the rest may be alive
            or root.size < POOL_MIN_SIZE  # small arrays are cheap to allocate
            or not root.flags.c_contiguous
            or not root.flags.writeable
            or id(root) in self._ids
        ):
            return
        if self._bytes + root.nbytes > self.limit_bytes:
            self.clear()
        self._free.setdefault((root.size, root.dtype.str), []).append(root)
        self._ids.add(id(root))
        self._bytes += root.nbytes

    def clear(self) -> None:
        self._free.clear()
        self._ids.clear()
        self._bytes = 0


def feature_dim(in_shapes: Shapes, index: int = 0) -> int:
    """Last-axis size of one input: the only input dimension a kernel's parameters depend on."""
    shape = in_shapes[index]
    if not shape:
        raise ValueError(f"input {index} has no feature axis (shape {shape!r})")
    return int(shape[-1])


def float_dtype(dtype: Any) -> np.dtype:
    """Normalise a dtype request, refusing non-float types that would break gradients."""
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"kernels compute in floating point, got dtype {dt}")
    return dt


def positional_weights(
    mask: np.ndarray | None, x: np.ndarray, time_major: bool = False
) -> np.ndarray | None:
    """Mask as a ``(B*T, 1)`` column in ``x``'s dtype, for ops that flatten batch and time.

    Only inputs with a time axis ``(B, T, N)`` are masked; for ``(B, N)`` the
    mask (if any) does not apply and ``None`` is returned. ``time_major``
    orders the rows t-major, matching `token_rows` of a time-major array.
    """
    if mask is None or x.ndim != 3:
        return None
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match input {x.shape[:2]}")
    m = mask.T if time_major else mask
    return m.reshape(-1, 1).astype(x.dtype, copy=False)


# ----- token layouts ------------------------------------------------------------------
#
# A (B, T, N) value is either batch-major (C-contiguous) or, as the rnn returns
# it, time-major: a (B, T, N) view of (T, B, N) data, whose tokens are rows of a
# (T*B, N) matrix without any copy (the rows may be spaced further apart than N).
# Per-token ops work on that matrix and return their result in the same layout,
# so no op ever transposes batch and time.


def is_time_major(a: np.ndarray) -> bool:
    """Whether ``a`` is a (B, T, N) view of time-major data that `token_rows` reads in place."""
    if a.ndim != 3 or a.flags.c_contiguous:
        return False
    s0, s1, s2 = a.strides
    return s2 == a.itemsize and s0 >= a.shape[2] * s2 and s1 == a.shape[0] * s0


def token_rows(a: np.ndarray, time_major: bool | None = None) -> tuple[np.ndarray, bool]:
    """The tokens of ``a`` as a 2-D (tokens, N) matrix, and whether they are t-major.

    Without a copy for batch-major and time-major arrays. ``time_major`` forces
    an order (copying if ``a`` is laid out otherwise), so a gradient can be read
    in the order of the activation it belongs to.
    """
    if time_major is None:
        time_major = is_time_major(a)
    if time_major and a.ndim == 3:
        t = a.transpose(1, 0, 2)
        if not is_time_major(a):
            t = np.ascontiguousarray(t)
        return t.reshape(-1, a.shape[2]), True
    return a.reshape(-1, a.shape[-1]), False


def from_rows(rows: np.ndarray, shape: tuple[int, ...], time_major: bool) -> np.ndarray:
    """Rows of a per-token result back as (..., M), in the layout they were read in."""
    m = rows.shape[-1]
    if time_major:
        return rows.reshape(shape[1], shape[0], m).transpose(1, 0, 2)
    return rows.reshape(*shape[:-1], m)


_ONES: dict[tuple[int, str], np.ndarray] = {}
_ONES_BY_DTYPE: dict[tuple[int, np.dtype], np.ndarray] = {}


def ones(n: int, dtype: Any) -> np.ndarray:
    """A read-only vector of ones, shared: ``ones(n) @ a`` sums the rows of a 2-D ``a``.

    A matrix-vector product sums columns several times faster than
    ``a.sum(axis=0)`` on row-major data, and stays in ``a``'s dtype.
    """
    key = (int(n), np.dtype(dtype).str)
    v = _ONES.get(key)
    if v is None:
        if len(_ONES) > 64:
            _ONES.clear()
            _ONES_BY_DTYPE.clear()
        v = np.ones(key[0], dtype=key[1])
        v.flags.writeable = False
        _ONES[key] = v
    return v


# Largest spread of values for which one shift (the global max) keeps every exp
# in a softmax a normal float: exp(-60) in float32 and exp(-600) in float64 are
# far above the smallest normal number. Wider spreads use the per-row max.
_SHIFT_SPREAD = {np.dtype(np.float32): 60.0, np.dtype(np.float64): 600.0}


def softmax_shift(x: np.ndarray) -> np.ndarray | np.generic | None:
    """What to subtract from ``x`` before exp in a softmax over the last axis
    (``None``: nothing).

    Any per-row constant gives the same softmax; it must only keep exp from
    overflowing and keep each row's largest term from underflowing. The global
    max does both when the values span less than `_SHIFT_SPREAD` (two cheap full
    reductions instead of a much slower per-row one), and when they also lie
    near zero no shift is needed at all, which saves a pass.
    """
    if x.size < 4096:  # small: one row-wise reduction costs less than two full ones
        return x.max(axis=-1, keepdims=True)
    top = x.max()
    spread = _SHIFT_SPREAD.get(x.dtype)
    if spread is not None and top - x.min() <= spread:
        # No shift at all when exp(x) itself can neither overflow (top <= 80) nor
        # lose a row's largest term (every row max is >= top - spread >= -80).
        return None if -20.0 <= top <= 80.0 else top
    return x.max(axis=-1, keepdims=True)


#: Chains of elementwise operations over big arrays run a block of rows at a time,
#: so each block stays in cache between the operations (elements per block).
BLOCK_SIZE = 1 << 16


def ids_in_range(ids: np.ndarray, n: int) -> bool:
    """Whether every integer id lies in [0, n), with one reduction: viewed as the
    unsigned type of its size (no copy), a negative id is larger than any n."""
    if not ids.size:
        return True
    if ids.dtype.kind == "i":
        ids = ids.view(np.dtype(f"u{ids.dtype.itemsize}"))
    return bool(ids.max() < n)


def row_blocks(rows: int, cols: int) -> list[slice]:
    """Slices of rows covering ``rows`` in blocks of about `BLOCK_SIZE` elements."""
    step = max(1, BLOCK_SIZE // max(cols, 1))
    if rows <= step:
        return [slice(0, rows)]
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


def colsum(a: np.ndarray) -> np.ndarray:
    """Sum over the rows of a 2-D array (one value per column), as a BLAS matrix-vector product."""
    v = _ONES_BY_DTYPE.get((a.shape[0], a.dtype))
    if v is None:
        v = _ONES_BY_DTYPE[(a.shape[0], a.dtype)] = ones(a.shape[0], a.dtype)
    return v @ a


def colsum_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``colsum(a * b)`` without the temporary product (an einsum) for big arrays."""
    if a.size < POOL_MIN_SIZE:
        return colsum(a * b)
    return np.einsum("ij,ij->j", a, b)
