"""Arguments as written, mapped onto a pydantic schema, every complaint kept with its place.

Each op's and each task's schema is its pydantic class; `bind_arguments` maps
the written arguments onto it (positional ones by field order), runs pydantic,
and turns pydantic's complaints into messages that point at the argument.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from specc.errors import Diagnostics, Span
from specc.frontend import surface as s
from specc.frontend.suggest import did_you_mean, one_of
from specc.ir.ops import RNN_ACTIVATIONS, SIZE_SYMBOLS

#: What an activation argument may be, from the declared activations.
ACTIVATION_HELP = "use " + ", ".join(RNN_ACTIVATIONS) + " or leaky_relu(slope=S)"


def plain_value(value: s.Value, diags: Diagnostics) -> Any:
    """A written value as plain Python (calls become {'name': ..., args})."""
    if isinstance(value, s.NumberValue):
        if isinstance(value.value, float) and not math.isfinite(value.value):
            diags.error(f"number {value.text} is too large", value.span)
            return None
        return value.value
    if isinstance(value, (s.StringValue, s.BoolValue)):
        return value.value
    if isinstance(value, s.SymbolValue):
        return value.name
    if isinstance(value, s.ListValue):
        return [plain_value(v, diags) for v in value.items]
    return {
        "name": value.name,
        **{a.key or f"#{i}": plain_value(a.value, diags) for i, a in enumerate(value.args)},
    }


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return f"{value.get('name', '')}(...)"
    if isinstance(value, list):
        return "a list"
    return f"{value}"


def fields(cls: type[BaseModel], skip: tuple[str, ...]) -> list[str]:
    return [(f.alias or k) for k, f in cls.model_fields.items() if k not in skip]


def bind_arguments(
    args: list[s.Argument],
    cls: type[BaseModel],
    owner: str,
    diags: Diagnostics,
    skip: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, Span]] | None:
    """Map positional and keyword arguments onto a schema's field names."""
    names = fields(cls, skip)
    data: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    ok = True
    seen_keyword = False
    for i, arg in enumerate(args):
        if arg.key is None:
            if seen_keyword:
                diags.error(f"positional argument after a keyword argument in {owner}", arg.span)
                ok = False
                continue
            if i >= len(names):
                most = len(names)
                if most == 0:
                    diags.error(
                        f"{owner} takes no arguments, got {len(args)}",
                        arg.span,
                        f"write `{owner}` alone",
                    )
                    ok = False
                    continue
                diags.error(
                    f"{owner} takes {most} positional argument{'s' if most != 1 else ''} "
                    f"at most, got {len(args)}",
                    arg.span,
                    f"name the arguments: {', '.join(n + '=...' for n in names)}"
                    if names
                    else f"{owner} takes no arguments",
                )
                ok = False
                continue
            key = names[i]
        else:
            seen_keyword = True
            key = arg.key
            if key not in names:
                diags.error(
                    f"{owner} has no argument '{key}'",
                    arg.key_span or arg.span,
                    did_you_mean(key, names)
                    or (f"its arguments are {one_of(names)}" if names else f"{owner} takes none"),
                )
                ok = False
                continue
        if key in data:
            diags.error(f"argument '{key}' of {owner} is given twice", arg.span)
            ok = False
            continue
        data[key] = arg.value
        spans[key] = arg.value.span
    return (data, spans) if ok else None


def messages(
    exc: ValidationError, owner: str, size_fields: set[str]
) -> list[tuple[str, str, str | None]]:
    """(field, message, help) for each distinct problem pydantic found."""
    out: list[tuple[str, str, str | None]] = []
    seen: set[str] = set()
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        field = loc[0] if loc else ""
        if field in seen:
            continue
        seen.add(field)
        value = err.get("input")
        ctx = err.get("ctx") or {}
        kind = err["type"]
        what = f"'{field}' of {owner}" if field else owner
        if field == "activation" and len(loc) > 1 and loc[1] == "slope":
            what = "'slope' of leaky_relu"
        help = None
        if kind == "missing" or (
            field in size_fields and isinstance(value, dict) and field not in value
        ):
            message = f"{owner} needs argument '{field}'"
        elif field in size_fields:
            if isinstance(value, str):
                message = f"{what} must be a number or {one_of(SIZE_SYMBOLS)}, got '{value}'"
                help = did_you_mean(value, SIZE_SYMBOLS)
            elif (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and value == int(value)
                and value <= 0
            ):
                message = f"{what} must be greater than 0, got {show(value)}"
            else:
                message = f"{what} must be a positive whole number, got {show(value)}"
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            bound = {
                "greater_than": ("greater than", "gt"),
                "greater_than_equal": ("at least", "ge"),
                "less_than": ("less than", "lt"),
                "less_than_equal": ("at most", "le"),
            }[kind]
            message = f"{what} must be {bound[0]} {ctx[bound[1]]}, got {show(value)}"
        elif kind.startswith("int"):
            message = f"{what} must be a whole number, got {show(value)}"
        elif kind.startswith("float"):
            message = f"{what} must be a number, got {show(value)}"
        elif kind.startswith("bool"):
            message = f"{what} must be true or false, got {show(value)}"
        elif kind.startswith("string"):
            message = f"{what} must be a string, got {show(value)}"
        elif kind == "literal_error":
            allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
            message = f"{what} must be {one_of(allowed)}, got {show(value)}"
            if isinstance(value, str):
                help = did_you_mean(value, allowed)
        elif kind in ("model_type", "model_attributes_type", "dict_type") and field == "activation":
            message = f"{what} must be an activation, got {show(value)}"
            help = ACTIVATION_HELP
        elif kind == "value_error":
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            message = f"{what}: {str(err['msg']).lower()}"
        out.append((field, message, help))
    return out
