"""The surface IR: the spec exactly as written, every piece with its span.

`lower` builds it from the parse tree; the passes turn it into the checked
IR of `specc.ir.spec`. `fmt` prints it back, which is why it keeps what a person
wrote (positional vs keyword arguments, number spellings) rather than what
it means. It is never serialised, so plain frozen dataclasses serve: a
multi-megabyte spec makes millions of these, and they cost a microsecond
each where validated models cost tens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from specc.errors import Span

_frozen = dataclass(frozen=True, slots=True)


@_frozen
class NumberValue:
    kind: ClassVar[str] = "number"
    value: int | float
    text: str
    span: Span


@_frozen
class StringValue:
    kind: ClassVar[str] = "string"
    value: str
    span: Span


@_frozen
class BoolValue:
    kind: ClassVar[str] = "bool"
    value: bool
    span: Span


@_frozen
class SymbolValue:
    kind: ClassVar[str] = "symbol"
    name: str
    span: Span


@_frozen
class CallValue:
    kind: ClassVar[str] = "call"
    name: str
    args: list[Argument]
    span: Span
    name_span: Span


@_frozen
class ListValue:
    kind: ClassVar[str] = "list"
    items: list[Value]
    span: Span


Value = NumberValue | StringValue | BoolValue | SymbolValue | CallValue | ListValue


@_frozen
class Argument:
    """`value` or `key=value` inside a call's parentheses."""

    key: str | None
    value: Value
    span: Span
    key_span: Span | None = None


@_frozen
class NameRef:
    name: str
    span: Span


@_frozen
class Step:
    """One `-> op(args)` of a pipeline; `args` is None when written without parentheses."""

    op: str
    args: list[Argument] | None
    span: Span
    op_span: Span


@_frozen
class Pipeline:
    sources: list[NameRef]
    grouped: bool  # written as `(a, b) -> ...`
    steps: list[Step]
    span: Span


@_frozen
class InputDecl:
    kind: ClassVar[str] = "input"
    name: str
    type_name: str
    type_size: Value | None
    span: Span
    name_span: Span
    type_span: Span


@_frozen
class NodeDecl:
    """`NAME = pipeline`, `output NAME = pipeline`, or `output NAME` (pipeline None)."""

    kind: ClassVar[str] = "node"
    name: str
    is_output: bool
    pipeline: Pipeline | None
    span: Span
    name_span: Span


Statement = InputDecl | NodeDecl


@_frozen
class ModelDecl:
    kind: ClassVar[str] = "model"
    name: str
    statements: list[Statement]
    span: Span
    name_span: Span


@_frozen
class Setting:
    key: str
    value: Value
    span: Span
    key_span: Span


@_frozen
class TaskDecl:
    kind: ClassVar[str] = "task"
    name: str
    task_kind: str
    settings: list[Setting]
    span: Span
    name_span: Span
    kind_span: Span


@_frozen
class ParamDecl:
    """`param NAME = VALUE`: a named value that arguments and settings use by name."""

    kind: ClassVar[str] = "param"
    name: str
    value: Value
    span: Span
    name_span: Span


@_frozen
class SweepDecl:
    """`sweep NAME : TASK { ... }`: a search space over params and how to search it."""

    kind: ClassVar[str] = "sweep"
    name: str
    task: str
    settings: list[Setting]
    span: Span
    name_span: Span
    task_span: Span


Item = ModelDecl | TaskDecl | ParamDecl | SweepDecl


@_frozen
class Comment:
    text: str
    span: Span


@_frozen
class SpecFile:
    items: list[Item]
    comments: list[Comment] = field(default_factory=list)
