"""Backends: each runs a checked IR model; they agree number for number.

* ``numpy``: the fast backend (`specc.backend.numpy`): fused, pooled,
  BLAS-tuned kernels. The default.
* ``reference``: the readable backend (`specc.backend.reference`): one short
  forward and backward per op, written like the equations of
  docs/language.md; the fast kernels are tested against it.
* ``torch``: the same ops in PyTorch (`specc.backend.torch`), on a CPU or a
  GPU (``device``), and across processes (`specc.train.distributed`); needs
  the ``torch`` extra.

Each is a subclass of `specc.backend.graph.Network` with a kernel table by
op name; `build_network` picks one by name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import numpy as np

from specc.errors import OptionError

if TYPE_CHECKING:
    from specc.backend.graph import Network
    from specc.ir.spec import Model

#: backend name -> the module whose `Network` runs it
BACKENDS: dict[str, str] = {
    "numpy": "specc.backend.numpy.network",
    "reference": "specc.backend.reference.network",
    "torch": "specc.backend.torch.network",
}
#: backends that run on a device other than this process's CPU
DEVICE_BACKENDS = ("torch",)
DEFAULT_BACKEND = "numpy"


def network_class(backend: str = DEFAULT_BACKEND) -> type[Network]:
    """The network class of a backend, by the name `--backend` takes."""
    module = BACKENDS.get(backend)
    if module is None:
        raise OptionError(
            f"--backend: unknown backend '{backend}' (choose from {', '.join(BACKENDS)})"
        )
    return importlib.import_module(module).Network


def build_network(
    model: Model,
    backend: str = DEFAULT_BACKEND,
    seed: int = 0,
    dtype: str | np.dtype = "float32",
    device: str | None = None,
) -> Network:
    """A size-bound model ready to run on ``backend`` (on ``device``: cpu, cuda or
    cuda:N, for the backends that have devices)."""
    cls = network_class(backend)
    if device is None:
        return cls(model, seed=seed, dtype=dtype)
    if backend not in DEVICE_BACKENDS:
        _check_cpu(backend, device)
        return cls(model, seed=seed, dtype=dtype)
    return cls(model, seed=seed, dtype=dtype, device=device)


def check_runs(model: Model, backend: str = DEFAULT_BACKEND, device: str | None = None) -> str:
    """Where `build_network(model, backend, device=device)` would run (``cpu``,
    ``cuda:0``), or the error it would stop with: an unknown backend, a missing
    extra, a device that is not there, an op without a kernel. Nothing is
    allocated and sizes may still be symbols (`specc explain --backend`)."""
    cls = network_class(backend)
    if backend not in DEVICE_BACKENDS and device is not None:
        _check_cpu(backend, device)
    where = cls.resolve_device(device)
    cls.check_ops(model)
    return where


def _check_cpu(backend: str, device: str) -> None:
    if device != "cpu":
        raise OptionError(
            f"--device {device} needs --backend torch (the {backend} backend runs on the CPU)"
        )
