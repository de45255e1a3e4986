"""Machine-readable views of the graph: JSON (the interface contract), DOT, Mermaid.

All three are built from :class:`specc.ir.accounting.Report`, i.e. from
the IR alone. The JSON is filled into the models of `specc.explain.schema`
and serialised through them, so it always matches the published schema. DOT
and Mermaid are written by hand: no graphviz package needed.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from specc.explain.schema import (
    AccountingDoc,
    CheckpointSummary,
    ExplainDoc,
    InputDoc,
    ModelDoc,
    NodeDoc,
    RunningStats,
)
from specc.explain.text import op_text, running_stats, shape_text
from specc.ir.accounting import BYTES_PER_SCALAR, Count, Report, optimizer_arrays

# ----- json -------------------------------------------------------------------


def _dims(dims: tuple) -> list[int | str]:
    """Shape dims as JSON: numbers, "B"/"T", and unbound sizes by name."""
    return [d if isinstance(d, int) else str(d) for d in dims]


def _value(count: Count | None) -> int | None:
    return None if count is None else count.value


def _times(count: Count | None, k: int) -> int | None:
    v = _value(count)
    return None if v is None else v * k


def _accounting(report: Report) -> AccountingDoc:
    task = report.task
    acts = report.activation_scalars()
    macs = report.macs_batch() if task is not None else None
    return AccountingDoc(
        task=task.name if task is not None else None,
        bytes_per_scalar=BYTES_PER_SCALAR,
        param_bytes=_times(report.trainable, BYTES_PER_SCALAR),
        state_bytes=_times(report.non_trainable, BYTES_PER_SCALAR),
        optimizer_bytes=_times(report.optimizer_scalars(), BYTES_PER_SCALAR),
        optimizer_arrays=optimizer_arrays(task) if task is not None else None,
        activation_bytes=_times(acts, BYTES_PER_SCALAR) if task is not None else None,
        macs_forward_per_step=report.macs_token.value,
        macs_forward_per_sequence=report.macs_sequence.value,
        macs_forward_per_batch=_value(macs),
        macs_backward_per_batch=_times(macs, 2),
    )


def model_doc(report: Report) -> ModelDoc:
    """One model as the explain contract (`specc.explain.schema.ModelDoc`) has it."""
    model = report.model
    nodes = [
        NodeDoc(
            name=info.node.name,
            op=info.node.op,
            inputs=list(info.node.inputs),
            shape=_dims(info.shape.dims),
            params=info.param_count.value,
            attrs=info.node.attrs(),
            param_shapes={k: _dims(v) for k, v in info.params.items()},
            state=info.state_count.value,
        )
        for info in report.nodes
    ]
    return ModelDoc(
        name=model.name,
        sizes=dict(model.sizes),
        nodes=nodes,
        params=report.trainable.value,
        state=report.non_trainable.value,
        inputs=[
            InputDoc(name=i.name, type=i.type, shape=_dims(i.shape().dims)) for i in model.inputs
        ],
        outputs=list(model.outputs),
        unbound=report.unbound,
        accounting=_accounting(report),
    )


def model_json(report: Report) -> dict[str, Any]:
    """One model as plain JSON data (see :func:`model_doc`)."""
    return model_doc(report).document()


def checkpoint_summary(ckpt: Any) -> CheckpointSummary:
    """What `specc explain CKPT --format json` adds: step, metrics, norms, statistics."""
    return CheckpointSummary(
        step=int(ckpt.step),
        metrics=ckpt.metrics,
        param_norms={
            k: float(np.linalg.norm(np.asarray(v, dtype=np.float64)))
            for k, v in ckpt.params.items()
        },
        running_stats={
            node: RunningStats(mean_of_mean=m, mean_of_var=v, min_var=lo, max_var=hi)
            for node, (m, v, lo, hi) in running_stats(ckpt.state).items()
        },
    )


def to_json(reports: list[Report], extra: dict[str, Any] | None = None) -> str:
    """The explain document as text; `extra` holds its other top-level keys (`checkpoint`)."""
    doc = ExplainDoc.model_validate({"models": [model_doc(r) for r in reports], **(extra or {})})
    return json.dumps(doc.document(), indent=2, ensure_ascii=False)


# ----- labels shared by dot and mermaid -----------------------------------------


def _input_lines(inp) -> list[str]:
    kind = inp.type if inp.size is None else f"{inp.type}[{inp.size}]"
    return [f"{inp.name} : {kind}", shape_text(inp.shape())]


def _node_lines(info) -> list[str]:
    node = info.node
    op = op_text(node)
    first = op if node.name == node.op else f"{node.name} = {op}"
    lines = [first, shape_text(info.shape)]
    if info.param_count != 0:
        lines.append(f"{info.param_count.text()} params")
    return lines


# ----- dot --------------------------------------------------------------------


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_label(lines: list[str]) -> str:
    # Each line is escaped on its own, then joined by DOT's centred line break.
    return '"' + "\\n".join(_dot_quote(s)[1:-1] for s in lines) + '"'


def to_dot(reports: list[Report]) -> str:
    """A Graphviz digraph: one cluster per model, one node per input or op."""
    out = [
        "digraph specc {",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for mi, report in enumerate(reports):
        model = report.model

        def ident(name: str, prefix: str = model.name) -> str:
            return _dot_quote(f"{prefix}.{name}")

        out.append(f"  subgraph cluster_{mi} {{")
        out.append(f"    label={_dot_quote('model ' + model.name)};")
        for inp in model.inputs:
            label = _dot_label(_input_lines(inp))
            out.append(f"    {ident(inp.name)} [label={label}, shape=ellipse];")
        for info in report.nodes:
            node = info.node
            attrs = [f"label={_dot_label(_node_lines(info))}"]
            if node.summary:
                attrs.append(f"tooltip={_dot_quote(node.summary)}")
            if node.name in model.outputs:
                attrs.append("peripheries=2")
            out.append(f"    {ident(node.name)} [{', '.join(attrs)}];")
        for info in report.nodes:
            for src in info.node.inputs:
                out.append(f"    {ident(src)} -> {ident(info.node.name)};")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


# ----- mermaid ----------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label (entity codes for the specials)."""
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def _mermaid_label(lines: list[str]) -> str:
    return '"' + "<br/>".join(_mermaid_text(s) for s in lines) + '"'


def to_mermaid(reports: list[Report]) -> str:
    """A `flowchart TD` GitHub renders: every label quoted, ids never user text."""
    out = ["flowchart TD"]
    for mi, report in enumerate(reports):
        model = report.model
        ids: dict[str, str] = {}
        for i, inp in enumerate(model.inputs):
            ids[inp.name] = f"m{mi}i{i}"
        for i, info in enumerate(report.nodes):
            ids[info.node.name] = f"m{mi}n{i}"
        out.append(f"  subgraph m{mi}[{_mermaid_label(['model ' + model.name])}]")
        out.append("    direction TB")
        for inp in model.inputs:
            out.append(f"    {ids[inp.name]}([{_mermaid_label(_input_lines(inp))}])")
        for info in report.nodes:
            label = _mermaid_label(_node_lines(info))
            if info.node.name in model.outputs:
                out.append(f"    {ids[info.node.name]}[[{label}]]")
            else:
                out.append(f"    {ids[info.node.name]}[{label}]")
        for info in report.nodes:
            for src in info.node.inputs:
                out.append(f"    {ids[src]} --> {ids[info.node.name]}")
        out.append("  end")
    return "\n".join(out) + "\n"
