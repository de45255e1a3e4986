"""Names: the auto-naming rule, duplicates, undefined references, cycles.

Turns each surface model into a list of `RawNode`s: one per pipeline step,
named and wired to its inputs, in dataflow order. Arguments stay as written;
`validate` types them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from specc.errors import Diagnostics, Span
from specc.frontend import surface as s
from specc.frontend.suggest import did_you_mean


@dataclass
class RawNode:
    name: str
    op: str
    args: list[s.Argument]
    inputs: list[str]
    span: Span  # the step, where errors about it point
    op_span: Span
    input_spans: list[Span] = field(default_factory=list)
    alias: bool = False  # made by `a = b`, not written as a step


@dataclass
class ResolvedModel:
    decl: s.ModelDecl
    inputs: list[s.InputDecl]
    nodes: list[RawNode]  # dataflow order
    outputs: list[tuple[str, Span]]


def resolve_file(spec: s.SpecFile, diags: Diagnostics) -> list[ResolvedModel]:
    seen: dict[str, Span] = {}
    for item in spec.items:
        kind = item.kind  # model, task, param or sweep: each kind has its own names
        key = f"{kind}:{item.name}"
        if key in seen:
            first = seen[key]
            diags.error(
                f"{kind} '{item.name}' is defined twice (first at line {first.line})",
                item.name_span,
            )
        else:
            seen[key] = item.name_span
    return [resolve_model(m, diags) for m in spec.items if isinstance(m, s.ModelDecl)]


def _auto_names(decl: s.ModelDecl) -> list[list[str]]:
    """Names for every step of every statement, per the language's naming rule.

    A statement's last step takes the statement's name; other steps are named
    after their op, numbered in order of appearance (`rnn_1`, `rnn_2`) when that
    op names more than one step in the model.
    """
    pipelines = [
        st.pipeline.steps if isinstance(st, s.NodeDecl) and st.pipeline else []
        for st in decl.statements
    ]
    counts = Counter(step.op for steps in pipelines for step in steps[:-1])
    seen: Counter[str] = Counter()
    names: list[list[str]] = []
    for st, steps in zip(decl.statements, pipelines, strict=True):
        row = []
        for i, step in enumerate(steps):
            if i == len(steps) - 1:
                row.append(st.name)
            else:
                seen[step.op] += 1
                row.append(f"{step.op}_{seen[step.op]}" if counts[step.op] > 1 else step.op)
        names.append(row)
    return names


def resolve_model(decl: s.ModelDecl, diags: Diagnostics) -> ResolvedModel:
    defined: dict[str, Span] = {}
    inputs: list[s.InputDecl] = []
    nodes: list[RawNode] = []
    outputs: list[tuple[str, Span]] = []
    output_refs: list[s.NodeDecl] = []

    def define(name: str, span: Span, what: str) -> bool:
        if name in defined:
            first = defined[name]
            if what == "step":  # auto-named after its op: the user never wrote this name
                diags.error(
                    f"this step is named '{name}' after its op, but '{name}' is already "
                    f"defined in model '{decl.name}' (line {first.line})",
                    span,
                    f"rename the other '{name}', or end a statement with this step so it "
                    "takes the statement's name",
                )
            else:
                diags.error(
                    f"'{name}' is already defined in model '{decl.name}' (line {first.line})",
                    span,
                    "give this " + what + " a different name",
                )
            return False
        defined[name] = span
        return True

    for st, step_names in zip(decl.statements, _auto_names(decl), strict=True):
        if isinstance(st, s.InputDecl):
            if define(st.name, st.name_span, "input"):
                inputs.append(st)
            continue
        if st.pipeline is None:  # `output NAME`
            output_refs.append(st)
            continue
        pipe = st.pipeline
        sources = [ref.name for ref in pipe.sources]
        spans = [ref.span for ref in pipe.sources]
        if not pipe.steps:  # `a = b`: a second name for b
            if len(sources) != 1:
                diags.error(
                    f"'{st.name}' joins {len(sources)} values but no step combines them",
                    pipe.span,
                    "add a step such as `-> concat` or `-> add`",
                )
            if define(st.name, st.name_span, "node"):
                nodes.append(
                    RawNode(
                        st.name,
                        "identity",
                        [],
                        sources[:1],
                        st.span,
                        st.name_span,
                        spans[:1],
                        alias=True,
                    )
                )
        for i, (step, name) in enumerate(zip(pipe.steps, step_names, strict=True)):
            span = step.span
            name_span = st.name_span if i == len(pipe.steps) - 1 else step.op_span
            if not define(name, name_span, "node" if i == len(pipe.steps) - 1 else "step"):
                continue
            node = RawNode(
                name=name,
                op=step.op,
                args=step.args or [],
                inputs=sources,
                span=span,
                op_span=step.op_span,
                input_spans=spans,
            )
            nodes.append(node)
            sources, spans = [name], [step.op_span]
        if st.is_output:
            outputs.append((st.name, st.name_span))

    for ref in output_refs:
        if ref.name not in defined:
            diags.error(
                f"output '{ref.name}' is not defined in model '{decl.name}'",
                ref.name_span,
                did_you_mean(ref.name, defined),
            )
        elif any(name == ref.name for name, _ in outputs):
            diags.error(f"'{ref.name}' is already an output", ref.name_span)
        else:
            outputs.append((ref.name, ref.name_span))

    for node in nodes:
        for name, span in zip(node.inputs, node.input_spans, strict=True):
            if name not in defined:
                diags.error(
                    f"'{name}' is not defined in model '{decl.name}'",
                    span,
                    did_you_mean(name, defined),
                )

    if not outputs and not output_refs:
        diags.error(
            f"model '{decl.name}' has no output",
            decl.name_span,
            "mark the result with `output NAME = ...`",
        )
    if not inputs:
        diags.error(
            f"model '{decl.name}' has no input",
            decl.name_span,
            "declare one, e.g. `input chars : tokens`",
        )
    ordered = _dataflow_order(nodes, {i.name for i in inputs}, diags)
    return ResolvedModel(decl, inputs, ordered, outputs)


def _dataflow_order(nodes: list[RawNode], inputs: set[str], diags: Diagnostics) -> list[RawNode]:
    """Order nodes so each follows its inputs, keeping source order where free."""
    by_name = {n.name: n for n in nodes}
    done: set[str] = set(inputs)
    state: dict[str, int] = {}  # 1 visiting, 2 done
    order: list[RawNode] = []
    reported: set[str] = set()

    for start in nodes:
        if state.get(start.name):
            continue
        # iterative DFS so a 10,000-step pipeline cannot exhaust the stack
        stack: list[tuple[RawNode, int]] = [(start, 0)]
        state[start.name] = 1
        while stack:
            node, i = stack.pop()
            if i < len(node.inputs):
                stack.append((node, i + 1))
                dep = node.inputs[i]
                if dep in done or dep not in by_name:
                    continue
                if state.get(dep) == 1:
                    if dep not in reported:
                        reported.add(dep)
                        cycle = [n.name for n, _ in stack] + [dep]
                        cycle = cycle[cycle.index(dep) :]
                        diags.error(
                            "cycle: " + " -> ".join(reversed(cycle)),
                            node.input_spans[i],
                            "a value cannot depend on itself; rnn carries state through time",
                        )
                    continue
                if state.get(dep) != 2:
                    state[dep] = 1
                    stack.append((by_name[dep], 0))
                continue
            state[node.name] = 2
            done.add(node.name)
            order.append(node)
    return order
