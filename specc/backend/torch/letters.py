"""The letters wrapper (specc.backend.letters) on torch tensors; autograd does backward."""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.letters import Letters
from specc.backend.torch.lib import torch


class TorchLetters(Letters):
    """A torch recurrent kernel along the letters of each word."""

    def _numpy(self, letters: Any) -> np.ndarray:
        return letters.cpu().numpy()

    def _index(self, rows: np.ndarray, like: Any) -> Any:
        return torch.from_numpy(rows).to(like.device)

    def _zeros(self, like: Any, shape: tuple[int, ...]) -> Any:
        return like.new_zeros(shape)

    def _mask(self, rows: Any, width: int, letters: Any, like: Any) -> Any:
        return (letters[rows, :width] > 0).to(like.dtype)

    def forward(self, params, state, xs, mask, train, rng, **options):
        y, _ = super().forward(params, state, xs, mask, train, rng, **options)
        return y, None  # no hidden states to watch: they are per word, not per step
