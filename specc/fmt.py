"""The canonical layout of a spec: what `specc fmt` prints.

The layout depends only on what the spec says and where its comments sit,
never on how it was spaced, so formatting is idempotent. Every comment is
kept: a comment at the end of a line stays with the statement, step or
setting on that line; a comment on a line of its own stays above the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specc import surface as s

INDENT = "    "
WIDTH = 80


@dataclass
class _Anchor:
    """Comments attached to one printed line."""

    leading: list[str] = field(default_factory=list)
    trailing: list[str] = field(default_factory=list)


class _Comments:
    def __init__(self, comments: list[s.Comment]) -> None:
        self.by_id: dict[int, _Anchor] = {}
        self.pending = sorted(comments, key=lambda c: (c.span.line, c.span.column))

    def anchor(self, obj: object) -> _Anchor:
        return self.by_id.setdefault(id(obj), _Anchor())

    def has(self, obj: object) -> bool:
        a = self.by_id.get(id(obj))
        return bool(a and (a.leading or a.trailing))


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


def _attach(spec: s.SpecFile, cm: _Comments) -> list[str]:
    """Give every comment an anchor; returns the comments that end the file."""
    # Every printed line, in source order, with the source lines it covers.
    units: list[tuple[object, int, int, int]] = []  # (obj, first line, last line, item index)
    for idx, item in enumerate(spec.items):
        units.append((("head", id(item)), item.span.line, item.span.line, idx))
        if isinstance(item, s.ModelDecl):
            for st in item.statements:
                pipe = st.pipeline if isinstance(st, s.NodeDecl) else None
                head_end = pipe.sources[-1].span.end_line if pipe else st.span.end_line
                units.append((st, st.span.line, head_end, idx))
                for step in pipe.steps if pipe else []:
                    units.append((step, step.span.line, step.span.end_line, idx))
        else:
            for st in item.settings:
                units.append((st, st.span.line, st.span.end_line, idx))
        units.append((("end", id(item)), item.span.end_line, item.span.end_line, idx))
    keys: dict[object, object] = {}
    tail: list[str] = []

    def resolve(u: object) -> object:
        if isinstance(u, tuple):
            return keys.setdefault(u, u)
        return u

    for c in cm.pending:
        line = c.span.line
        text = c.text.rstrip()
        on_code = [u for u in units if u[1] <= line <= u[2] and _code_before(u, c)]
        if on_code:
            obj = on_code[-1][0]
            cm.anchor(resolve(obj)).trailing.append(text)
            continue
        after = [u for u in units if u[1] > line]
        if after:
            # a comment on its own line leads whatever is printed next
            cm.anchor(resolve(after[0][0])).leading.append(text)
        else:
            tail.append(text)
    cm.keys = keys  # type: ignore[attr-defined]
    return tail


def _code_before(unit: tuple[object, int, int, int], c: s.Comment) -> bool:
    """Whether the comment follows code of this unit on its line (a trailing comment)."""
    obj, first, _, _ = unit
    if isinstance(obj, tuple):
        return c.span.line == first
    span = obj.span  # type: ignore[attr-defined]
    return span.line <= c.span.line <= max(span.end_line, span.line) and (
        span.line < c.span.line or span.column < c.span.column
    )


def format_spec(spec: s.SpecFile) -> str:
    cm = _Comments(spec.comments)
    tail = _attach(spec, cm)
    keys = cm.keys  # type: ignore[attr-defined]
    out: list[str] = []

    def anchored(obj: object) -> _Anchor:
        return cm.by_id.get(id(obj), _Anchor())

    def key(kind: str, item: object) -> object:
        return keys.get((kind, id(item)), (kind, id(item)))

    def emit(indent: str, text: str, a: _Anchor) -> None:
        for lead in a.leading:
            out.append(indent + lead)
        trailing = a.trailing
        for extra in trailing[:-1]:
            out.append(indent + extra)
        out.append(indent + text + (f"  {trailing[-1]}" if trailing else ""))

    for idx, item in enumerate(spec.items):
        if idx:
            out.append("")
        head = anchored(key("head", item))
        if isinstance(item, s.ModelDecl):
            emit("", f"model {item.name} {{", head)
            prev_end = None
            for st in item.statements:
                a = anchored(st)
                if prev_end is not None and st.span.line - prev_end > 1:
                    out.append("")
                _statement(st, a, anchored, emit)
                prev_end = st.span.end_line
        else:
            emit("", f"task {item.name} : {item.task_kind} {{", head)
            width = max((len(st.key) for st in item.settings), default=0)
            prev_end = None
            for st in item.settings:
                if prev_end is not None and st.span.line - prev_end > 1:
                    out.append("")
                emit(INDENT, f"{st.key.ljust(width)} = {value_text(st.value)}", anchored(st))
                prev_end = st.span.end_line
        end = anchored(key("end", item))
        for lead in end.leading:
            out.append(INDENT + lead)
        out.append("}" + (f"  {end.trailing[-1]}" if end.trailing else ""))
        for extra in end.trailing[:-1]:
            out.append(extra)
    if tail:
        if out:
            out.append("")
        out.extend(tail)
    return "\n".join(out) + "\n"


def _statement(st: s.Statement, a: _Anchor, anchored, emit) -> None:
    if isinstance(st, s.InputDecl):
        size = f"[{value_text(st.type_size)}]" if st.type_size is not None else ""
        emit(INDENT, f"input {st.name} : {st.type_name}{size}", a)
        return
    prefix = f"output {st.name}" if st.is_output else st.name
    if st.pipeline is None:
        emit(INDENT, prefix, a)
        return
    pipe = st.pipeline
    head = f"{prefix} = {source_text(pipe)}"
    steps = pipe.steps
    inner_comments = any(anchored(step).leading or anchored(step).trailing for step in steps)
    one_line = head + "".join(f" -> {step_text(step)}" for step in steps)
    if not inner_comments and len(INDENT + one_line) + _trail_len(a) <= WIDTH:
        emit(INDENT, one_line, a)
        return
    emit(INDENT, head, a)
    for step in steps:
        emit(INDENT * 2, f"-> {step_text(step)}", anchored(step))


def _trail_len(a: _Anchor) -> int:
    return len(a.trailing[-1]) + 2 if a.trailing else 0
