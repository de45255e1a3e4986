"""The op registry: every op a model may use, declared once.

Each op is a frozen pydantic class. Its fields are its arguments (with their
defaults and ranges); its methods give its shape rule (`infer`), its
parameters and buffers (`param_shapes`, `state_shapes`, `init_params`,
`init_state`), its equation, and its cost (`cost`: multiply-adds and the
activations backward keeps); its class variables are its traits (`recurrent`).
Validation, shape inference, explain, the memory guard and diagnose read
these; each backend finds its kernel by the op's name (`op`) and builds it
from the node. Adding an op means one class in a module of this package
(listed once in `Node` below), one kernel per backend, its tests and its
entry in docs/language.md (see docs/architecture.md).
"""

from __future__ import annotations

from typing import Annotated, Union, get_args

from pydantic import Field

from specc.ir.ops.base import (
    SIZE_SYMBOLS,
    Activation,
    Cost,
    Dim,
    NodeBase,
    Shape,
    ShapeError,
    Shapes,
    Size,
    SizeSymbol,
)
from specc.ir.ops.elementwise import Dropout, Gelu, LeakyRelu, Relu, Sigmoid, Softmax, Tanh
from specc.ir.ops.layers import Add, Concat, Dense, Identity
from specc.ir.ops.lookup import Embedding, OneHot, Spell, spelling_feed
from specc.ir.ops.norm import BatchNorm
from specc.ir.ops.recurrent import Gru, Lstm, Rnn

Node = Annotated[
    Union[  # noqa: UP007 - a Union keeps the discriminator readable
        Embedding,
        OneHot,
        Spell,
        Rnn,
        Lstm,
        Gru,
        BatchNorm,
        LeakyRelu,
        Relu,
        Tanh,
        Gelu,
        Sigmoid,
        Dense,
        Softmax,
        Dropout,
        Concat,
        Add,
        Identity,
    ],
    Field(discriminator="op"),
]

OP_CLASSES: dict[str, type[NodeBase]] = {
    cls.model_fields["op"].default: cls for cls in get_args(get_args(Node)[0])
}

#: Ops a user writes in a pipeline (identity only arises from `a = b`).
USER_OPS = tuple(op for op in OP_CLASSES if op != "identity")


def _size_fields(cls: type[NodeBase]) -> tuple[str, ...]:
    return tuple(
        name for name, f in cls.model_fields.items() if SizeSymbol in get_args(f.annotation)
    )


#: Which fields of which op are sizes that a task's data may bind (read off the
#: fields declared as `Size`).
SIZE_FIELDS: dict[str, tuple[str, ...]] = {
    op: fields for op, cls in OP_CLASSES.items() if (fields := _size_fields(cls))
}

#: The allowed values of an rnn's arguments, for kernels that check them.
RNN_ACTIVATIONS: tuple[str, ...] = get_args(Activation.model_fields["name"].annotation)
RNN_INITS: tuple[str, ...] = get_args(Rnn.model_fields["init"].annotation)


__all__ = [
    "OP_CLASSES", "RNN_ACTIVATIONS", "RNN_INITS", "SIZE_FIELDS", "SIZE_SYMBOLS", "USER_OPS",
    "Activation", "Add", "BatchNorm", "Concat", "Cost", "Dense", "Dim", "Dropout", "Embedding",
    "Gelu", "Gru", "Identity", "LeakyRelu", "Lstm", "Node", "NodeBase", "OneHot", "Relu", "Rnn",
    "Shape", "ShapeError", "Shapes", "Sigmoid", "Size", "SizeSymbol", "Softmax", "Spell", "Tanh",
    "spelling_feed",
]  # fmt: skip
