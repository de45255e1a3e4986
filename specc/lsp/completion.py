"""Completion: what may be written at the cursor, from the registries and the file's names.

The text before the cursor rarely parses (it is being typed), so the context
is read from its tokens: which block the cursor is in (top level, a model, a
task of some kind), which call's parentheses it is inside, and the token just
before it. What is offered comes from the op registry (ops and their
arguments with defaults and ranges), the task schema (kinds, settings), the
data sources and optimizers, and the names the file defines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lsprotocol import types

from specc.ir.spec import DATA_CLASSES, OPTIMIZER_CLASSES, TASK_KINDS, Task
from specc.lsp import registry
from specc.lsp.symbols import Index

_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|->|[A-Za-z_][A-Za-z0-9_]*'
    r"|-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|\S"
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = ("model", "task", "input", "output", "true", "false")
INPUT_TYPES = ("tokens", "sequence", "vector")
LOSSES = ("cross_entropy", "mse")


@dataclass
class Context:
    """Where the cursor is, as far as the tokens before it tell."""

    block: str = "top"  # "top" | "model" | "task"
    name: str | None = None  # the model's or task's name
    kind: str | None = None  # the task's kind
    calls: list[tuple[str | None, str]] = field(default_factory=list)  # (callee, where)
    prev: list[str] = field(default_factory=list)  # the tokens before the word being typed
    given: set[str] = field(default_factory=set)  # settings already given in this task


def _is_name(tok: str | None) -> bool:
    return tok is not None and bool(_NAME.match(tok)) and tok not in _KEYWORDS


def context(before: str) -> Context:
    """Read the context from all the text before the cursor."""
    tokens = [t for t in _TOKEN.findall(before) if not t.startswith("#")]
    if tokens and _NAME.match(tokens[-1]) and before.endswith(tokens[-1]):
        tokens.pop()  # the word being typed
    ctx = Context()
    depth = 0
    header: list[str] = []
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        if tok == "{":
            depth += 1
            if depth == 1:
                _enter(ctx, header)
            header = []
        elif tok == "}":
            depth = max(0, depth - 1)
            if depth == 0:
                ctx.block, ctx.name, ctx.kind, ctx.calls, ctx.given = "top", None, None, [], set()
        elif tok == "(":
            ctx.calls.append((prev if _is_name(prev) else None, _where(ctx, tokens, i)))
        elif tok == ")":
            if ctx.calls:
                ctx.calls.pop()
        elif depth == 0:
            header.append(tok)
        elif tok == "=" and ctx.block == "task" and not ctx.calls and prev:
            ctx.given.add(prev)
    ctx.prev = tokens[-2:]
    return ctx


def _enter(ctx: Context, header: list[str]) -> None:
    for j in range(len(header) - 1, -1, -1):
        if header[j] == "model":
            ctx.block, ctx.name = "model", header[j + 1] if j + 1 < len(header) else None
            return
        if header[j] == "task":
            rest = header[j + 1 :]
            ctx.block = "task"
            ctx.name = rest[0] if rest else None
            ctx.kind = rest[2] if len(rest) > 2 and rest[1] == ":" else None
            return


def _where(ctx: Context, tokens: list[str], i: int) -> str:
    """What a `(` at tokens[i] opens: a step's arguments, an activation's, a data
    source's or optimizer's, or a list of sources."""
    if ctx.block == "task":
        return "task"
    callee = tokens[i - 1] if i else None
    if not _is_name(callee):
        return "sources"
    before = tokens[i - 2] if i >= 2 else None
    if before == "->":
        return "step"
    if before == "=" and i >= 3 and tokens[i - 3] == "activation":
        return "activation"
    return "value"


def _item(label: str, kind: types.CompletionItemKind, detail: str = "", doc: str = "", insert=None):
    return types.CompletionItem(
        label=label,
        kind=kind,
        detail=detail or None,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc)
        if doc
        else None,
        insert_text=insert,
    )


def _ops() -> list[types.CompletionItem]:
    items = []
    for op, cls in registry.op_classes().items():
        args = "\n".join(f"- `{a.text()}`" for a in registry.arguments(cls))
        doc = (cls.summary or "") + ("\n\n" + args if args else "")
        items.append(
            _item(op, types.CompletionItemKind.Function, registry.signature(op, cls), doc.strip())
        )
    return items


def _words(words, kind: types.CompletionItemKind, detail: str = "") -> list[types.CompletionItem]:
    return [_item(str(w), kind, detail) for w in dict.fromkeys(words)]


def _arguments(cls) -> list[types.CompletionItem]:
    return [
        _item(a.name, types.CompletionItemKind.Property, a.text(), insert=f"{a.name}=")
        for a in registry.arguments(cls)
    ]


def _values(cls, key: str) -> list[types.CompletionItem]:
    for a in registry.arguments(cls):
        if a.name == key:
            return _words(a.values, types.CompletionItemKind.EnumMember, a.text())
    return []


def _calls(classes: dict) -> list[types.CompletionItem]:
    return [
        _item(name, types.CompletionItemKind.Class, registry.signature(name, cls))
        for name, cls in classes.items()
    ]


def _setting_detail(key: str) -> str:
    if key == "data":
        return "data = " + " | ".join(f"{k}(...)" for k in DATA_CLASSES)
    if key == "optimizer":
        return "optimizer = " + " | ".join(f"{k}(...)" for k in OPTIMIZER_CLASSES)
    if key == "model":
        return "model = a model of this file (required)"
    if key == "loss":
        return "loss = " + " | ".join(LOSSES)
    args = {a.name: a for a in registry.arguments(Task)}
    return args[key].text() if key in args else key


def _task(ctx: Context, index: Index) -> list[types.CompletionItem]:
    key = ctx.prev[0] if len(ctx.prev) == 2 and ctx.prev[1] == "=" else None
    if key == "data":
        fit = {k: c for k, c in DATA_CLASSES.items() if ctx.kind in (None, *c.kinds)}
        return _calls(fit or DATA_CLASSES)
    if key == "optimizer":
        return _calls(OPTIMIZER_CLASSES)
    if key == "model":
        return _words(index.models(), types.CompletionItemKind.Module, "a model of this file")
    if key == "loss":
        return _words(LOSSES, types.CompletionItemKind.EnumMember)
    if key is not None:
        return []
    keys = Task.settings_for(ctx.kind) if ctx.kind in TASK_KINDS else Task.COMMON_SETTINGS
    return [
        _item(k, types.CompletionItemKind.Field, _setting_detail(k), insert=f"{k} = ")
        for k in keys
        if k not in ctx.given
    ]


def _model(ctx: Context, index: Index) -> list[types.CompletionItem]:
    last = ctx.prev[-1] if ctx.prev else None
    names = index.names_in(ctx.name) if ctx.name else []
    if last == ":":
        return _words(INPUT_TYPES, types.CompletionItemKind.TypeParameter, "an input type")
    if last in ("=", "output"):
        return _words(names, types.CompletionItemKind.Variable, f"in model {ctx.name}")
    return _words(("input", "output"), types.CompletionItemKind.Keyword)


def _in_call(ctx: Context, index: Index) -> list[types.CompletionItem]:
    callee, where = ctx.calls[-1]
    if where == "sources":
        return _words(index.names_in(ctx.name or ""), types.CompletionItemKind.Variable)
    cls = registry.callee_class(callee or "", where)
    if cls is None:
        return []
    if len(ctx.prev) == 2 and ctx.prev[1] == "=" and _is_name(ctx.prev[0]):
        return _values(cls, ctx.prev[0])
    if ctx.prev and ctx.prev[-1] in ("(", ","):
        return _arguments(cls)
    return []


def complete(before: str, index: Index) -> list[types.CompletionItem]:
    """The completion items at a cursor preceded by `before` (the text up to it)."""
    ctx = context(before)
    last = ctx.prev[-1] if ctx.prev else None
    if last == "->":
        return _ops()
    if ctx.calls:
        return _in_call(ctx, index)
    if ctx.block == "task":
        return _task(ctx, index)
    if ctx.block == "model":
        return _model(ctx, index)
    if last == ":":
        return _words(TASK_KINDS, types.CompletionItemKind.EnumMember, "a task kind")
    if last in (None, "}"):
        return _words(("model", "task"), types.CompletionItemKind.Keyword)
    return []


__all__ = ["Context", "complete", "context"]
