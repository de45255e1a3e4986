"""The letters wrapper (specc.backend.letters) on torch tensors; autograd does backward."""

from __future__ import annotations

from typing import Any

from specc.backend.letters import Letters


class TorchLetters(Letters):
    """A torch recurrent kernel along the letters of each word."""

    def _rows(self, lengths: Any) -> Any:
        return lengths.nonzero().squeeze(1)

    def _zeros(self, like: Any, shape: tuple[int, ...]) -> Any:
        return like.new_zeros(shape)

    def forward(self, params, state, xs, mask, train, rng, **options):
        y, _ = super().forward(params, state, xs, mask, train, rng, **options)
        return y, None  # no hidden states to watch: they are per word, not per step
