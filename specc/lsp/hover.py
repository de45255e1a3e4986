"""Hover: what `specc explain` prints for the node, input, model or task under the cursor.

The figures come from `specc.explain`'s accounting on the checked IR, with the
sizes a task's data binds when they could be read (see `specc.lsp.sizes`), so
the hover and `specc explain --task` agree.
"""

from __future__ import annotations

from specc.api import Program
from specc.errors import SpecError
from specc.explain import Report, analyse
from specc.explain.text import op_text, shape_text
from specc.ir.spec import Model
from specc.lsp.registry import op_classes, written
from specc.lsp.sizes import Bound
from specc.lsp.symbols import Symbol


def _report(program: Program, name: str, bound: Bound | None) -> Report | None:
    sizes = bound.sizes if bound is not None else {}
    try:
        model = program.bound_model(name, sizes)
    except SpecError:
        try:
            model = program.bound_model(name, {})
        except SpecError:
            return None
    task = next((t for t in program.ir.tasks if t.model == name), None)
    return analyse(model, task)


def _sizes_note(report: Report, bound: Bound | None) -> str:
    parts = []
    if bound is not None and bound.sizes:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(bound.sizes.items()))
        parts.append(f"{shown} from the data of task `{bound.task}`")
    if report.unbound:
        parts.append(", ".join(report.unbound) + " unbound")
    return ("*" + "; ".join(parts) + "*") if parts else ""


def _node_text(report: Report, name: str, bound: Bound | None) -> str | None:
    model: Model = report.model
    for inp in model.inputs:
        if inp.name == name:
            kind = inp.type if inp.size is None else f"{inp.type}[{inp.size}]"
            return f"**{name}** · input : {kind}\n\nshape `{shape_text(inp.shape())}`"
    info = next((i for i in report.nodes if i.node.name == name), None)
    if info is None:
        return None
    node = info.node
    head = f"**{name}** · `{op_text(node)}`"
    head += " ← " + ", ".join(node.inputs)
    if name in model.outputs:
        head += "  (output)"
    lines = [head]
    cls = op_classes().get(node.op)
    if cls is not None and cls.summary:
        lines.append(cls.summary)
    figures = f"shape `{shape_text(info.shape)}`"
    if info.param_count != 0:
        figures += f" · **{info.param_count.text()}** parameters"
    if info.state_count != 0:
        figures += f" · +{info.state_count.text()} stats"
    lines.append(figures)
    equation = node.equation()
    if equation:
        lines.append(f"```text\n{equation}\n```")
    note = _sizes_note(report, bound)
    if note:
        lines.append(note)
    return "\n\n".join(lines)


def _model_text(report: Report, bound: Bound | None) -> str:
    model = report.model
    ins = ", ".join(i.name for i in model.inputs)
    outs = ", ".join(model.outputs)
    lines = [
        f"**model {model.name}** · {ins} → {outs}",
        f"{len(model.nodes)} nodes · **{report.trainable.text()}** trainable parameters",
    ]
    if report.non_trainable != 0:
        lines.append(f"non-trainable {report.non_trainable.text()}")
    note = _sizes_note(report, bound)
    if note:
        lines.append(note)
    return "\n\n".join(lines)


def hover_text(symbol: Symbol, program: Program | None, bound: dict[str, Bound]) -> str | None:
    """Markdown for the symbol, or None when the file has not compiled far enough."""
    if symbol.kind == "task":
        if program is None:
            return None
        task = next((t for t in program.ir.tasks if t.name == symbol.name), None)
        if task is None:
            return None
        given = task.data.model_dump(exclude={"source"}, exclude_none=True)
        data = f"{task.data.source}(" + ", ".join(f"{k}={written(v)}" for k, v in given.items())
        data += ")"
        return f"**task {task.name}** : {task.kind} · trains `{task.model}`\n\ndata `{data}`"
    if program is None:
        return None
    model_name = symbol.name if symbol.kind == "model" else symbol.model
    if model_name is None or model_name not in program.models:
        return None
    report = _report(program, model_name, bound.get(model_name))
    if report is None:
        return None
    if symbol.kind == "model":
        return _model_text(report, bound.get(model_name))
    return _node_text(report, symbol.name, bound.get(model_name))
