"""What the fast recurrent kernels (rnn, lstm, gru) share: their inputs laid out
time-major in the order the steps run, with the bias column the input projection
folds in."""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.carry import Carries
from specc.backend.numpy.base import Kernel


class RecurrentKernel(Carries, Kernel):
    """A recurrent kernel: ``self.reverse`` says which way its steps run."""

    reverse: bool = False

    def _inputs(
        self, x: np.ndarray, mask: np.ndarray | None, dt: Any, inplace: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``xz[t] = [x_t | 1]`` (T, B, N+1) in processing order, and the mask as
        (T, B, 1) in the same order (or None). With ``inplace``, ``x`` goes back to the
        buffer pool once copied."""
        if x.ndim != 3:
            raise ValueError(f"{self.node.op} expects (batch, time, features), got {x.shape}")
        b_sz, t_len, n_in = x.shape
        xz = self._empty((t_len, b_sz, n_in + 1), dt)
        xt = x.transpose(1, 0, 2)
        xz[:, :, :n_in] = xt[::-1] if self.reverse else xt
        xz[:, :, n_in] = 1
        if inplace:
            self._recycle(x)  # copied into xz; nothing else reads it
        if mask is None:
            return xz, None
        if mask.shape != (b_sz, t_len):
            raise ValueError(f"mask shape {mask.shape} does not match input {x.shape[:2]}")
        mt = mask.T.astype(dt)
        return xz, np.ascontiguousarray(mt[::-1] if self.reverse else mt)[:, :, None]
