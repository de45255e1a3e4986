"""Parse tree to surface IR: one method per grammar rule."""

from __future__ import annotations

from lark import Token, Tree

from specc.errors import Span
from specc.frontend import surface as s


def _span(meta_or_token) -> Span:
    m = meta_or_token
    return Span(m.line, m.column, m.end_line, m.end_column)


def _unescape(body: str) -> str:
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], "\\" + body[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _ToSurface:
    """One method per grammar rule, called with the rule's meta and its built children.

    A plain bottom-up walk rather than lark's Transformer, whose per-node
    dispatch is slow for multi-megabyte specs."""

    def build(self, tree: Tree):
        children = [self.build(c) if isinstance(c, Tree) else c for c in tree.children]
        return getattr(self, str(tree.data))(tree.meta, children)

    def start(self, meta, items):
        return list(items)

    def model(self, meta, children):
        name, *stmts = children
        return s.ModelDecl(
            name=str(name), statements=stmts, span=_span(meta), name_span=_span(name)
        )

    def input_decl(self, meta, children):
        name, (type_name, type_size, type_span) = children
        return s.InputDecl(
            name=str(name),
            type_name=type_name,
            type_size=type_size,
            span=_span(meta),
            name_span=_span(name),
            type_span=type_span,
        )

    def type_expr(self, meta, children):
        name = children[0]
        size = children[1] if len(children) > 1 else None
        return (str(name), size, _span(meta))

    def output_decl(self, meta, children):
        name = children[0]
        pipeline = children[1] if len(children) > 1 else None
        return s.NodeDecl(
            name=str(name),
            is_output=True,
            pipeline=pipeline,
            span=_span(meta),
            name_span=_span(name),
        )

    def node_decl(self, meta, children):
        name, pipeline = children
        return s.NodeDecl(
            name=str(name),
            is_output=False,
            pipeline=pipeline,
            span=_span(meta),
            name_span=_span(name),
        )

    def pipeline(self, meta, children):
        source, *rest = children
        steps = [c for c in rest if isinstance(c, s.Step)]
        grouped, sources = source
        return s.Pipeline(sources=sources, grouped=grouped, steps=steps, span=_span(meta))

    def name_ref(self, meta, children):
        tok = children[0]
        return (False, [s.NameRef(name=str(tok), span=_span(tok))])

    def multi_source(self, meta, children):
        return (True, [ref for _, refs in children for ref in refs])

    def step(self, meta, children):
        name = children[0]
        args = children[1] if len(children) > 1 else None
        if args is None and (meta.end_line, meta.end_column) != (name.end_line, name.end_column):
            args = []  # written with empty parentheses: `op()`
        return s.Step(op=str(name), args=args, span=_span(meta), op_span=_span(name))

    def task(self, meta, children):
        name, kind, *settings = children
        return s.TaskDecl(
            name=str(name),
            task_kind=str(kind),
            settings=settings,
            span=_span(meta),
            name_span=_span(name),
            kind_span=_span(kind),
        )

    def param(self, meta, children):
        name, value = children
        return s.ParamDecl(name=str(name), value=value, span=_span(meta), name_span=_span(name))

    def sweep(self, meta, children):
        name, task, *settings = children
        return s.SweepDecl(
            name=str(name),
            task=str(task),
            settings=settings,
            span=_span(meta),
            name_span=_span(name),
            task_span=_span(task),
        )

    def setting_key(self, meta, children):
        return children[0]

    def setting(self, meta, children):
        key, value = children
        return s.Setting(key=str(key), value=value, span=_span(meta), key_span=_span(key))

    def arguments(self, meta, children):
        return [
            c if isinstance(c, s.Argument) else s.Argument(key=None, value=c, span=c.span)
            for c in children
        ]

    def keyword(self, meta, children):
        key, value = children
        return s.Argument(key=str(key), value=value, span=_span(meta), key_span=_span(key))

    def number(self, meta, children):
        tok = children[0]
        text = str(tok)
        is_int = not any(c in text for c in ".eE")
        try:
            value: int | float = int(text) if is_int else float(text)
        except (ValueError, OverflowError):
            value = float("inf")
        return s.NumberValue(value=value, text=text, span=_span(tok))

    def string(self, meta, children):
        tok = children[0]
        return s.StringValue(value=_unescape(str(tok)[1:-1]), span=_span(tok))

    def true(self, meta, children):
        return s.BoolValue(value=True, span=_span(meta))

    def false(self, meta, children):
        return s.BoolValue(value=False, span=_span(meta))

    def symbol(self, meta, children):
        tok = children[0]
        return s.SymbolValue(name=str(tok), span=_span(tok))

    def dotted(self, meta, children):
        """`val.accuracy`: a dotted name (a metric); a symbol whose name has dots."""
        tok = children[0]
        return s.SymbolValue(name=str(tok), span=_span(tok))

    def call(self, meta, children):
        name = children[0]
        args = children[1] if len(children) > 1 else []
        return s.CallValue(name=str(name), args=args, span=_span(meta), name_span=_span(name))

    def list_value(self, meta, children):
        return s.ListValue(items=[c for c in children if c is not None], span=_span(meta))


def lower(tree: Tree, comments: list[Token]) -> s.SpecFile:
    """Build the surface IR of a whole file."""
    items = _ToSurface().build(tree)
    return s.SpecFile(
        items=items,
        comments=[s.Comment(text=str(c), span=_span(c)) for c in comments],
    )
