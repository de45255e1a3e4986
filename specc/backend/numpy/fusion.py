"""Which neighbouring ops the fast backend runs as one, decided once per network.

Three chains, each computing exactly the numbers of the ops run one by one:

* ``batchnorm -> (leaky_relu | relu | tanh)``: the batchnorm applies the op to
  each block of its output while it is in cache, and differentiates both in
  one go (a kernel that can is ``fusable``; a batchnorm kernel ``takes_epilogue``);
* ``... -> dense``: a run that keeps no caches (inference) also makes the
  dense layer's product inside that batchnorm, block by block, so the
  normalised values never go through main memory (the kernel ``projects_rows``);
* backward, the same chain: the dense layer makes only its weight gradients
  and the batchnorm the gradient at the dense layer's input, block by block.

And one promise: a value whose producer returns fresh arrays it does not cache
(``fresh_output``), read by exactly one op that takes only it, and not a model
output, may be overwritten by that reader (it is ``donatable``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specc.ir.spec import Model


@dataclass
class Fusion:
    """The fast backend's plan: node names, resolved once."""

    #: batchnorm -> the elementwise op it applies to its output
    epilogue: dict[str, str] = field(default_factory=dict)
    #: batchnorm -> the dense layer after its epilogue, made block by block at inference
    projection: dict[str, str] = field(default_factory=dict)
    #: dense -> the epilogue op before it, whose batchnorm makes its input gradient
    back_projection: dict[str, str] = field(default_factory=dict)
    #: ops computed inside a batchnorm (never run on their own in a fast run)
    fused_ops: set[str] = field(default_factory=set)
    #: values their only reader may overwrite
    donatable: set[str] = field(default_factory=set)


def plan_fusion(
    model: Model,
    kernels: Mapping[str, Any],
    readers: Mapping[str, list[int]],
    time_axis: Mapping[str, bool],
) -> Fusion:
    """The chains of ``model`` that the fast backend may run as one (see the module doc)."""
    nodes = model.nodes
    outputs = set(model.outputs)

    def only_reader(name: str):
        return nodes[readers[name][0]] if len(readers.get(name, ())) == 1 else None

    plan = Fusion()
    for n in nodes:
        act = only_reader(n.name)
        if (
            getattr(kernels[n.name], "takes_epilogue", False)
            and act is not None
            and len(act.inputs) == 1
            and getattr(kernels[act.name], "fusable", False)
            and n.name not in outputs
            and time_axis[n.name] == time_axis[act.name]
        ):
            plan.epilogue[n.name] = act.name
    for bn, act in plan.epilogue.items():
        dense = only_reader(act)
        if (
            dense is not None
            and getattr(kernels[dense.name], "projects_rows", False)
            and len(dense.inputs) == 1
            and act not in outputs
            and time_axis[act] == time_axis[dense.name]
        ):
            plan.projection[bn] = dense.name
    plan.back_projection = {dense: plan.epilogue[bn] for bn, dense in plan.projection.items()}
    plan.fused_ops = set(plan.epilogue.values()) | set(plan.projection.values())
    plan.donatable = {
        n.name
        for n in nodes
        if kernels[n.name].fresh_output
        and (reader := only_reader(n.name)) is not None
        and len(reader.inputs) == 1
        and n.name not in outputs
    }
    return plan
