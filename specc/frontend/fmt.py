"""The canonical layout of a spec: what `specc fmt` prints.

The layout depends only on what the spec says and where its comments sit,
never on how it was spaced, so formatting is idempotent. Every comment is
kept: a comment at the end of a line stays with the statement, step or
setting on that line; a comment on a line of its own stays above the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specc.frontend import surface as s

INDENT = "    "
WIDTH = 80


@dataclass
class _Anchor:
    """Comments attached to one printed line: own-line ones above it (with their
    source lines, to keep blank lines between groups), end-of-line ones after it."""

    leading: list[tuple[int, str]] = field(default_factory=list)
    trailing: list[str] = field(default_factory=list)


@dataclass
class _Unit:
    """Something printed on a line of its own, with the source lines it covers."""

    key: object
    first: int
    last: int
    statement: object | None = None  # for steps: the statement they belong to


class _Comments:
    def __init__(self, comments: list[s.Comment]) -> None:
        self.by_id: dict[int, _Anchor] = {}
        self.pending = sorted(comments, key=lambda c: (c.span.line, c.span.column))

    def anchor(self, obj: object) -> _Anchor:
        return self.by_id.setdefault(id(obj), _Anchor())


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


def value_text(v: s.Value) -> str:
    if isinstance(v, s.NumberValue):
        return v.text
    if isinstance(v, s.StringValue):
        return f'"{_escape(v.value)}"'
    if isinstance(v, s.BoolValue):
        return "true" if v.value else "false"
    if isinstance(v, s.SymbolValue):
        return v.name
    if isinstance(v, s.ListValue):
        return "[" + ", ".join(value_text(i) for i in v.items) + "]"
    return f"{v.name}({args_text(v.args)})"


def args_text(args: list[s.Argument]) -> str:
    return ", ".join(
        (f"{a.key}={value_text(a.value)}" if a.key else value_text(a.value)) for a in args
    )


def step_text(step: s.Step) -> str:
    return f"{step.op}({args_text(step.args)})" if step.args else step.op


def source_text(p: s.Pipeline) -> str:
    names = [r.name for r in p.sources]
    return "(" + ", ".join(names) + ")" if p.grouped or len(names) > 1 else names[0]


def _units(spec: s.SpecFile) -> list[_Unit]:
    units: list[_Unit] = []
    for item in spec.items:
        if isinstance(item, s.ParamDecl):  # one line, no braces
            units.append(_Unit(item, item.span.line, item.span.end_line))
            continue
        units.append(_Unit(("head", id(item)), item.span.line, item.span.line))
        if isinstance(item, s.ModelDecl):
            for st in item.statements:
                pipe = st.pipeline if isinstance(st, s.NodeDecl) else None
                head_end = pipe.sources[-1].span.end_line if pipe else st.span.end_line
                units.append(_Unit(st, st.span.line, head_end))
                for step in pipe.steps if pipe else []:
                    units.append(_Unit(step, step.span.line, step.span.end_line, st))
        else:
            for st in item.settings:
                units.append(_Unit(st, st.span.line, st.span.end_line))
        units.append(_Unit(("end", id(item)), item.span.end_line, item.span.end_line))
    return units


def _trails(unit: _Unit, c: s.Comment) -> bool:
    """Whether the comment follows this unit's code on one of its lines."""
    if isinstance(unit.key, tuple):
        return c.span.line == unit.first
    span = unit.key.span  # type: ignore[attr-defined]
    return unit.first <= c.span.line <= max(unit.last, span.end_line) and (
        span.line < c.span.line or span.column < c.span.column
    )


def _attach(spec: s.SpecFile, cm: _Comments) -> list[tuple[int, str]]:
    """Give every comment an anchor; returns the comments that end the file."""
    units = _units(spec)
    keys: dict[object, object] = {}
    tail: list[tuple[int, str]] = []

    def resolve(key: object) -> object:
        return keys.setdefault(key, key) if isinstance(key, tuple) else key

    for c in cm.pending:
        text = c.text.rstrip()
        on_line = [u for u in units if u.first <= c.span.line <= u.last and _trails(u, c)]
        if on_line:
            unit = on_line[-1]
            st = unit.statement
            # a statement written on one line keeps its comment as a whole, so
            # printing it on one line again gives the same anchor next time
            if st is not None and st.span.line == st.span.end_line:  # type: ignore[attr-defined]
                unit = next(u for u in units if u.key is st)
            cm.anchor(resolve(unit.key)).trailing.append(text)
            continue
        after = [u for u in units if u.first > c.span.line]
        if after:
            cm.anchor(resolve(after[0].key)).leading.append((c.span.line, text))
        else:
            tail.append((c.span.line, text))
    cm.keys = keys  # type: ignore[attr-defined]
    return tail


def _leading_block(out: list[str], indent: str, lead: list[tuple[int, str]], line: int) -> None:
    """Own-line comments above a unit; a blank line where the source had one or more."""
    for i, (ln, text) in enumerate(lead):
        if i and ln - lead[i - 1][0] > 1:
            out.append("")
        out.append(indent + text)
    if lead and line - lead[-1][0] > 1:
        out.append("")


def format_spec(spec: s.SpecFile) -> str:
    cm = _Comments(spec.comments)
    tail = _attach(spec, cm)
    keys = cm.keys  # type: ignore[attr-defined]
    out: list[str] = []

    def anchored(obj: object) -> _Anchor:
        return cm.by_id.get(id(obj), _Anchor())

    def key(kind: str, item: object) -> object:
        return keys.get((kind, id(item)), (kind, id(item)))

    def emit(indent: str, text: str, a: _Anchor, line: int) -> None:
        _leading_block(out, indent, a.leading, line)
        for extra in a.trailing[:-1]:
            out.append(indent + extra)
        out.append(indent + text + (f"  {a.trailing[-1]}" if a.trailing else ""))

    def gap_before(a: _Anchor, line: int, prev_end: int | None) -> None:
        first = a.leading[0][0] if a.leading else line
        if prev_end is not None and first - prev_end > 1:
            out.append("")

    for idx, item in enumerate(spec.items):
        params_in_a_row = isinstance(item, s.ParamDecl) and isinstance(
            spec.items[idx - 1], s.ParamDecl
        )
        if idx and not params_in_a_row:
            out.append("")
        if isinstance(item, s.ParamDecl):
            a = anchored(item)
            if params_in_a_row:
                gap_before(a, item.span.line, spec.items[idx - 1].span.end_line)
            emit("", f"param {item.name} = {value_text(item.value)}", a, item.span.line)
            continue
        head = anchored(key("head", item))
        if isinstance(item, s.ModelDecl):
            emit("", f"model {item.name} {{", head, item.span.line)
            prev_end: int | None = item.span.line
            for st in item.statements:
                a = anchored(st)
                gap_before(a, st.span.line, prev_end)
                _statement(st, a, anchored, emit)
                prev_end = st.span.end_line
        else:
            title = (
                f"task {item.name} : {item.task_kind}"
                if isinstance(item, s.TaskDecl)
                else f"sweep {item.name} : {item.task}"
            )
            emit("", title + " {", head, item.span.line)
            width = max((len(st.key) for st in item.settings), default=0)
            prev_end = item.span.line
            for st in item.settings:
                a = anchored(st)
                gap_before(a, st.span.line, prev_end)
                emit(INDENT, f"{st.key.ljust(width)} = {value_text(st.value)}", a, st.span.line)
                prev_end = st.span.end_line
        end = anchored(key("end", item))
        gap_before(end, item.span.end_line, prev_end)
        _leading_block(out, INDENT, end.leading, item.span.end_line)
        out.append("}" + (f"  {end.trailing[-1]}" if end.trailing else ""))
        for extra in end.trailing[:-1]:
            out.append(extra)
    if tail:
        if out:
            out.append("")
        _leading_block(out, "", tail, tail[-1][0])
    return "\n".join(out) + "\n"


def _statement(st: s.Statement, a: _Anchor, anchored, emit) -> None:
    line = st.span.line
    if isinstance(st, s.InputDecl):
        size = f"[{value_text(st.type_size)}]" if st.type_size is not None else ""
        emit(INDENT, f"input {st.name} : {st.type_name}{size}", a, line)
        return
    prefix = f"output {st.name}" if st.is_output else st.name
    if st.pipeline is None:
        emit(INDENT, prefix, a, line)
        return
    pipe = st.pipeline
    head = f"{prefix} = {source_text(pipe)}"
    steps = pipe.steps
    inner_comments = any(anchored(step).leading or anchored(step).trailing for step in steps)
    one_line = head + "".join(f" -> {step_text(step)}" for step in steps)
    if not inner_comments and len(INDENT + one_line) + _trail_len(a) <= WIDTH:
        emit(INDENT, one_line, a, line)
        return
    emit(INDENT, head, a, line)
    for step in steps:
        emit(INDENT * 2, f"-> {step_text(step)}", anchored(step), step.span.line)


def _trail_len(a: _Anchor) -> int:
    return len(a.trailing[-1]) + 2 if a.trailing else 0
