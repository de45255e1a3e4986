"""From a spec file or a checkpoint to the reports and views `specc explain` shows.

Kept out of `specc.cli.explain` so the command stays option parsing, and so
the views can be built (and tested) without a command line. User errors are
raised as `SpecError`/`OptionError` for the caller to print; their messages
name the options (`--model`, `--task`, `--unroll`, `--svg`) because the
command line is where the names come from.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.text import Text

from specc.errors import CheckpointError, OptionError
from specc.explain.text import WIDTH, checkpoint_view, model_view, op_text, shape_text
from specc.explain.unroll import unroll_lines
from specc.fileio import write_text
from specc.frontend.suggest import did_you_mean
from specc.ir.accounting import Report, analyse
from specc.ir.spec import Task

# ----- building the reports -------------------------------------------------------


def _task_for(program: Any, model: str) -> Task | None:
    """The first task in the file that trains `model` (sets batch, T and optimizer)."""
    for task in program.ir.tasks:
        if task.model == model:
            return task
    return None


def _data_sizes(program: Any, task: Task, notes: list[str]) -> dict[str, int]:
    try:
        from specc.train.prepare import task_sizes
    except ImportError:
        notes.append("this build cannot read sizes from a task's data yet; use --sizes")
        return {}
    return dict(task_sizes(program, task))


def _check_name(option: str, kind: str, name: str, known: list[str], path: str) -> None:
    if name in known:
        return
    have = ", ".join(known) if known else "none"
    hint = did_you_mean(name, known)
    raise OptionError(
        f"{option}: {path} has no {kind} named '{name}' ({kind}s: {have})"
        + (f"; {hint}" if hint else "")
    )


def reports_from_spec(
    path: str,
    model: str | None = None,
    task: str | None = None,
    sizes: dict | None = None,
    params: dict[str, str] | None = None,
) -> list[Report]:
    """One report per model to explain, sizes bound from the task's data and `sizes`;
    `params` overrides declared params as `--set` does."""
    from specc.api import load

    program = load(path, params)
    sizes = dict(sizes or {})
    notes: list[str] = []
    if program.ir.params:  # the values the graph below was built with
        notes.append("params: " + ", ".join(f"{k} = {v}" for k, v in program.ir.params.items()))
    if model is not None:
        _check_name("--model", "model", model, program.models, path)
    if task is not None:
        _check_name("--task", "task", task, program.tasks, path)
        chosen = program.task(task)
        if model is not None and model != chosen.model:
            raise OptionError(f"task '{chosen.name}' trains model '{chosen.model}', not '{model}'")
        sizes = {**_data_sizes(program, chosen, notes), **sizes}
        names = [chosen.model]
    else:
        chosen = None
        names = [program.model(model).name] if model is not None else program.models
    reports = []
    for name in names:
        bound = program.bound_model(name, sizes)
        report = analyse(bound, chosen or _task_for(program, name))
        report.notes.extend(notes)
        reports.append(report)
    return reports


def load_checkpoint_report(path: str, model: str | None = None) -> tuple[Report, Any]:
    """The report of a checkpoint's model, and the checkpoint itself."""
    try:
        from specc.train.checkpoint import load_checkpoint
    except ImportError:
        raise CheckpointError(path, "this build of specc cannot read checkpoints yet") from None
    ckpt = load_checkpoint(path)
    if model is not None and model != ckpt.model.name:
        raise OptionError(f"the checkpoint holds model '{ckpt.model.name}', not '{model}'")
    return analyse(ckpt.model, ckpt.task), ckpt


# ----- views ------------------------------------------------------------------


def text_view(reports: list[Report], ckpt: Any = None) -> RenderableType:
    """Every model's table, one after another, then the checkpoint's training state."""
    parts: list[RenderableType] = []
    for i, report in enumerate(reports):
        if i:
            parts.append(Text(""))
        parts.append(model_view(report))
    if ckpt is not None:
        parts += [Text(""), checkpoint_view(ckpt)]
    return Group(*parts)


def unroll_view(reports: list[Report], steps: int) -> RenderableType:
    """Each rnn of the models drawn over `steps` time steps; OptionError when none has one."""
    parts: list[RenderableType] = []
    for report in reports:
        model = report.model
        for node in model.nodes:
            if not node.recurrent:
                continue
            if parts:
                parts.append(Text(""))
            x = model.shape_of(node.inputs[0])
            title = Text(f"{model.name}.{node.name}", style="bold underline")
            title.append(f" = {op_text(node)}", "")
            parts.append(title)
            parts.append(Text(f"{shape_text(x)} → {shape_text(node.shape)}", style="cyan"))
            parts.append(Text(node.equation(), style="dim"))
            parts.append(Text(""))
            parts.append(Text("\n".join(unroll_lines(model, node, steps))))
    if not parts:
        names = ", ".join(f"'{r.model.name}'" for r in reports)
        raise OptionError(f"--unroll: model {names} has no rnn to unroll")
    return Group(*parts)


def print_view(console: Console, view: RenderableType) -> None:
    """Print at most `WIDTH` columns wide: the tables are laid out for 80 columns."""
    console.print(view, width=min(console.width, WIDTH), no_wrap=False)


def save_svg(view: RenderableType, out: str, title: str) -> None:
    """Save the view as an SVG picture, recorded off-screen so the terminal is untouched."""
    recorder = Console(record=True, width=100, file=io.StringIO())
    recorder.print(view, width=WIDTH)
    write_text(out, recorder.export_svg(title=title))


def checkpoint_json(ckpt: Any) -> dict[str, Any]:
    """The `checkpoint` key of the explain JSON (built by the explain contract's model)."""
    from specc.explain.export import checkpoint_summary

    return checkpoint_summary(ckpt).document()
