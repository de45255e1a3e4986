"""Memory guards: refuse work that cannot fit before allocating any of it.

A spec can ask for `hidden=1000000000000`; numpy would then try to allocate
exabytes and die with a MemoryError deep inside initialisation. These checks
turn that into one clear message with the numbers, at `check` time for the
parameters alone and before training for the whole estimated peak.
"""

from __future__ import annotations

import math
import os

from specc.errors import Diagnostics, SpecError
from specc.frontend.passes.shapes import param_shapes
from specc.ir.spec import Model, Task

FLOAT_BYTES = 4


def human_bytes(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    for unit in units:
        if abs(n) < 1024 or unit == units[-1]:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} YiB"


def _meminfo(field: str) -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def total_bytes() -> int | None:
    """Physical memory of this machine."""
    found = _meminfo("MemTotal")
    if found is None:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    return found


def available_bytes() -> int | None:
    """Memory a new allocation can use now (MemAvailable), or None if unknown."""
    return _meminfo("MemAvailable") or total_bytes()


def node_param_scalars(model: Model) -> dict[str, int]:
    """Trainable scalars per node, counting unbound sizes (vocab, labels) as 1."""
    out = {}
    for node in model.nodes:
        if node.shape is None:
            continue
        total = 0
        for shape in param_shapes(model, node).values():
            total += math.prod(d if isinstance(d, int) else 1 for d in shape)
        out[node.name] = total
    return out


def check_parameters_fit(model: Model, diags: Diagnostics) -> None:
    """At check time: parameters alone larger than this machine's memory are an error."""
    limit = total_bytes()
    if limit is None:
        return
    counts = node_param_scalars(model)
    need = sum(counts.values()) * FLOAT_BYTES
    if need <= limit:
        return
    biggest = max(counts, key=counts.get)
    node = model.node(biggest)
    diags.error(
        f"model '{model.name}' needs {human_bytes(need)} for its parameters alone "
        f"({sum(counts.values()):,} float32 values, {counts[biggest]:,} of them in "
        f"'{biggest}'); this machine has {human_bytes(limit)}",
        node.span,
        "use smaller sizes",
    )


def training_bytes(model: Model, task: Task) -> tuple[int, dict[str, int]]:
    """Estimated peak bytes of training, from explain's accounting, with its parts."""
    from specc.explain.accounting import analyse, optimizer_arrays

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
