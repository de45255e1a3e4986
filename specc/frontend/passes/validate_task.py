"""Task settings, data sources and optimizers: from values as written to a typed Task.

Settings a task's kind does not take, a data source that does not fit the
kind, and data files that are missing are reported at their place; a missing
file does not hide the task's other errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from specc.data.text import BUILTIN_TEXTS
from specc.errors import Diagnostics, Span
from specc.frontend import surface as s
from specc.frontend.passes.arguments import bind_arguments, messages, plain_value, show
from specc.frontend.suggest import did_you_mean, one_of
from specc.ir.spec import (
    DATA_CLASSES,
    DEFAULT_LOSS,
    EARLY_STOP_CLASSES,
    KIND_METRICS,
    OPTIMIZER_CLASSES,
    SCHEDULE_CLASSES,
    TASK_KINDS,
    Task,
)

#: Settings whose value is a call of one of these, and what the call is called.
CALL_SETTINGS: dict[str, tuple[dict[str, type[BaseModel]], str]] = {
    "optimizer": (OPTIMIZER_CLASSES, "optimizer"),
    "schedule": (SCHEDULE_CLASSES, "schedule"),
    "early_stop": (EARLY_STOP_CLASSES, "early stop"),
}


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
            f"{show(plain_value(setting.value, diags))}",
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
    plain = {k: plain_value(v, diags) for k, v in data.items()}
    try:
        cls.model_validate({tag: value.name, **plain})
    except ValidationError as exc:
        for field, message, help in messages(exc, value.name, set()):
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

    for key, (registry, what) in CALL_SETTINGS.items():
        if key in settings:
            got = _call_setting(settings[key], registry, "name", what, diags)
            if got is None:
                ok = False
            else:
                data[key], spans[key] = got[0], settings[key].value.span
                if key == "schedule":
                    ok &= _check_warmup(got, settings, diags)
    if "monitor" in settings and kind in TASK_KINDS:
        ok &= _check_monitor(settings["monitor"], kind, data, diags)

    loss = settings.get("loss")
    default_loss = DEFAULT_LOSS.get(kind, "cross_entropy")
    data["loss"] = default_loss
    if loss is not None:
        name = loss.value.name if isinstance(loss.value, s.SymbolValue) else None
        if name not in ("cross_entropy", "mse"):
            diags.error(
                "'loss' must be cross_entropy or mse",
                loss.value.span,
                did_you_mean(str(plain_value(loss.value, diags)), ("cross_entropy", "mse")),
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
        if key in ("model", "data", "loss", "monitor", *CALL_SETTINGS):
            continue
        value = plain_value(st.value, diags)
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


def _check_warmup(
    got: tuple[dict[str, Any], dict[str, Span]], settings: dict[str, s.Setting], diags: Diagnostics
) -> bool:
    """A warmup must end before the run does (checked here when `steps` fixes the length;
    a length in epochs is checked when training starts)."""
    schedule, spans = got
    steps = settings.get("steps")
    length = steps.value.value if steps and isinstance(steps.value, s.NumberValue) else None
    warmup = schedule.get("warmup", 0)
    if isinstance(length, int) and isinstance(warmup, int) and warmup >= length > 0:
        diags.error(
            f"warmup of {warmup} steps does not end before the run's {length} steps",
            spans.get("warmup", settings["schedule"].value.span),
            "shorten the warmup or train longer",
        )
        return False
    return True


def _check_monitor(setting: s.Setting, kind: str, data: dict[str, Any], diags: Diagnostics) -> bool:
    """`monitor` names one of the kind's held-out metrics."""
    metrics = KIND_METRICS[kind]
    name = setting.value.name if isinstance(setting.value, s.SymbolValue) else None
    if name not in metrics:
        written = name or show(plain_value(setting.value, diags))
        diags.error(
            f"{kind} tasks have no held-out metric {written}",
            setting.value.span,
            did_you_mean(str(written), metrics) or f"monitor {one_of(metrics)}",
        )
        return False
    data["monitor"] = name
    return True


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
        for field, message, help in messages(exc, "the task", set()):
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
