"""Model arguments: each node's and each input's values as written, to typed IR.

The mapping onto each op's schema is `specc.frontend.passes.arguments`; this
pass adds what is particular to nodes and inputs (activations, sizes, input
types). Tasks are validated in `specc.frontend.passes.validate_task`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from specc.errors import Diagnostics, Span
from specc.frontend import surface as s
from specc.frontend.passes.arguments import (
    ACTIVATION_HELP,
    bind_arguments,
    messages,
    plain_value,
    show,
)
from specc.frontend.passes.resolve import RawNode
from specc.frontend.suggest import did_you_mean
from specc.ir.ops import OP_CLASSES, SIZE_FIELDS, SIZE_SYMBOLS, USER_OPS, Activation, NodeBase
from specc.ir.spec import (
    Input,
)

INPUT_TYPES = ("tokens", "sequence", "vector")


def _activation(value: s.Value, diags: Diagnostics) -> Any:
    """`tanh` or `leaky_relu(slope=0.1)` as the Activation schema's input."""
    if isinstance(value, s.SymbolValue):
        return {"name": value.name}
    if isinstance(value, s.CallValue):
        bound = bind_arguments(value.args, Activation, value.name, diags, skip=("name",))
        if bound is None:
            return None
        data, _ = bound
        return {"name": value.name, **{k: plain_value(v, diags) for k, v in data.items()}}
    return plain_value(value, diags)


def validate_node(raw: RawNode, diags: Diagnostics) -> NodeBase | None:
    cls = OP_CLASSES.get(raw.op)
    if cls is None or (raw.op == "identity" and not raw.alias):
        diags.error(f"unknown op '{raw.op}'", raw.op_span, did_you_mean(raw.op, USER_OPS))
        return None
    lo, hi = cls.arity
    if not lo <= len(raw.inputs) <= (hi if hi is not None else len(raw.inputs)):
        diags.error(
            f"{raw.op} takes one input, got {len(raw.inputs)}",
            raw.op_span,
            "combine several values first with concat or add",
        )
        return None
    bound = bind_arguments(
        raw.args, cls, raw.op, diags, skip=("name", "inputs", "span", "shape", "op")
    )
    if bound is None:
        return None
    written, spans = bound
    data: dict[str, Any] = {}
    for key, value in written.items():
        data[key] = _activation(value, diags) if key == "activation" else plain_value(value, diags)
        if data[key] is None:
            return None
    try:
        return cls.model_validate(
            {"name": raw.name, "inputs": raw.inputs, "span": raw.span, **data}
        )
    except ValidationError as exc:
        size_fields = set(SIZE_FIELDS.get(raw.op, ()))
        for field, message, help in messages(exc, raw.op, size_fields):
            span = spans.get(field, raw.op_span)
            if field == "activation" and message.startswith("'slope'"):
                span = _slope_span(written.get("activation")) or span
            elif field == "activation" and not help:
                help = ACTIVATION_HELP
            diags.error(message, span, help)
        return None


def _slope_span(value: s.Value | None) -> Span | None:
    if isinstance(value, s.CallValue):
        for i, arg in enumerate(value.args):
            if arg.key == "slope" or (arg.key is None and i == 0):
                return arg.value.span
    return None


def validate_input(decl: s.InputDecl, diags: Diagnostics) -> Input | None:
    if decl.type_name not in INPUT_TYPES:
        diags.error(
            f"unknown input type '{decl.type_name}'",
            decl.type_span,
            did_you_mean(decl.type_name, INPUT_TYPES) or "use tokens, sequence[N] or vector[N]",
        )
        return None
    size = None
    if decl.type_name == "tokens":
        if decl.type_size is not None:
            diags.error("tokens takes no size", decl.type_size.span, "write `tokens`")
            return None
    else:
        if decl.type_size is None:
            diags.error(
                f"{decl.type_name} needs a feature size",
                decl.type_span,
                f"write `{decl.type_name}[N]`, e.g. `{decl.type_name}[2]`",
            )
            return None
        size = plain_value(decl.type_size, diags)
        ok = (
            isinstance(size, int) and not isinstance(size, bool) and size > 0
        ) or size in SIZE_SYMBOLS
        if not ok:
            diags.error(
                f"the size of {decl.type_name} must be a positive whole number, got {show(size)}",
                decl.type_size.span,
            )
            return None
    return Input(name=decl.name, type=decl.type_name, size=size, span=decl.span)
