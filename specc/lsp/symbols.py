"""Where every name of a spec is defined and used: models, tasks, inputs and nodes.

Built from the surface IR (the text as written, with spans), so it works as
soon as the text parses, before the file is free of other errors. Node names
follow the language's naming rule through the front end (`step_names`), so
`rnn_1` is found where the first of two unnamed rnn steps is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specc.errors import Span
from specc.frontend import surface as s
from specc.frontend.analysis import step_names
from specc.lsp.convert import contains


@dataclass
class Symbol:
    """A name and its places. `model` is the enclosing model of an input or node."""

    kind: str  # "model" | "task" | "input" | "node"
    name: str
    definition: Span
    model: str | None = None
    step: Span | None = None  # the op of the step that makes this node
    references: list[Span] = field(default_factory=list)


@dataclass
class Index:
    symbols: list[Symbol] = field(default_factory=list)

    def at(self, line: int, column: int) -> Symbol | None:
        """The symbol whose definition, step or reference is under (line, column)."""
        for sym in self.symbols:
            places = [sym.definition, *sym.references]
            if sym.step is not None:
                places.append(sym.step)
            if any(contains(span, line, column) for span in places):
                return sym
        return None

    def names_in(self, model: str) -> list[str]:
        """Inputs and nodes of a model, in the order they are written."""
        return [x.name for x in self.symbols if x.model == model and x.kind in ("input", "node")]

    def models(self) -> list[str]:
        return [x.name for x in self.symbols if x.kind == "model"]


def _model_symbols(decl: s.ModelDecl) -> list[Symbol]:
    defined: dict[str, Symbol] = {}
    uses: list[tuple[str, Span]] = []

    def define(name: str, span: Span, kind: str, step: Span | None = None) -> None:
        if name not in defined:  # the first definition counts, as in the compiler
            defined[name] = Symbol(kind, name, span, decl.name, step)

    for st, names in zip(decl.statements, step_names(decl), strict=True):
        if isinstance(st, s.InputDecl):
            define(st.name, st.name_span, "input")
            continue
        if st.pipeline is None:  # `output NAME` uses a name defined elsewhere
            uses.append((st.name, st.name_span))
            continue
        uses.extend((ref.name, ref.span) for ref in st.pipeline.sources)
        if not st.pipeline.steps:
            define(st.name, st.name_span, "node")
        last = len(st.pipeline.steps) - 1
        for i, (step, name) in enumerate(zip(st.pipeline.steps, names, strict=True)):
            if i == last:
                define(name, st.name_span, "node", step.op_span)
            else:
                define(name, step.op_span, "node", step.op_span)
    for name, span in uses:
        if name in defined:
            defined[name].references.append(span)
    return list(defined.values())


def build_index(spec: s.SpecFile) -> Index:
    """Every symbol of the file; a task's `model = NAME` is a reference to the model."""
    index = Index()
    models: dict[str, Symbol] = {}
    for item in spec.items:
        if isinstance(item, s.ModelDecl):
            if item.name not in models:
                models[item.name] = Symbol("model", item.name, item.name_span)
                index.symbols.append(models[item.name])
            index.symbols.extend(_model_symbols(item))
    for item in spec.items:
        if not isinstance(item, s.TaskDecl):
            continue
        index.symbols.append(Symbol("task", item.name, item.name_span))
        for st in item.settings:
            if st.key == "model" and isinstance(st.value, s.SymbolValue):
                target = models.get(st.value.name)
                if target is not None:
                    target.references.append(st.value.span)
    return index
