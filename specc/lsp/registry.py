"""What the editor says about ops, data sources and optimizers, read off their classes.

Every argument's name, type, range and default comes from the pydantic field
that declares it (`specc.ir.ops`, `specc.ir.spec`), so an op added to the
registry shows up in completion with its arguments and no edit here.
"""

from __future__ import annotations

import types as pytypes
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from specc.ir.ops import OP_CLASSES, USER_OPS, Activation, NodeBase
from specc.ir.spec import DATA_CLASSES, OPTIMIZER_CLASSES

#: Fields that are plumbing, not arguments a person writes.
_NOT_ARGUMENTS = (*NodeBase.model_fields, "op", "source", "name")

_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


@dataclass(frozen=True)
class Argument:
    """One argument of an op, data source or optimizer, as a person writes it."""

    name: str
    type_text: str
    required: bool
    default: str | None
    values: tuple[str, ...]  # the words it accepts, when it takes words

    def text(self) -> str:
        """`hidden: whole number > 0 | vocab | labels (required)`."""
        tail = " (required)" if self.required else f" = {self.default}"
        return f"{self.name}: {self.type_text}{tail}"


def written(value: Any) -> str:
    """A default as it is written in a spec: `true`, `0.001`, `tanh`, `none`."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Activation):
        return value.text()
    return str(value)


def _bounds(metadata: list[Any]) -> str:
    parts = []
    for meta in metadata:
        for attr, sign in _BOUNDS:
            bound = getattr(meta, attr, None)
            if bound is not None:
                parts.append(f"{sign} {written(bound)}")
    return (" " + " and ".join(parts)) if parts else ""


def _type_text(annotation: Any, metadata: list[Any]) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        found = [m for e in extra for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        return _type_text(base, [*metadata, *found])
    if origin is Literal:
        return " | ".join(str(a) for a in get_args(annotation))
    if origin in (Union, pytypes.UnionType):
        parts = [a for a in get_args(annotation) if a is not type(None)]
        return " | ".join(_type_text(a, metadata) for a in parts)
    if annotation is Activation:
        names = get_args(Activation.model_fields["name"].annotation)
        return " | ".join(n if n != "leaky_relu" else "leaky_relu(slope=S)" for n in names)
    if annotation is bool:
        return "true | false"
    if annotation is int:
        return "whole number" + _bounds(metadata)
    if annotation is float:
        return "number" + _bounds(metadata)
    if annotation is str:
        return "string"
    return getattr(annotation, "__name__", str(annotation))


def _values(annotation: Any) -> tuple[str, ...]:
    origin = get_origin(annotation)
    if origin is Literal:
        return tuple(str(a) for a in get_args(annotation))
    if origin in (Union, pytypes.UnionType, Annotated):
        return tuple(v for a in get_args(annotation) for v in _values(a))
    if annotation is bool:
        return ("true", "false")
    if annotation is Activation:
        return get_args(Activation.model_fields["name"].annotation)
    return ()


def arguments(cls: type[BaseModel]) -> list[Argument]:
    """The arguments of a class in the order positional arguments fill them."""
    out = []
    for key, info in cls.model_fields.items():
        if key in _NOT_ARGUMENTS and cls is not Activation:
            continue
        if cls is Activation and key == "name":
            continue
        out.append(
            Argument(
                name=info.alias or key,
                type_text=_type_text(info.annotation, list(info.metadata)),
                required=info.is_required(),
                default=None if info.is_required() else written(info.default),
                values=_values(info.annotation),
            )
        )
    return out


def signature(name: str, cls: type[BaseModel]) -> str:
    """`rnn(hidden, activation=tanh, ...)`: the call with every default shown."""
    args = [a.name if a.required else f"{a.name}={a.default}" for a in arguments(cls)]
    return f"{name}(" + ", ".join(args) + ")" if args else name


def op_classes() -> dict[str, type[NodeBase]]:
    """The ops a pipeline step may name, in registry order."""
    return {op: OP_CLASSES[op] for op in USER_OPS}


def callee_class(name: str, where: str) -> type[BaseModel] | None:
    """The class whose arguments a call `name(` takes: a step's op in a model, a data
    source or optimizer in a task, or an activation (`leaky_relu(slope=...)`)."""
    if where == "step":
        return op_classes().get(name)
    if where == "task":
        return DATA_CLASSES.get(name) or OPTIMIZER_CLASSES.get(name)
    if where == "activation":
        return Activation if name == "leaky_relu" else None
    return None
