"""PyTorch, where it is installed, and the conversions every torch kernel needs.

The import is guarded so that the kernel table (and the test that checks every
backend covers every op) loads without torch; building a network calls
`require_torch`, which turns the missing package into a one-line error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.errors import OptionError

try:
    import torch
except ImportError:  # the optional extra is not installed
    torch = None  # type: ignore[assignment]

INSTALL_HINT = 'the torch backend needs PyTorch: pip install "specc[torch]"'


def require_torch() -> Any:
    """The torch module, or an OptionError naming what to install."""
    if torch is None:
        raise OptionError(INSTALL_HINT)
    return torch


def torch_dtype(dtype: np.dtype) -> Any:
    """The torch dtype that holds the same numbers as a NumPy float dtype."""
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def parse_device(device: str | None) -> Any:
    """`cpu`, `cuda` or `cuda:N` as a torch.device, refused by name when unusable."""
    text = device or "cpu"
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise OptionError(f"--device: unknown device '{text}' (use cpu, cuda or cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise OptionError(f"--device: unknown device '{text}' (use cpu, cuda or cuda:N)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"--device {text}: this machine's PyTorch sees no CUDA GPU")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise OptionError(
                f"--device {text}: there {'is' if count == 1 else 'are'} {count} GPU(s), "
                f"numbered from 0"
            )
    return dev


def check_ids(ids: Any, vocab: int, op: str) -> None:
    """Token ids outside the vocabulary, refused with the reference backend's message."""
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab:
            raise ValueError(f"{op}: token id out of range [0, {vocab}): min {low}, max {high}")
