"""Arguments and settings: from values as written to typed IR, every error kept.

Each op's and each task's schema is its pydantic class; this pass maps the
written arguments onto it (positional ones by field order), runs pydantic,
and turns pydantic's complaints into messages that point at the argument.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from specc.errors import Diagnostics, Span
from specc.frontend import surface as s
from specc.frontend.passes.resolve import RawNode
from specc.frontend.suggest import did_you_mean, one_of
from specc.ir.ops import OP_CLASSES, SIZE_FIELDS, SIZE_SYMBOLS, USER_OPS, Activation, NodeBase
from specc.ir.spec import (
    DATA_CLASSES,
    DEFAULT_LOSS,
    OPTIMIZER_CLASSES,
    TASK_KINDS,
    Input,
    Task,
)

INPUT_TYPES = ("tokens", "sequence", "vector")
BUILTIN_TEXTS = ("python-docs",)
ACTIVATION_HELP = "use tanh, sigmoid, relu, leaky_relu or leaky_relu(slope=S)"


def _plain(value: s.Value, diags: Diagnostics) -> Any:
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
        return [_plain(v, diags) for v in value.items]
    return {
        "name": value.name,
        **{a.key or f"#{i}": _plain(a.value, diags) for i, a in enumerate(value.args)},
    }


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return f"{value.get('name', '')}(...)"
    if isinstance(value, list):
        return "a list"
    return f"{value}"


def _fields(cls: type[BaseModel], skip: tuple[str, ...]) -> list[str]:
    return [(f.alias or k) for k, f in cls.model_fields.items() if k not in skip]


def bind_arguments(
    args: list[s.Argument],
    cls: type[BaseModel],
    owner: str,
    diags: Diagnostics,
    skip: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, Span]] | None:
    """Map positional and keyword arguments onto a schema's field names."""
    names = _fields(cls, skip)
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


def _messages(
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
                message = f"{what} must be greater than 0, got {_show(value)}"
            else:
                message = f"{what} must be a positive whole number, got {_show(value)}"
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            bound = {
                "greater_than": ("greater than", "gt"),
                "greater_than_equal": ("at least", "ge"),
                "less_than": ("less than", "lt"),
                "less_than_equal": ("at most", "le"),
            }[kind]
            message = f"{what} must be {bound[0]} {ctx[bound[1]]}, got {_show(value)}"
        elif kind.startswith("int"):
            message = f"{what} must be a whole number, got {_show(value)}"
        elif kind.startswith("float"):
            message = f"{what} must be a number, got {_show(value)}"
        elif kind.startswith("bool"):
            message = f"{what} must be true or false, got {_show(value)}"
        elif kind.startswith("string"):
            message = f"{what} must be a string, got {_show(value)}"
        elif kind == "literal_error":
            allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
            message = f"{what} must be {one_of(allowed)}, got {_show(value)}"
            if isinstance(value, str):
                help = did_you_mean(value, allowed)
        elif kind in ("model_type", "model_attributes_type", "dict_type") and field == "activation":
            message = f"{what} must be an activation, got {_show(value)}"
            help = ACTIVATION_HELP
        elif kind == "value_error":
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            message = f"{what}: {str(err['msg']).lower()}"
        out.append((field, message, help))
    return out


def _activation(value: s.Value, diags: Diagnostics) -> Any:
    """`tanh` or `leaky_relu(slope=0.1)` as the Activation schema's input."""
    if isinstance(value, s.SymbolValue):
        return {"name": value.name}
    if isinstance(value, s.CallValue):
        bound = bind_arguments(value.args, Activation, value.name, diags, skip=("name",))
        if bound is None:
            return None
        data, _ = bound
        return {"name": value.name, **{k: _plain(v, diags) for k, v in data.items()}}
    return _plain(value, diags)


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
        data[key] = _activation(value, diags) if key == "activation" else _plain(value, diags)
        if data[key] is None:
            return None
    try:
        return cls.model_validate(
            {"name": raw.name, "inputs": raw.inputs, "span": raw.span, **data}
        )
    except ValidationError as exc:
        size_fields = set(SIZE_FIELDS.get(raw.op, ()))
        for field, message, help in _messages(exc, raw.op, size_fields):
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
        size = _plain(decl.type_size, diags)
        ok = (
            isinstance(size, int) and not isinstance(size, bool) and size > 0
        ) or size in SIZE_SYMBOLS
        if not ok:
            diags.error(
                f"the size of {decl.type_name} must be a positive whole number, got {_show(size)}",
                decl.type_size.span,
            )
            return None
    return Input(name=decl.name, type=decl.type_name, size=size, span=decl.span)


# ----- tasks ------------------------------------------------------------------


def _call_setting(
    setting: s.Setting,
    registry: dict[str, type[BaseModel]],
    tag: str,
    what: str,
    diags: Diagnostics,
) -> tuple[dict[str, Any], dict[str, Span]] | None:
    value = setting.value
    if isinstance(value, s.SymbolValue):
        value = s.CallValue(name=value.name, args=[], span=value.span, name_span=value.span)
    if not isinstance(value, s.CallValue):
        diags.error(
            f"'{setting.key}' must be a {what} such as {next(iter(registry))}(...), got "
            f"{_show(_plain(setting.value, diags))}",
            setting.value.span,
        )
        return None
    cls = registry.get(value.name)
    if cls is None:
        diags.error(
            f"unknown {what} '{value.name}'",
            value.name_span,
            did_you_mean(value.name, registry) or f"use {one_of(registry)}",
        )
        return None
    bound = bind_arguments(value.args, cls, value.name, diags, skip=(tag,))
    if bound is None:
        return None
    data, spans = bound
    plain = {k: _plain(v, diags) for k, v in data.items()}
    try:
        cls.model_validate({tag: value.name, **plain})
    except ValidationError as exc:
        for field, message, help in _messages(exc, value.name, set()):
            diags.error(message, spans.get(field, value.name_span), help)
        return None
    return {tag: value.name, **plain}, spans


def validate_task(
    decl: s.TaskDecl, models: dict[str, Any], base_dir: Path | None, diags: Diagnostics
) -> Task | None:
    ok = True
    kind = decl.task_kind
    if kind not in TASK_KINDS:
        diags.error(
            f"unknown task kind '{kind}'",
            decl.kind_span,
            did_you_mean(kind, TASK_KINDS) or f"use {one_of(TASK_KINDS)}",
        )
        ok = False
    allowed = Task.settings_for(kind)
    every = {k for kinds in TASK_KINDS for k in Task.settings_for(kinds)}
    settings: dict[str, s.Setting] = {}
    for st in decl.settings:
        if st.key in settings:
            diags.error(
                f"setting '{st.key}' is given twice (first at line {settings[st.key].span.line})",
                st.key_span,
            )
            ok = False
        elif st.key not in every:
            diags.error(f"unknown setting '{st.key}'", st.key_span, did_you_mean(st.key, every))
            ok = False
        elif kind in TASK_KINDS and st.key not in allowed:
            diags.error(
                f"'{st.key}' does not apply to {kind} tasks",
                st.key_span,
                f"only {', '.join(k for k, v in Task.KIND_SETTINGS.items() if st.key in v)} "
                "tasks use it",
            )
            ok = False
        else:
            settings[st.key] = st

    data: dict[str, Any] = {"name": decl.name, "kind": kind, "span": decl.span}
    spans: dict[str, Span] = {}

    model = settings.get("model")
    if model is None:
        diags.error(f"task '{decl.name}' needs a model", decl.name_span, "add `model = NAME`")
        ok = False
    elif not isinstance(model.value, s.SymbolValue):
        diags.error("'model' must name a model of this file", model.value.span)
        ok = False
    elif model.value.name not in models:
        diags.error(
            f"no model named '{model.value.name}'",
            model.value.span,
            did_you_mean(model.value.name, models),
        )
        ok = False
    else:
        data["model"] = model.value.name

    source = settings.get("data")
    if source is None:
        diags.error(
            f"task '{decl.name}' needs data",
            decl.name_span,
            'add e.g. `data = text("corpus.txt")`',
        )
        ok = False
    else:
        got = _call_setting(source, DATA_CLASSES, "source", "data source", diags)
        if got is None:
            ok = False
        else:
            data["data"], data_spans = got
            ok &= _check_data(data["data"], data_spans, source, kind, base_dir, diags)

    opt = settings.get("optimizer")
    if opt is not None:
        got = _call_setting(opt, OPTIMIZER_CLASSES, "name", "optimizer", diags)
        if got is None:
            ok = False
        else:
            data["optimizer"] = got[0]

    loss = settings.get("loss")
    default_loss = DEFAULT_LOSS.get(kind, "cross_entropy")
    data["loss"] = default_loss
    if loss is not None:
        name = loss.value.name if isinstance(loss.value, s.SymbolValue) else None
        if name not in ("cross_entropy", "mse"):
            diags.error(
                "'loss' must be cross_entropy or mse",
                loss.value.span,
                did_you_mean(str(_plain(loss.value, diags)), ("cross_entropy", "mse")),
            )
            ok = False
        elif kind in TASK_KINDS and name != default_loss:
            diags.error(
                f"loss {name} does not fit a {kind} task",
                loss.value.span,
                f"{kind} tasks train with {default_loss}",
            )
            ok = False

    for key, st in settings.items():
        if key in ("model", "data", "optimizer", "loss"):
            continue
        value = _plain(st.value, diags)
        if value is None:
            ok = False
            continue
        data[key] = value
        spans[key] = st.value.span
    if "epochs" in settings and "steps" in settings:
        diags.error("give either 'epochs' or 'steps', not both", settings["steps"].key_span)
        ok = False
    if not ok:
        # still report wrong values of the settings that were fine so far
        _try_task(data, spans, decl, diags, report_only=True)
        return None
    return _try_task(data, spans, decl, diags)


def _try_task(data, spans, decl, diags, report_only: bool = False) -> Task | None:
    if report_only:
        placeholders = {
            "model": "_",
            "data": {"source": "adding", "length": 2},
            "loss": "mse",
            "kind": "regress",
        }
        data = {
            **placeholders,
            **{k: v for k, v in data.items() if k in spans},
            "name": decl.name,
            "span": decl.span,
        }
    try:
        return Task.model_validate(data)
    except ValidationError as exc:
        for field, message, help in _messages(exc, "the task", set()):
            if field not in spans:
                continue
            message = message.replace(f"'{field}' of the task", f"'{field}'")
            diags.error(message, spans[field], help)
        return None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _check_data(
    data: dict[str, Any],
    spans: dict[str, Span],
    setting: s.Setting,
    kind: str,
    base_dir: Path | None,
    diags: Diagnostics,
) -> bool:
    cls = DATA_CLASSES[data["source"]]
    span = setting.value.span
    ok = True
    if kind in TASK_KINDS and kind not in cls.kinds:
        fitting = [k for k, c in DATA_CLASSES.items() if kind in c.kinds]
        diags.error(
            f"data source {data['source']} does not fit a {kind} task",
            span,
            f"{kind} tasks read {one_of(f + '(...)' for f in fitting)}"
            if fitting
            else f"no built-in data source produces {kind} data yet",
        )
        ok = False
    if data["source"] == "text":
        has_path, has_builtin = data.get("path") is not None, data.get("builtin") is not None
        if has_path == has_builtin:
            diags.error(
                "text needs a file or a builtin corpus, not both"
                if has_path
                else "text needs a file or a builtin corpus",
                span,
                'write text("file.txt") or text(builtin="python-docs")',
            )
            return False
        if has_builtin and data["builtin"] not in BUILTIN_TEXTS:
            diags.error(
                f"unknown builtin text '{data['builtin']}'",
                spans["builtin"],
                did_you_mean(data["builtin"], BUILTIN_TEXTS) or f"use {one_of(BUILTIN_TEXTS)}",
            )
            return False
    if base_dir is not None:
        # A missing file is reported but leaves the task well formed, so the
        # checks that follow (does the model fit the task?) still run and every
        # error is shown at once; the reported error stops the load all the same.
        for key in ("path", "dev", "test"):
            rel = data.get(key)
            if isinstance(rel, str) and not _is_file(base_dir / rel):
                where = base_dir / rel
                what = "is a directory, not a file" if _is_dir(where) else "not found"
                diags.error(
                    f"data file '{rel}' {what}",
                    spans[key],
                    "paths are relative to the folder of the spec file",
                )
    return ok
