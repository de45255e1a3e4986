"""Named parameters: `param NAME = VALUE`, used by name in arguments and settings.

This pass runs before every other: it replaces each use of a param (a bare
name in an op argument, an input's size or a task setting) by the param's
value, so the later passes check the value exactly where it is used. The
substituted value takes the span of the use, so an error about it points at
the use; :meth:`Bound.annotate` then names the declaration (or the `--set`
that overrode it) in the message. `--set NAME=VALUE` overrides are parsed
here too, as spec values, and refused with a did-you-mean when nothing
declares NAME.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from specc.errors import Diagnostic, Diagnostics, OptionError, Span, SpecError
from specc.frontend import surface as s
from specc.frontend.fmt import value_text
from specc.frontend.suggest import did_you_mean


@dataclass
class Bound:
    """The file with every param use replaced by its value, and what was replaced where."""

    spec: s.SpecFile
    #: every declared param's value as used (after --set), written as spec text
    values: dict[str, str] = field(default_factory=dict)
    #: use span -> a note naming where the value came from
    notes: dict[Span, str] = field(default_factory=dict)
    #: span of a name that is no param but is close to one -> a did-you-mean
    suggestions: dict[Span, str] = field(default_factory=dict)
    #: "model:NAME" / "task:NAME" -> the params it uses
    used_by: dict[str, set[str]] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)

    def annotate(self, diags: Diagnostics) -> None:
        """Name the param behind an error at a use; suggest a param for a near-miss name."""
        for d in diags.items:
            if d.span is None:
                continue
            note = self.notes.get(d.span)
            if note is not None and note not in d.message:
                d.message = f"{d.message} ({note})"
            hint = self.suggestions.get(d.span)
            if hint is not None and d.help is None:
                d.help = hint

    def params_of(self, *owners: str) -> dict[str, str]:
        """The values of the params that these items use, in declaration order."""
        names = set().union(*(self.used_by.get(o, set()) for o in owners))
        return {k: v for k, v in self.values.items() if k in names}


def parse_override(item: str) -> tuple[str, str]:
    """`NAME=VALUE` from the command line, split; refuses anything else in one line."""
    name, eq, text = item.partition("=")
    name, text = name.strip(), text.strip()
    if not eq or not name or not text:
        raise OptionError(f"--set takes NAME=VALUE, got '{item}'")
    return name, text


def _override_value(name: str, text: str, declared: s.ParamDecl) -> s.Value:
    """Parse VALUE of `--set NAME=VALUE` as a spec value, placed where the declaration's is."""
    from specc.frontend.lower import lower
    from specc.frontend.syntax import parse

    source = f"param {name} = {text}"
    try:
        tree, _ = parse(source)
        items = lower(tree, []).items
    except SpecError:
        items = []
    if len(items) != 1 or not isinstance(items[0], s.ParamDecl):
        raise OptionError(
            f"--set {name}={text}: '{text}' is not one value; write a number, a name, "
            'a "string" or a call such as leaky_relu(slope=0.1)'
        )
    return _respan(items[0].value, declared.value.span)


def _respan(value: s.Value, span: Span) -> s.Value:
    """The value with every span inside it set to `span` (the use, where errors point)."""
    if isinstance(value, s.CallValue):
        args = [
            dataclasses.replace(
                a, value=_respan(a.value, span), span=span, key_span=span if a.key_span else None
            )
            for a in value.args
        ]
        return dataclasses.replace(value, args=args, span=span, name_span=span)
    if isinstance(value, s.ListValue):
        return dataclasses.replace(value, items=[_respan(v, span) for v in value.items], span=span)
    return dataclasses.replace(value, span=span)


class _Substitute:
    """Walks values, replacing param names; records uses and near misses."""

    def __init__(self, bound: Bound, decls: dict[str, s.ParamDecl], values: dict[str, s.Value]):
        self.bound, self.decls, self.values = bound, decls, values
        self.origin: dict[str, str] = {}
        self.owner = ""

    def value(self, v: s.Value) -> s.Value:
        if isinstance(v, s.SymbolValue):
            if v.name in self.values:
                self.bound.used_by.setdefault(self.owner, set()).add(v.name)
                self.bound.notes[v.span] = self.origin[v.name]
                return _respan(self.values[v.name], v.span)
            hint = did_you_mean(v.name, self.values)
            if hint is not None:
                self.bound.suggestions[v.span] = hint.replace("mean ", "mean the param ")
            return v
        if isinstance(v, s.CallValue):
            args = [dataclasses.replace(a, value=self.value(a.value)) for a in v.args]
            return dataclasses.replace(v, args=args)
        if isinstance(v, s.ListValue):
            return dataclasses.replace(v, items=[self.value(i) for i in v.items])
        return v

    def args(self, args: list[s.Argument] | None) -> list[s.Argument] | None:
        if args is None:
            return None
        return [dataclasses.replace(a, value=self.value(a.value)) for a in args]

    def model(self, m: s.ModelDecl) -> s.ModelDecl:
        self.owner = f"model:{m.name}"
        statements: list[s.Statement] = []
        for st in m.statements:
            if isinstance(st, s.InputDecl) and st.type_size is not None:
                st = dataclasses.replace(st, type_size=self.value(st.type_size))
            elif isinstance(st, s.NodeDecl) and st.pipeline is not None:
                steps = [dataclasses.replace(x, args=self.args(x.args)) for x in st.pipeline.steps]
                st = dataclasses.replace(st, pipeline=dataclasses.replace(st.pipeline, steps=steps))
            statements.append(st)
        return dataclasses.replace(m, statements=statements)

    def task(self, t: s.TaskDecl) -> s.TaskDecl:
        self.owner = f"task:{t.name}"
        settings = [
            st if st.key == "model" else dataclasses.replace(st, value=self.value(st.value))
            for st in t.settings
        ]
        return dataclasses.replace(t, settings=settings)


def bind_params(spec: s.SpecFile, overrides: Mapping[str, str], diags: Diagnostics) -> Bound:
    """Substitute every param's value (or its `--set` override) at each use.

    Raises OptionError for an override of a param the file does not declare."""
    decls: dict[str, s.ParamDecl] = {}
    for item in spec.items:
        if isinstance(item, s.ParamDecl):
            decls.setdefault(item.name, item)  # a second declaration is reported by resolve
    for name in overrides:
        if name not in decls:
            hint = did_you_mean(name, decls)
            known = (
                f"; {hint}"
                if hint
                else (f"; it declares {', '.join(decls)}" if decls else "; it declares no param")
            )
            raise OptionError(f"--set {name}: no param named '{name}' in this file{known}")
    bound = Bound(spec)
    if not decls:
        return bound
    values: dict[str, s.Value] = {}
    walk = _Substitute(bound, decls, values)
    items: list[s.Item] = []
    for item in spec.items:
        if isinstance(item, s.ParamDecl):
            if item.name in values:  # the duplicate; resolve reports it
                items.append(item)
                continue
            walk.owner = f"param:{item.name}"
            if item.name in overrides:
                value = _override_value(item.name, overrides[item.name], item)
                walk.origin[item.name] = f"from --set {item.name}={overrides[item.name]}"
            else:
                value = walk.value(item.value)  # may use params declared above it
                walk.origin[item.name] = f"param '{item.name}' at line {item.span.line}"
            values[item.name] = value
            bound.values[item.name] = value_text(value)
            items.append(dataclasses.replace(item, value=value))
        elif isinstance(item, s.ModelDecl):
            items.append(walk.model(item))
        elif isinstance(item, s.TaskDecl):
            items.append(walk.task(item))
        else:
            items.append(item)
    used = set().union(*bound.used_by.values()) if bound.used_by else set()
    for name, decl in decls.items():
        if name not in used:
            bound.warnings.append(
                Diagnostic(
                    f"param '{name}' is never used",
                    decl.name_span,
                    f"use it by name, e.g. `op(arg={name})`, or remove it",
                )
            )
    bound.spec = dataclasses.replace(spec, items=items)
    return bound
