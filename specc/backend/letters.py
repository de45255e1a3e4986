"""A recurrent layer run along the letters of each word, on any backend.

A layer on letters (B, T, C, N) is the same layer on a batch of words: the
words of the batch become the rows (B·T of them, less the positions past a
sentence's end, which are skipped and cost nothing), the letters its time
axis, and each word's length (its non-zero letter ids) its mask, so a
reversed layer starts at each word's last letter and `return=last` reads the
state after it. The backend's own kernel does the work, fast paths included;
this only gathers the words in and scatters the results back.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Letters:
    """Wraps a backend's recurrent kernel; reads ``xs = [x (B, T, C, N), letters (B, T, C)]``.

    Everything else (``watch``, the buffer pool, traits) is the wrapped kernel's.
    """

    def __init__(self, kernel: Any) -> None:
        object.__setattr__(self, "kernel", kernel)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kernel, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.kernel, name, value)

    # The array library: NumPy here, torch in its subclass.
    def _rows(self, lengths: Any) -> Any:
        return np.flatnonzero(lengths)

    def _zeros(self, like: Any, shape: tuple[int, ...]) -> Any:
        return np.zeros(shape, dtype=like.dtype)

    def forward(self, params, state, xs, mask, train, rng, **options):
        x, letters = xs
        b, t, c = letters.shape
        words = letters.reshape(b * t, c)
        real = words > 0
        rows = self._rows(real.sum(-1))
        out_tail = (c,) if self.kernel.node.return_ != "last" else ()
        hidden = self.kernel_hidden(params)
        if len(rows) == 0:  # nothing but padding: every state is zero
            return self._zeros(x, (b, t, *out_tail, hidden)), None
        xw = x.reshape(b * t, c, x.shape[-1])[rows]
        mw = real[rows].astype(xw.dtype) if isinstance(real, np.ndarray) else real[rows].to(xw)
        if "inplace" in options:
            options["inplace"] = True  # the gathered words are ours
        y, cache = self.kernel.forward(params, state, [xw], mw, train, rng, **options)
        out = self._zeros(y, (b * t, *out_tail, hidden))
        out[rows] = y
        return out.reshape(b, t, *out_tail, hidden), (rows, x.shape, cache)

    def kernel_hidden(self, params: Any) -> int:
        return int(params["W_hh"].shape[0])

    def backward(self, params, cache, dy, grads, **options):
        if cache is None:
            return [None, None]
        rows, shape, inner = cache
        b, t = shape[:2]
        dyw = dy.reshape(b * t, *dy.shape[2:])[rows]
        if "inplace" in options:
            options["inplace"] = True  # the gathered gradient is ours
        (dxw,) = self.kernel.backward(params, inner, dyw, grads, **options)
        dx = self._zeros(dxw, (b * t, *shape[2:]))
        dx[rows] = dxw
        return [dx.reshape(shape), None]

    def release(self, cache: Any) -> None:
        if cache is not None and hasattr(self.kernel, "release"):
            self.kernel.release(cache[2])
