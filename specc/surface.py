"""The surface IR: the spec exactly as written, every piece with its span.

`lower` builds it from the parse tree; the passes turn it into the checked
IR of `specc.ir`. `fmt` prints it back, which is why it keeps what a person
wrote (positional vs keyword arguments, number spellings) rather than what
it means.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from specc.errors import Span


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NumberValue(_Frozen):
    kind: Literal["number"] = "number"
    value: int | float
    text: str
    span: Span


class StringValue(_Frozen):
    kind: Literal["string"] = "string"
    value: str
    span: Span


class BoolValue(_Frozen):
    kind: Literal["bool"] = "bool"
    value: bool
    span: Span


class SymbolValue(_Frozen):
    kind: Literal["symbol"] = "symbol"
    name: str
    span: Span


class CallValue(_Frozen):
    kind: Literal["call"] = "call"
    name: str
    args: list[Argument]
    span: Span
    name_span: Span


class ListValue(_Frozen):
    kind: Literal["list"] = "list"
    items: list[Value]
    span: Span


Value = Annotated[
    NumberValue | StringValue | BoolValue | SymbolValue | CallValue | ListValue,
    Field(discriminator="kind"),
]


class Argument(_Frozen):
    """`value` or `key=value` inside a call's parentheses."""

    key: str | None
    value: Value
    span: Span
    key_span: Span | None = None


class NameRef(_Frozen):
    name: str
    span: Span


class Step(_Frozen):
    """One `-> op(args)` of a pipeline; `args` is None when written without parentheses."""

    op: str
    args: list[Argument] | None
    span: Span
    op_span: Span


class Pipeline(_Frozen):
    sources: list[NameRef]
    grouped: bool  # written as `(a, b) -> ...`
    steps: list[Step]
    span: Span


class InputDecl(_Frozen):
    kind: Literal["input"] = "input"
    name: str
    type_name: str
    type_size: Value | None
    span: Span
    name_span: Span
    type_span: Span


class NodeDecl(_Frozen):
    """`NAME = pipeline`, `output NAME = pipeline`, or `output NAME` (pipeline None)."""

    kind: Literal["node"] = "node"
    name: str
    is_output: bool
    pipeline: Pipeline | None
    span: Span
    name_span: Span


Statement = Annotated[InputDecl | NodeDecl, Field(discriminator="kind")]


class ModelDecl(_Frozen):
    kind: Literal["model"] = "model"
    name: str
    statements: list[Statement]
    span: Span
    name_span: Span


class Setting(_Frozen):
    key: str
    value: Value
    span: Span
    key_span: Span


class TaskDecl(_Frozen):
    kind: Literal["task"] = "task"
    name: str
    task_kind: str
    settings: list[Setting]
    span: Span
    name_span: Span
    kind_span: Span


Item = Annotated[ModelDecl | TaskDecl, Field(discriminator="kind")]


class Comment(_Frozen):
    text: str
    span: Span


class SpecFile(_Frozen):
    items: list[Item]
    comments: list[Comment] = []


CallValue.model_rebuild()
ListValue.model_rebuild()
