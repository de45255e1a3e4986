"""Carried recurrent state: where a window starts and where it ends, for every backend.

A recurrent layer normally starts each sequence from h_0 = 0 (and c_0 = 0 for
the lstm). Truncated backpropagation through time (``state = carry``) and
sampling one character at a time need the opposite: a window starts from the
state the previous window ended in. This module is that contract, shared by
the kernels of every backend and by `specc.backend.graph.Network`:

* a recurrent kernel mixes in `Carries`; while its ``start`` is set (the
  network sets it, see `Network.carrying`), forward begins from those arrays
  instead of zeros and leaves copies of its final states in ``end``;
* no gradient flows into ``start``: backward treats it as a constant, which is
  exactly truncation at the window's boundary;
* a carried state is a plain dict of arrays (`State`), ``"NODE.h"`` and for
  the lstm ``"NODE.c"``, each (B, H), so it can be saved in a checkpoint,
  sharded, or copied like any other array.

A reversed layer cannot carry: its first step reads the state after the end
of the window, which does not exist yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.ir.ops import NodeBase
from specc.ir.spec import Model

#: Carried states by name: ``"NODE.h"`` (and ``"NODE.c"`` for an lstm), each (B, H).
State = dict[str, np.ndarray]


class Carries:
    """What a recurrent kernel holds while the network carries state through it.

    ``carry``: the states the next forward pass begins from, h first (then c),
    each (B, H) in batch order, as NumPy arrays. A forward pass that finds it set
    begins there and replaces it with copies of its states after the last step,
    so consecutive passes continue one another; None (the default) runs from
    zeros and leaves nothing behind, exactly as without this class.
    """

    node: NodeBase
    carry: tuple[np.ndarray, ...] | None = None

    def carried_in(self, batch: int, hidden: int) -> tuple[np.ndarray, ...] | None:
        """The states to begin from (None: zeros), checked against this batch."""
        if self.carry is None:
            return None
        for part, value in zip(state_parts(self.node), self.carry, strict=True):
            if value.shape != (batch, hidden):
                raise ValueError(
                    f"the carried state {self.node.name}.{part} has shape {value.shape}; "
                    f"this batch needs ({batch}, {hidden})"
                )
        return self.carry


def state_parts(node: NodeBase) -> tuple[str, ...]:
    """The states a recurrent node carries: ``h``, and ``c`` for a cell with one."""
    return ("h", "c") if getattr(node, "cell_state", False) else ("h",)


def carried_nodes(model: Model) -> list[NodeBase]:
    """The model's recurrent nodes along time, whose states a carried run threads
    through (a layer along each word's letters starts every word afresh)."""
    return [n for n in model.nodes if n.recurrent and not model.shape_of(n.inputs[0]).has_letters]


def refuse_reversed(model: Model, why: str) -> None:
    """A ValueError naming the first reversed recurrent layer (see the module's docstring)."""
    for node in carried_nodes(model):
        if getattr(node, "reverse", False):
            raise ValueError(
                f"{why} needs every recurrent layer to run forward in time; "
                f"'{node.name}' of model '{model.name}' is reversed (it reads the future)"
            )


def check_state(model: Model, state: State) -> None:
    """A ValueError unless ``state`` names every carried array of ``model`` (and only
    those), each (B, H) with one B."""
    want = zero_state(model, 1, np.float64)
    if set(state) != set(want):
        raise ValueError(
            f"a carried state of model '{model.name}' has {', '.join(sorted(want))}; "
            f"got {', '.join(sorted(state)) or 'nothing'}"
        )
    rows = {np.shape(v)[0] if np.ndim(v) == 2 else -1 for v in state.values()}
    for key, value in state.items():
        if np.ndim(value) != 2 or np.shape(value)[1] != want[key].shape[1] or len(rows) > 1:
            raise ValueError(
                f"the carried state {key} has shape {np.shape(value)}; each must be "
                f"(B, {want[key].shape[1]}) with the same B"
            )


def hidden_of(model: Model, node: NodeBase) -> int:
    """A recurrent node's bound width H."""
    hidden = node.hidden  # type: ignore[attr-defined]
    return int(model.sizes.get(hidden, 0) if isinstance(hidden, str) else hidden)


def zero_state(model: Model, batch: int, dtype: Any) -> State:
    """The state every window of a plain run starts from: zeros, (batch, H) each."""
    return {
        f"{node.name}.{part}": np.zeros((batch, hidden_of(model, node)), dtype)
        for node in carried_nodes(model)
        for part in state_parts(node)
    }
