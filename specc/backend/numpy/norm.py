"""Batch normalisation over every axis but the features, mask-aware.

Matches torch.nn.BatchNorm1d: biased variance to normalise, unbiased to
update the running estimate. With a mask, padded tokens are excluded from
the statistics, their outputs are zero and they receive zero gradient, so a
padded batch behaves exactly like the batch of its real tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from specc.backend.numpy.base import (
    Kernel,
    Params,
    colsum,
    colsum_product,
    from_rows,
    positional_weights,
    row_blocks,
    token_rows,
)
from specc.ir import ops

if TYPE_CHECKING:  # a kernel does not import another kernel to run
    from specc.backend.numpy.layers import Dense


class BatchNorm(Kernel):
    """Normalise (B, T, N) or (B, N) per feature; batch statistics in train, running in eval."""

    fresh_output = True
    #: Applies a `fusable` op to its output on the way (see specc.backend.numpy.fusion).
    takes_epilogue = True

    def __init__(self, node: ops.BatchNorm, sizes: Any = None, dtype: Any = np.float32) -> None:
        super().__init__(node, sizes, dtype)
        self.eps = node.eps
        self.momentum = node.momentum
        self.affine = node.affine

    def forward(
        self,
        params: Params,
        state: Params,
        xs: list[np.ndarray],
        mask: np.ndarray | None,
        train: bool,
        rng: np.random.Generator,
        inplace: bool = False,
        epilogue: Kernel | None = None,
        project: tuple[Dense, Params] | None = None,
    ) -> tuple[np.ndarray, Any]:
        """``epilogue``: a `fusable` elementwise op applied to the output on the way
        (the executor fuses ``batchnorm -> leaky_relu`` and the like); backward
        then takes the gradient of the op's output.

        ``project``: a dense layer and its parameters, applied to each block of
        the output while it is in cache, for a forward that keeps no caches
        (inference). The result is then the dense layer's output, and the
        normalised values never go through main memory: at 64 x 128 x 512 that
        saves writing and reading back 16 MB, a tenth of an inference.

        The cache keeps the input itself (its producer keeps it anyway, as the rnn
        does its outputs), never a centred copy: every pass that needs x - mean
        recomputes it for one block of rows at a time, in cache.
        """
        x = xs[0]
        x2, tm = token_rows(x)  # the tokens as rows, in x's own layout (no copy)
        w = positional_weights(mask, x, tm)
        rows, n = x2.shape
        count = float(rows) if w is None else float(w.sum())
        blocks = row_blocks(rows, n)
        if project is None:
            y = self._empty(x2.shape, x2.dtype)
        else:
            y = self._kept("project", (blocks[0].stop, n), x2.dtype)  # one block at a time
            dense, dense_params = project
            out = dense.empty_rows(rows, dense_params, x2.dtype)

        if train:
            # Column sums are matrix-vector products (see `colsum`), sums of squares
            # einsums over centred blocks: two passes over x, exact, and no copy of it.
            denom = max(count, 1.0)  # an all-padding batch normalises to zero, not NaN
            wr = None if w is None else w.reshape(-1)
            mean = (colsum(x2) if wr is None else wr @ x2) / denom
            var = np.zeros(n, dtype=x2.dtype)
            scratch = np.empty((blocks[0].stop, n), x2.dtype)
            mean_rows = self._tiled("mean", mean, blocks)
            for b in blocks:
                k = b.stop - b.start
                xb = np.subtract(x2[b], mean_rows[:k], out=scratch[:k])
                if wr is None:
                    var += colsum_product(xb, xb)
                else:
                    var += wr[b] @ np.multiply(xb, xb, out=xb)
            var /= denom
            invstd = 1.0 / np.sqrt(var + self.eps)
            if count > 0:
                mom = self.momentum
                unbiased = var * (count / max(count - 1.0, 1.0))
                rm, rv = state["running_mean"], state["running_var"]
                rm *= 1.0 - mom
                rm += mom * mean
                rv *= 1.0 - mom
                rv += mom * unbiased
        else:
            mean = state["running_mean"].copy()
            invstd = 1.0 / np.sqrt(state["running_var"] + self.eps)
        # y = x * scale + shift with shift = beta - mean * scale, as torch computes it
        scale = invstd * params["gamma"] if self.affine else invstd
        shift = -mean * scale
        if self.affine:
            shift += params["beta"]
        scale_rows, shift_rows = self._tiled("p", scale, blocks), self._tiled("q", shift, blocks)
        for b in blocks:  # y = epilogue(x * scale + shift) * w, block by block
            k = b.stop - b.start
            yb = np.multiply(x2[b], scale_rows[:k], out=y[:k] if project else y[b])
            yb += shift_rows[:k]
            if w is not None:
                yb *= w[b]  # padded outputs are zero, so junk never travels downstream
            if epilogue is not None:
                epilogue.act_block(yb, self._block_scratch(blocks, n, y.dtype)[:k])
            if project is not None:
                dense.project_rows(dense_params, yb, out[b])
        if project is not None:
            return from_rows(out, (*x.shape[:-1], out.shape[1]), tm), None
        kept = None if epilogue is None else y  # a fused op's output, for its derivative
        cache = (train, x2, mean, invstd, w, count, tm, epilogue, kept)
        return from_rows(y, x.shape, tm), cache

    def _block_scratch(self, blocks: list[slice], n: int, dtype: Any) -> np.ndarray:
        """A temporary of one block's size, kept between calls (never handed out)."""
        return self._kept("scratch", (blocks[0].stop, n), np.dtype(dtype))

    def _tiled(self, key: str, v: np.ndarray, blocks: list[slice]) -> np.ndarray:
        """Rows of the per-feature vector ``v``, to be sliced to each block's size.

        NumPy broadcasts a vector over a matrix one row at a time, at about twice
        the cost of an op between equal shapes. So with several blocks, ``v`` is
        copied into a tile of one block's rows that the kernel keeps (a fresh one
        each call costs more than it saves); a single block takes ``v`` as one row.
        """
        if len(blocks) < 2:
            return v[None, :]
        tile = self._kept(key, (blocks[0].stop, v.shape[-1]), v.dtype)
        tile[...] = v
        return tile

    def release(self, cache: Any) -> None:
        if cache[7] is not None:
            self._recycle(cache[8])  # a fused op's output (released once it is dead)

    def backward(
        self,
        params: Params,
        cache: Any,
        dy: np.ndarray,
        grads: Params,
        inplace: bool = False,
        fresh_grads: bool = False,
        project: tuple[Dense, Params] | None = None,
    ) -> list[np.ndarray | None]:
        """``project``: the dense layer that read this batchnorm's (fused) output,
        and its parameters, whose weight gradients the caller has made. ``dy`` is
        then the gradient at the dense layer's output, and each block of the
        gradient at the batchnorm's output (dy @ W.T) is made in cache where it is
        used, instead of going through main memory: at 64 x 128 x 512 that saves
        writing and reading back 16 MB, as `forward`'s ``project`` does.
        """
        train, x2, mean, invstd, w, count, tm, epilogue, y = cache
        rows, n = x2.shape
        shape = (*dy.shape[:-1], n)
        dy2, _ = token_rows(dy, tm)  # in the order of the cached rows
        blocks = row_blocks(rows, n)
        scratch = self._block_scratch(blocks, n, x2.dtype)
        # Pass 1, block by block: g = dy * act'(.) * w, the gradient at the batchnorm's
        # own output (written over dy when dy is ours), and the sums of g and of
        # g * (x - mean). With `inplace` the fused op's output is ours too and its
        # block becomes act' in place (and then g, when dy is the dense layer's).
        own = inplace or epilogue is not None or w is not None or project is not None
        if project is None:
            g = dy2 if inplace or not own else self._empty(dy2.shape, dy2.dtype)
        else:
            dense, dense_params = project
            g = y if inplace and y is not None else self._empty(x2.shape, x2.dtype)
            # One C-ordered W.T for many blocks; a single block reads W in place.
            w_t = dense.transposed_weight(dense_params, x2.dtype) if len(blocks) > 1 else None
            up = None  # dy @ W.T goes straight into g when nothing multiplies it
            if epilogue is not None or w is not None:
                up = self._kept("up", scratch.shape, x2.dtype)
        d = None if inplace or epilogue is None else np.empty_like(scratch)
        sum_dy = np.zeros(n, dtype=g.dtype)
        sum_dy_xc = np.zeros(n, dtype=g.dtype)
        mean_rows = self._tiled("mean", mean, blocks)
        for b in blocks:
            gb, k = g[b], b.stop - b.start
            if project is None:
                dyb = dy2[b]
            else:
                dyb = gb if up is None else up[:k]
                dense.input_grad_rows(dense_params, dy2[b], dyb, w_t)
            if epilogue is not None:
                db = y[b] if inplace else d[:k]
                epilogue.deriv_block(y[b], db)
                np.multiply(dyb, db, out=gb)
                if w is not None:
                    gb *= w[b]
            elif w is not None:
                np.multiply(dyb, w[b], out=gb)  # padded outputs do not exist
            sum_dy += colsum(gb)
            xc = np.subtract(x2[b], mean_rows[:k], out=scratch[:k])
            sum_dy_xc += colsum_product(gb, xc)
        sum_dy_xhat = sum_dy_xc * invstd
        a = invstd
        if self.affine:
            grads["gamma"] += sum_dy_xhat
            grads["beta"] += sum_dy
            a = invstd * params["gamma"]

        # Pass 2: dx = a*g - a*mean(g) - a*invstd^2*mean(g*xc)*xc, a = gamma*invstd (in
        # training, mean and variance depend on every real token); a*g in evaluation.
        dx = g if own else self._empty(g.shape, g.dtype)
        if train:
            denom = max(count, 1.0)
            c = a * invstd * sum_dy_xhat * (-1.0 / denom)
            e = a * sum_dy * (-1.0 / denom)
            a_rows = self._tiled("p", a, blocks)
            c_rows, e_rows = self._tiled("q", c, blocks), self._tiled("e", e, blocks)
            for b in blocks:
                k = b.stop - b.start
                db = np.multiply(g[b], a_rows[:k], out=dx[b])
                term = np.subtract(x2[b], mean_rows[:k], out=scratch[:k])
                term *= c_rows[:k]
                db += term
                db += e_rows[:k]
                if w is not None:
                    db *= w[b]
        else:
            np.multiply(g, a, out=dx)
        if inplace and epilogue is not None and dx is not y:
            self._recycle(y)  # the fused op's output, consumed with the cache
        if inplace and project is not None:
            self._recycle(dy)
        return [from_rows(dx, shape, tm)]
