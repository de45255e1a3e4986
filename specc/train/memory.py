"""Before training: refuse a run whose estimated peak memory exceeds what is free.

The estimate is explain's accounting (specc.ir.accounting): parameters,
gradients, optimizer state, running statistics and activations, so a run
that cannot fit stops with one clear message before any data is loaded.
"""

from __future__ import annotations

from specc.errors import SpecError
from specc.frontend.passes.fits import FLOAT_BYTES
from specc.ir.accounting import analyse, optimizer_arrays
from specc.ir.spec import Model, Task
from specc.resources import available_bytes, human_bytes


def training_bytes(model: Model, task: Task) -> tuple[int, dict[str, int]]:
    """Estimated peak bytes of training, from explain's accounting, with its parts."""
    report = analyse(model, task)
    params = report.trainable.value or 0
    state = report.non_trainable.value or 0
    activations = report.activation_scalars().value or 0
    parts = {
        "parameters": params * FLOAT_BYTES,
        "gradients": params * FLOAT_BYTES,
        "optimizer state": params * optimizer_arrays(task) * FLOAT_BYTES,
        "running statistics": state * FLOAT_BYTES,
        # backward holds about as much again in gradients of activations
        "activations": 2 * activations * FLOAT_BYTES,
    }
    return sum(parts.values()), parts


def check_training_fits(model: Model, task: Task, available: int | None = None) -> None:
    """Before training: refuse a configuration whose estimated peak exceeds free memory."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    need, parts = training_bytes(model, task)
    if need > available:
        detail = ", ".join(f"{k} {human_bytes(v)}" for k, v in parts.items() if v)
        raise SpecError(
            f"task '{task.name}' would need about {human_bytes(need)} to train ({detail}), "
            f"but only {human_bytes(available)} of memory is available; lower batch, seq_len "
            "or the model's sizes"
        )
