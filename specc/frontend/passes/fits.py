"""At check time: a model whose parameters alone exceed this machine's memory is an error.

A spec can ask for `hidden=1000000000000`; numpy would then try to allocate
exabytes and die with a MemoryError deep inside initialisation. This pass
turns that into one clear message with the numbers, before anything is
allocated (training's whole estimated peak is checked by specc.train.memory).
"""

from __future__ import annotations

import math

from specc.errors import Diagnostics
from specc.ir.spec import Model
from specc.resources import human_bytes, total_bytes

FLOAT_BYTES = 4


def node_param_scalars(model: Model) -> dict[str, int]:
    """Trainable scalars per node, counting unbound sizes (vocab, labels) as 1."""
    out = {}
    for node in model.nodes:
        if node.shape is None:
            continue
        total = 0
        for shape in model.param_shapes(node).values():
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
