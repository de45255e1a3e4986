"""The rich text view: one table per model in dataflow order, then the accounting.

Every cell is a `rich.text.Text` (never markup), so names and values print as
they are. The view is laid out for 80 columns; long equations wrap inside
their cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from specc.ir.accounting import (
    ASSUMED_WORD_LENGTH,
    BYTES_PER_SCALAR,
    Count,
    Report,
    human_count,
    needs,
    optimizer_arrays,
    task_steps,
)
from specc.ir.ops import NodeBase, Shape
from specc.resources import human_bytes

WIDTH = 80


def value_text(value: Any) -> str:
    """An argument value as the user writes it: `true`, `0.01`, `vocab`, `[1, 2]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def op_text(node: NodeBase) -> str:
    """`rnn(hidden=128, reverse=true)`: the op with its non-default arguments."""
    args = node.non_default_attrs()
    if not args:
        return node.op
    return f"{node.op}(" + ", ".join(f"{k}={value_text(v)}" for k, v in args.items()) + ")"


def shape_text(shape: Shape | tuple) -> str:
    dims = shape.dims if isinstance(shape, Shape) else shape
    return "(" + ", ".join(str(d) for d in dims) + ")"


def sizes_text(report: Report) -> str:
    bound = [f"{k}={v}" for k, v in sorted(report.model.sizes.items())]
    unbound = [f"{k} unbound" for k in report.unbound]
    return ", ".join(bound + unbound)


def _count_cell(count: Count) -> str:
    return "" if count == 0 else count.text()


def _bytes(count: Count | None, scalars_per: int = 1) -> str:
    if count is None:
        return "—"
    value = count.value
    if value is None:
        return needs(count)
    return human_bytes(value * scalars_per * BYTES_PER_SCALAR)


def node_table(report: Report) -> Table:
    """Inputs first, then every node: name, op (with equation), shape, parameters."""
    model = report.model
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    # Shapes and counts are short unless sizes are unbound formulas; then they wrap
    # rather than squeeze the op column.
    table.add_column("node", style="bold", max_width=16, overflow="fold")
    table.add_column("op", min_width=30)
    table.add_column("shape", style="cyan", max_width=18)
    table.add_column("params", justify="right", style="green", max_width=16)
    previous = None
    for inp in model.inputs:
        kind = inp.type if inp.size is None else f"{inp.type}[{inp.size}]"
        table.add_row(Text(inp.name), Text(f"input : {kind}"), Text(shape_text(inp.shape())), "")
        previous = inp.name
    for info in report.nodes:
        node = info.node
        op = Text(op_text(node))
        if len(node.inputs) > 1 or node.inputs[0] != previous:
            op.append(" ← " + ", ".join(node.inputs), style="magenta")
        if node.name in model.outputs:
            op.append("  (output)", style="bold")
        equation = node.equation()
        if equation:
            op.append("\n" + equation, style="dim")
        params = Text(_count_cell(info.param_count))
        if info.state_count != 0:
            params.append(("\n" if params else "") + f"+{info.state_count.text()} stats", "dim")
        table.add_row(Text(node.name), op, Text(shape_text(info.shape)), params)
        previous = node.name
    return table


def footer(report: Report) -> Table:
    """Totals and the accounting: memory and multiply-adds, without a forward pass."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column()

    def row(label: str, text: str) -> None:
        grid.add_row(label, Text(text))

    trainable, frozen = report.trainable, report.non_trainable
    row("trainable", f"{trainable.text()} parameters")
    if frozen != 0:
        row("non-trainable", f"{frozen.text()} (batchnorm running statistics)")
        row("total", (trainable + frozen).text())
    task = report.task
    row("param memory", f"{_bytes(trainable)}, and as much again for gradients")
    if task is not None:
        k = optimizer_arrays(task)
        arrays = f"{k} array{'s' if k != 1 else ''} per parameter"
        row(f"{task.optimizer.name} state", f"{_bytes(report.optimizer_scalars())} ({arrays})")
    if frozen != 0:
        row("buffers", _bytes(frozen))
    acts = report.activation_scalars()
    if task is not None:
        t, where = task_steps(task)
        letters = any(n.shape.has_letters for n in report.nodes)
        word = f", C={ASSUMED_WORD_LENGTH} (assumed letters a word)" if letters else ""
        row(
            "activations",
            f"{_bytes(acts)} for one training batch, B={task.batch}, T={t} ({where}){word}",
        )
    else:
        row(
            "activations", f"{acts.text()} scalars of 4 bytes for a batch of B sequences of T steps"
        )

    token, seq = report.macs_token, report.macs_sequence
    parts = []
    if token != 0 or seq == 0:
        parts.append(f"{token.text()} per step")
    if seq != 0:
        parts.append(f"{seq.text()} per sequence")
    row("mult-adds", "forward " + " + ".join(parts) + "; backward ≈ 2× (matmuls only)")
    if task is not None:
        fwd = report.macs_batch()
        if fwd.value is None:
            row("", f"one batch: {needs(fwd)}")
        else:
            row(
                "",
                f"one batch: forward {human_count(fwd.value)}, "
                f"backward {human_count(2 * fwd.value)}",
            )
        row("task", f"{task.name} ({task.kind}, batch {task.batch}, {task.optimizer.name})")
    else:
        row("task", "none trains this model: batch B and time T stay symbols")
    for note in report.notes:
        row("note", note)
    return grid


def model_view(report: Report) -> RenderableType:
    model = report.model
    title = Text(f"model {model.name}", style="bold underline")
    ins = ", ".join(i.name for i in model.inputs)
    outs = ", ".join(model.outputs)
    title.append(f"   {ins} → {outs}", style="")
    sizes = sizes_text(report)
    if sizes:
        title.append(f"   ({sizes})", style="dim")
    return Group(title, node_table(report), Text(""), footer(report))


# ----- checkpoints ------------------------------------------------------------


def _num(x: float) -> str:
    return f"{x:.4g}"


def checkpoint_view(ckpt: Any) -> RenderableType:
    """Step, metrics, each parameter's shape and L2 norm, running statistics."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    total = getattr(ckpt, "total_steps", None)
    head.add_row("step", Text(f"{ckpt.step}" + (f" of {total}" if total else "")))
    metrics = ckpt.metrics or {}
    for key, value in metrics.items():
        if key in ("history", "task", "kind", "steps"):  # shown elsewhere, or too long
            continue
        if isinstance(value, dict):  # keep the scalar metrics; per-tag tables stay in the file
            value = {k: v for k, v in value.items() if not isinstance(v, (dict, list))}
        head.add_row(key, Text(_metric_text(value)))

    params = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    params.add_column("parameter", no_wrap=True, style="bold")
    params.add_column("shape", no_wrap=True, style="cyan")
    params.add_column("L2 norm", justify="right", no_wrap=True)
    for name, array in ckpt.params.items():
        arr = np.asarray(array, dtype=np.float64)
        params.add_row(Text(name), Text(shape_text(arr.shape)), Text(_num(np.linalg.norm(arr))))

    title = Text("checkpoint", style="bold underline")
    if getattr(ckpt, "path", None):
        title.append(f"   {ckpt.path}", style="")
    parts: list[RenderableType] = [title, head, params]
    stats = running_stats(ckpt.state)
    if stats:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        table.add_column("running stats", no_wrap=True, style="bold")
        for col in ("mean of mean", "mean of var", "min var", "max var"):
            table.add_column(col, justify="right", no_wrap=True)
        for node, row in stats.items():
            table.add_row(Text(node), *(Text(_num(v)) for v in row))
        parts.append(table)
    return Group(*parts)


def _metric_text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_metric_text(v)}" for k, v in value.items())
    if isinstance(value, float):
        return _num(value)
    return str(value)


def running_stats(state: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float, float]]:
    """Per batchnorm node: mean of running_mean, and mean/min/max of running_var."""
    out = {}
    for key, mean in state.items():
        node, _, name = key.rpartition(".")
        if name != "running_mean" or f"{node}.running_var" not in state:
            continue
        var = np.asarray(state[f"{node}.running_var"], dtype=np.float64)
        m = float(np.mean(np.asarray(mean, dtype=np.float64)))
        out[node] = (m, float(var.mean()), float(var.min()), float(var.max()))
    return out
