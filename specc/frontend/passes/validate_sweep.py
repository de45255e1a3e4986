"""Sweep blocks: from `sweep NAME : TASK { ... }` as written to a checked `Sweep`.

A line of a sweep block is either one of its settings (`metric`, `mode`,
`trials`, ...) or a param with the distribution its values are drawn from
(`hidden = choice(32, 64)`). Everything is checked here without Ray: the
task, the distributions' arguments, the metric against what the task
reports. Whether each value fits where the param is used is checked by
compiling the file with it (see `check_candidates`), so a sweep never
starts a trial that cannot compile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from specc.errors import Diagnostics, Span, SpecError
from specc.frontend import surface as s
from specc.frontend.fmt import value_text
from specc.frontend.passes.arguments import bind_arguments, messages, plain_value, show
from specc.frontend.suggest import did_you_mean, one_of
from specc.ir.spec import Task
from specc.ir.sweep import (
    DEFAULT_METRIC,
    DISTRIBUTIONS,
    HELD_OUT_METRICS,
    MAXIMISED,
    Asha,
    Distribution,
    Sweep,
)

#: The settings of a sweep block; every other line names a param to search.
SETTINGS = (
    "metric",
    "mode",
    "trials",
    "max_concurrent",
    "scheduler",
    "search",
    "cpus",
    "gpus",
    "seed",
)

#: One value to try compiling with: (param, value as spec text, where it is written,
#: and for the two ends of a range, the range: one error per range is enough).
Candidate = tuple[str, str, Span, Span | None]


def validate_sweep(
    decl: s.SweepDecl,
    params: set[str],
    tasks: dict[str, Task],
    task_names: set[str],
    diags: Diagnostics,
) -> tuple[Sweep, list[Candidate]] | None:
    """The checked sweep and the values to try compiling with; None after an error."""
    before = len(diags.items)
    if decl.task not in task_names:
        diags.error(
            f"no task named '{decl.task}'",
            decl.task_span,
            did_you_mean(decl.task, task_names) or "a sweep searches a task of its file",
        )
    task = tasks.get(decl.task)
    seen: dict[str, s.Setting] = {}
    space: dict[str, Distribution] = {}
    candidates: list[Candidate] = []
    data: dict[str, Any] = {"name": decl.name, "task": decl.task, "span": decl.span}
    spans: dict[str, Span] = {}
    for st in decl.settings:
        if st.key in seen:
            diags.error(
                f"'{st.key}' is given twice (first at line {seen[st.key].span.line})",
                st.key_span,
            )
            continue
        seen[st.key] = st
        if st.key in SETTINGS:
            _setting(st, data, spans, diags)
        elif st.key not in params:
            diags.error(
                f"no param named '{st.key}' to sweep",
                st.key_span,
                did_you_mean(st.key, [*params, *SETTINGS])
                or f"declare it with `param {st.key} = VALUE` and use it by name",
            )
        else:
            got = _distribution(st, diags)
            if got is not None:
                space[st.key] = got[0]
                ranged = st.value.span if got[0].kind not in ("choice", "grid") else None
                candidates.extend((st.key, text, span, ranged) for text, span in got[1])
    if not space and not any(st.key not in SETTINGS for st in decl.settings):
        diags.error(
            f"sweep '{decl.name}' searches no param",
            decl.name_span,
            "add a line per param, e.g. `hidden = choice(32, 64)`",
        )
    if data.get("search") == "optuna":
        for key, dist in space.items():
            if dist.kind == "grid":
                diags.error(
                    "grid(...) cannot be searched by optuna",
                    seen[key].value.span,
                    "use choice(...) with search = optuna, or search = random",
                )
    if task is not None:
        _metric(seen.get("metric"), task, data, diags)
    metric = data.setdefault("metric", "val.loss")
    data.setdefault("mode", "max" if metric.split(".")[-1] in MAXIMISED else "min")
    data.setdefault("trials", 1 if all(d.kind == "grid" for d in space.values()) else 10)
    data["space"] = space
    failed = len(diags.items) > before or task is None
    try:
        sweep = Sweep.model_validate(data)
    except ValidationError as exc:
        for field, message, help in messages(exc, "the sweep", set()):
            if field in spans:  # the others are reported above
                message = message.replace(f"'{field}' of the sweep", f"'{field}'")
                diags.error(message, spans[field], help)
        return None
    return None if failed else (sweep, candidates)


def _setting(st: s.Setting, data: dict[str, Any], spans: dict[str, Span], diags) -> None:
    spans[st.key] = st.value.span
    value = st.value
    if st.key == "metric":
        return  # checked against the task in _metric
    if st.key == "scheduler":
        if isinstance(value, s.SymbolValue) and value.name == "none":
            return
        call = value
        if isinstance(value, s.SymbolValue):
            call = s.CallValue(name=value.name, args=[], span=value.span, name_span=value.span)
        if not isinstance(call, s.CallValue) or call.name != "asha":
            diags.error(
                "'scheduler' must be asha, asha(grace=G, reduction=R) or none",
                call.name_span if isinstance(call, s.CallValue) else value.span,
                did_you_mean(call.name, ("asha", "none"))
                if isinstance(call, s.CallValue)
                else None,
            )
            return
        bound = bind_arguments(call.args, Asha, "asha", diags, skip=("name",))
        if bound is None:
            return
        args, arg_spans = bound
        try:
            data["scheduler"] = Asha.model_validate(
                {
                    k: _number(plain_value(v, diags)) if k == "reduction" else plain_value(v, diags)
                    for k, v in args.items()
                }
            )
        except ValidationError as exc:
            for field, message, help in messages(exc, "asha", set()):
                diags.error(message, arg_spans.get(field, call.name_span), help)
        return
    plain = plain_value(value, diags)
    if st.key in ("mode", "search"):
        allowed = ("min", "max") if st.key == "mode" else ("random", "optuna")
        if plain not in allowed:
            diags.error(
                f"'{st.key}' must be {one_of(allowed)}, got {show(plain)}",
                value.span,
                did_you_mean(str(plain), allowed) if isinstance(plain, str) else None,
            )
            return
    if plain is not None:
        data[st.key] = _number(plain) if st.key in ("cpus", "gpus") else plain


def _number(value: Any) -> Any:
    """Whole numbers where a fraction is allowed (`cpus = 1`, `reduction = 3`)."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _metric(st: s.Setting | None, task: Task, data: dict[str, Any], diags) -> None:
    reported = [f"val.{m}" for m in HELD_OUT_METRICS[task.kind]]
    if st is None:
        data["metric"] = DEFAULT_METRIC[task.kind]
        return
    value = st.value
    name = value.name if isinstance(value, s.SymbolValue) else None
    if name in reported:
        data["metric"] = name
        return
    if name is None:
        diags.error(f"'metric' must name a held-out metric such as {reported[-1]}", value.span)
        return
    diags.error(
        f"a {task.kind} task does not report '{name}'",
        value.span,
        did_you_mean(name, reported) or f"it reports {one_of(reported)}",
    )


def _distribution(
    st: s.Setting, diags: Diagnostics
) -> tuple[Distribution, list[tuple[str, Span]]] | None:
    """The distribution of one param, and its values (or bounds) as spec text."""
    value = st.value
    example = f"e.g. `{st.key} = choice(a, b)` or `{st.key} = loguniform(1e-4, 1e-1)`"
    if not isinstance(value, s.CallValue):
        diags.error(f"'{st.key}' needs a distribution to draw its values from", value.span, example)
        return None
    kind = value.name
    if kind not in DISTRIBUTIONS:
        diags.error(
            f"unknown distribution '{kind}'",
            value.name_span,
            did_you_mean(kind, DISTRIBUTIONS) or f"use {one_of(DISTRIBUTIONS)}",
        )
        return None
    keyword = next((a for a in value.args if a.key is not None), None)
    if keyword is not None:
        diags.error(
            f"{kind} takes its values in order, not by name",
            keyword.key_span or keyword.span,
            f"write {kind}({', '.join(value_text(a.value) for a in value.args)})",
        )
        return None
    if kind in ("choice", "grid"):
        if not value.args:
            diags.error(f"{kind} needs at least one value", value.span, f"write {kind}(a, b)")
            return None
        texts = [(value_text(a.value), a.value.span) for a in value.args]
        return Distribution(kind=kind, values=[t for t, _ in texts]), texts
    if len(value.args) != 2:
        diags.error(
            f"{kind} takes 2 numbers (low, high), got {len(value.args)}",
            value.span,
            f"write {kind}(LOW, HIGH)",
        )
        return None
    bounds = []
    for a in value.args:
        v = a.value
        ok = isinstance(v, s.NumberValue) and math.isfinite(v.value)
        if ok and kind == "randint" and not isinstance(v.value, int):
            diags.error(f"randint takes whole numbers, got {v.text}", v.span)  # type: ignore[union-attr]
            return None
        if not ok:
            diags.error(f"{kind} takes numbers, got {value_text(v)}", v.span)
            return None
        bounds.append(v)
    low, high = bounds
    if kind == "loguniform" and low.value <= 0:
        diags.error(f"loguniform needs a low bound above 0, got {low.text}", low.span)
        return None
    if low.value >= high.value:
        diags.error(
            f"{kind} needs low < high, got {low.text} and {high.text}",
            value.span,
            f"write {kind}({high.text}, {low.text})" if low.value > high.value else None,
        )
        return None
    if kind == "randint":  # the values drawn are LOW .. HIGH-1
        texts = [(str(low.value), low.span), (str(high.value - 1), high.span)]
    else:
        texts = [(repr(float(low.value)), low.span), (repr(float(high.value)), high.span)]
    dist = Distribution(kind=kind, low=low.value, high=high.value)
    return dist, texts


#: At most this many values of a sweep are compiled to check that they fit.
MAX_CANDIDATES = 64


def check_candidates(
    candidates: list[Candidate],
    compile_with: Callable[[str, str], None],
    diags: Diagnostics,
) -> None:
    """Compile the file with each value of the space (the ends of a range), one param
    at a time, and report a value that does not fit where its param is used."""
    failed: set[Span] = set()
    for name, text, span, ranged in candidates[:MAX_CANDIDATES]:
        if ranged is not None and ranged in failed:
            continue
        try:
            compile_with(name, text)
        except SpecError as err:
            if ranged is not None:
                failed.add(ranged)
            first = err.diagnostics[0]
            line = f" at line {first.span.line}" if first.span else ""
            message = first.message.replace(f" (from --set {name}={text})", "")
            diags.error(f"{name} = {text} does not fit{line}: {message}", span, first.help)
