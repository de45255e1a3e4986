"""What the fast lstm and gru kernels share: the time-major layout, masks, outputs,
the step products, and the products over all steps once BPTT is done.

The layout is the rnn's (see specc.backend.numpy.rnn): inside, everything is
time-major and in processing order (a reversed layer flips time once on the
way in and once on the way out). One product ``[x_t | 1] @ [W_xh; b]`` makes
every step's input projection and bias at once, straight into the buffer
where each step's gates live; a step then adds ``h_{t-1} @ W_hh`` there with
one product and computes its gates in place on that buffer's contiguous rows.
No step allocates.

The step products are MKL's where it is installed, by a weight MKL packed
once per loop (`packed_step_product`: a gemm by an unpacked weight reorders
it at every call, which at batch 32 and hidden 256 is about a tenth of an
lstm forward); at batch 1, numpy's vector-matrix product, which beats a
ctypes call to MKL there.

Sigmoid gates are computed as ``σ(a) = (1 + tanh(a/2))/2``: their columns of
the weights are halved once per call, as they are put in the kernel's gate
order (`arrange`, block by block into buffers the kernel keeps between
calls), so one ``tanh`` call covers every gate of a step, tanh-gates
included, and two calls over the whole contiguous block finish the sigmoids
(the same two over the sigmoid columns alone, a strided block, take twice as
long). Backward reads derivatives off the gates themselves and multiplies by
the weights as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from specc.backend.numpy.base import BLOCK_SIZE
from specc.backend.numpy.blas import gemm, packed_step_product, row_addresses, step_product
from specc.backend.numpy.recurrent import RecurrentKernel
from specc.ir.ops import NodeBase

#: Loops over fewer rows multiply with numpy: at batch 1 its vector-matrix product
#: (and an add) beats a ctypes call to MKL's gemm by ~10% of a gated layer's step
#: (1x25x100, one thread).
MKL_MIN_ROWS = 2

#: One step's product: ``dst[j] (+)= src[i] @ W`` (see `stepper`).
Step = Callable[[int, int], None]


def stepper(
    w: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    accumulate: bool,
    buffer: Callable[[int], np.ndarray] | None = None,
) -> Step:
    """``step(i, j)`` computes ``dst[j] = src[i] @ w`` (``+=`` with ``accumulate``) for
    the C-ordered stacks of row blocks ``src`` and ``dst``: MKL through
    `packed_step_product` (``w`` packed once into memory from ``buffer``) or
    `step_product` where it gains, numpy's ``dot`` (into a scratch block, then an
    add) otherwise."""
    rows = src.shape[1]
    product = None
    if buffer is not None:
        product = packed_step_product(w, rows, buffer, accumulate=accumulate)
    if product is None and rows >= MKL_MIN_ROWS:
        product = step_product(w, rows, accumulate=accumulate)
    if product is not None:
        src_at, dst_at = row_addresses(src), row_addresses(dst)
        return lambda i, j: product(src_at[i], dst_at[j])
    dot, add = np.dot, np.add
    if not accumulate:
        return lambda i, j: dot(src[i], w, dst[j])
    scratch = np.empty(dst.shape[1:], dst.dtype)

    def step(i: int, j: int) -> None:
        dot(src[i], w, scratch)
        add(dst[j], scratch, dst[j])

    return step


#: Where a weight's columns go in the kernel's order: ``(to, from, width, factor)``
#: per block of gates, ``out[:, to:to+width] = factor * w[:, from:from+width]``.
Blocks = tuple[tuple[int, int, int, float], ...]


def arrange(w: np.ndarray, blocks: Blocks, out: np.ndarray) -> np.ndarray:
    """``out`` with ``w``'s columns put in the kernel's order and scaled, block by
    block (see `Blocks`): one pass writing straight into ``out`` (in its dtype),
    where a gather by column index and a scaling pass would make two copies."""
    for to, frm, width, factor in blocks:
        src, dst = w[:, frm : frm + width], out[:, to : to + width]
        if factor == 1:
            np.copyto(dst, src, casting="same_kind")
        else:
            np.multiply(src, factor, out=dst, casting="same_kind")
    return out


def add_back(d: np.ndarray, blocks: Blocks, grad: np.ndarray) -> None:
    """``grad += d`` with ``d``'s columns in the kernel's order and ``grad``'s in the
    parameter's (factors are not applied: gradients are of the weights as they are)."""
    for to, frm, width, _ in blocks:
        grad[..., frm : frm + width] += d[..., to : to + width]


def unscaled(blocks: Blocks) -> Blocks:
    """The same order with every factor 1: for multiplying by the weights as they are."""
    return tuple((to, frm, width, 1.0) for to, frm, width, _ in blocks)


class GatedKernel(RecurrentKernel):
    """The common part of `LSTM` and `GRU`: their cells fill in ``forward``/``backward``.

    Observing: while ``watch`` is set (see `Network.backward`), every backward
    hands it dL/dh_t, the whole gradient at each hidden state (what arrives
    through time included), as (B, T, H) in the original time order, zero at
    padded steps.
    """

    watch: Callable[[np.ndarray], None] | None = None
    #: Flush the entries of a carried gradient below this many times the dtype's
    #: smallest normal number to zero: subnormal arithmetic costs a hundredfold.
    FLUSH = 1e6
    #: ... every this many steps of backward (see `_flush`).
    FLUSH_EVERY = 8

    def __init__(self, node: NodeBase, sizes: Any = None, dtype: Any = np.float32) -> None:
        super().__init__(node, sizes, dtype)
        self.hidden = int(node.hidden)  # type: ignore[attr-defined]
        self.reverse = bool(node.reverse)  # type: ignore[attr-defined]
        self.return_last = node.return_ == "last"  # type: ignore[attr-defined]

    @property
    def fresh_output(self) -> bool:
        # The full-sequence forward output is a view into the cached states.
        return self.reverse or self.return_last

    def _stepper(
        self, w: np.ndarray, src: np.ndarray, dst: np.ndarray, accumulate: bool
    ) -> tuple[Step, np.ndarray | None]:
        """A loop's `stepper`, and the pooled memory its packed weight lives in (or
        None): the caller recycles that once the loop is done."""
        held: list[np.ndarray] = []

        def buffer(nbytes: int) -> np.ndarray:
            held.append(self._empty((nbytes,), np.uint8))
            return held[-1]

        step = stepper(w, src, dst, accumulate, buffer)
        return step, (held[0] if held else None)

    # ----- forward ----------------------------------------------------------------

    def _projection(self, xz: np.ndarray, w_in: np.ndarray) -> np.ndarray:
        """Every step's input projection and bias, (T, B, G) in processing order."""
        t_len, b_sz, k = xz.shape
        out = self._empty((t_len, b_sz, w_in.shape[1]), xz.dtype)
        gemm(xz.reshape(t_len * b_sz, k), w_in, out.reshape(t_len * b_sz, -1))
        return out

    def _outputs(
        self, hs: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The layer's output from the states ``hs`` (T, B, H) in processing order, and
        with return=last the processing step each row returns."""
        t_len, b_sz, hid = hs.shape
        if self.return_last:
            if mask is None or self.reverse:
                last = np.full(b_sz, t_len - 1, dtype=np.intp)
            else:
                last = np.maximum(mask.sum(axis=1).astype(np.intp) - 1, 0)
            return hs[last, np.arange(b_sz)], last
        if self.reverse:
            yt = self._empty((t_len, b_sz, hid), hs.dtype)
            np.copyto(yt, hs[::-1])
            return yt.transpose(1, 0, 2), None  # time-major, see `token_rows`
        return hs.transpose(1, 0, 2), None  # a time-major view into the states

    # ----- backward ---------------------------------------------------------------

    def _upstream(
        self, dy: np.ndarray, last: np.ndarray | None, t_len: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """dL/dh_t from above (T, B, H) in processing order, and the buffer made for it
        with return=last (to recycle)."""
        if last is None:
            dhs = dy.transpose(1, 0, 2)
            return (dhs[::-1] if self.reverse else dhs), None
        b_sz = dy.shape[0]
        zeros = self._empty((t_len, b_sz, self.hidden), dy.dtype)
        zeros.fill(0)
        zeros[last, np.arange(b_sz)] = dy
        return zeros, zeros

    def _span(self, b_sz: int, width: int) -> int:
        """Steps per block of coefficients made ahead of the BPTT loop: a block stays
        in cache until the loop reads it."""
        return max(1, BLOCK_SIZE // max(b_sz * width, 1))

    def _input_grad(self, g: np.ndarray, w_x: np.ndarray) -> np.ndarray:
        """dL/dx (B, T, N), time-major, from the gates' gradients ``g`` (T, B, G) and the
        input weights ``w_x`` (N, G) in the same column order."""
        t_len, b_sz, width = g.shape
        n_in = w_x.shape[0]
        dxt = self._empty((t_len, b_sz, n_in), g.dtype)
        gemm(g.reshape(-1, width), w_x, dxt.reshape(-1, n_in), trans_b=True)
        if self.reverse:
            flipped = self._empty((t_len, b_sz, n_in), g.dtype)
            np.copyto(flipped, dxt[::-1])
            self._recycle(dxt)
            dxt = flipped
        return dxt.transpose(1, 0, 2)  # a time-major (B, T, N) view, see `token_rows`

    def _hand_to_watch(self, dh: np.ndarray, m: np.ndarray | None) -> None:
        """Give `watch` dL/dh_t (T, B, H, processing order) as (B, T, H) in time order."""
        if self.watch is None:
            return
        out = dh * m if m is not None else dh.copy()
        if self.reverse:
            out = out[::-1]
        self.watch(np.ascontiguousarray(out.transpose(1, 0, 2)))

    def _flush(self, *carries: np.ndarray) -> None:
        """Zero the entries of carried gradients below `FLUSH` × the smallest normal
        number: entry by entry, since in a batch some rows' gradients vanish while
        others' do not. Every `FLUSH_EVERY` (8) steps, no value above the threshold reaches the
        subnormal numbers in between unless it shrinks fivefold a step."""
        for k, c in enumerate(carries):
            small = self._kept(f"small{k}", c.shape, np.bool_)
            np.less(np.abs(c), float(np.finfo(c.dtype).tiny) * self.FLUSH, out=small)
            np.copyto(c, 0, where=small)
