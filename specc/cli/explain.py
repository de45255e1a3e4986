"""`specc explain`: options, and the glue from a spec or checkpoint to a view.

The CLI registers the command with :func:`add_parser` and runs it with
:func:`run`; user errors are raised as `SpecError`/`OptionError` for the CLI
to print (exit status 1).
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.text import Text

from specc.errors import CheckpointError, OptionError, SpecError
from specc.explain.accounting import Report, analyse
from specc.explain.export import to_dot, to_json, to_mermaid
from specc.explain.text import WIDTH, checkpoint_view, model_view, op_text, shape_text
from specc.explain.unroll import unroll_lines
from specc.frontend.suggest import did_you_mean
from specc.ir.ops import SIZE_SYMBOLS
from specc.ir.spec import Task

FORMATS = ("text", "json", "dot", "mermaid")
MAX_UNROLL = 1_000_000

DESCRIPTION = """\
Show the computation graph of the models in a spec file or a checkpoint.

The text view lists, in dataflow order, every input and node: its op with the
arguments that differ from their defaults, where its inputs come from when
that is not the row above, its output shape (B = batch, T = time), its
trainable parameter count and its equation. Below it: trainable and
non-trainable counts, and an estimate without running anything of the memory
for parameters, gradients, optimizer state and one training batch's
activations (float32), and of the multiply-adds per time step and per batch.
The figures for one batch use the task's batch, seq_len (or the data's
sequence length) and optimizer: the task named by --task, else the first task
in the file that trains the model.

Sizes the data decides (vocab, labels) stay symbolic, and counts that depend
on them print as formulas such as 161·vocab + 20,864, unless --sizes binds
them or --task reads them from the task's data.

Given a checkpoint (a .npz file written by `specc run`), shows the trained
model's graph and, in addition, the training step and metrics, each
parameter's shape and L2 norm, and batchnorm running statistics."""

EPILOG = """\
examples:
  specc explain specs/char_rnn.spec
  specc explain specs/char_rnn.spec --sizes vocab=65
  specc explain specs/tagger.spec --task ud_english
  specc explain specs/adding.spec --unroll 5
  specc explain specs/char_rnn.spec --format mermaid > graph.mmd
  specc explain specs/char_rnn.spec --format dot | dot -Tsvg > graph.svg
  specc explain runs/python_docs.npz"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc explain` and its options."""
    p = sub.add_parser(
        "explain",
        help="show a model's computation graph, parameter counts and costs",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "file",
        metavar="FILE|CKPT",
        help="a .spec file, or a checkpoint (.npz) written by `specc run`",
    )
    p.add_argument(
        "--model",
        metavar="M",
        help="explain only model M (default: every model in the file, or the task's model)",
    )
    p.add_argument(
        "--task",
        metavar="T",
        help="explain task T's model with sizes read from T's data, and cost one "
        "training batch at T's batch, sequence length and optimizer",
    )
    p.add_argument(
        "--sizes",
        metavar="NAME=N,...",
        help="bind size symbols by hand, e.g. vocab=65,labels=12 (overrides sizes "
        "read from --task's data)",
    )
    p.add_argument(
        "--unroll",
        metavar="N",
        type=int,
        help="draw each rnn unrolled over N time steps instead of the table "
        "(text only; exit status 1 when the model has no rnn)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default): tables for people; json: the documented contract "
        "{models: [{name, sizes, nodes: [{name, op, inputs, shape, params, attrs}], "
        "params}]}; dot: Graphviz source; mermaid: a flowchart that renders on GitHub",
    )
    p.add_argument(
        "--svg",
        metavar="OUT",
        help="also save the text view (or the --unroll picture) as an SVG image at OUT",
    )


# ----- options ----------------------------------------------------------------


def parse_sizes(text: str | None) -> dict[str, int]:
    """`vocab=65,labels=12` -> {"vocab": 65, "labels": 12}; OptionError otherwise."""
    if text is None:
        return {}
    sizes: dict[str, int] = {}
    example = "e.g. --sizes vocab=65,labels=12"
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise OptionError(f"--sizes is empty; give NAME=N pairs ({example})")
    for item in items:
        if not item:
            continue
        name, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not name:
            raise OptionError(f"--sizes: '{item}' is not NAME=N ({example})")
        if name not in SIZE_SYMBOLS:
            hint = did_you_mean(name, SIZE_SYMBOLS)
            known = " and ".join(SIZE_SYMBOLS)
            raise OptionError(
                f"--sizes: unknown size '{name}'; the sizes are {known}"
                + (f" ({hint})" if hint else "")
            )
        if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
            raise OptionError(f"--sizes: '{item}': {name} must be a whole number ≥ 1")
        if name in sizes and sizes[name] != int(value):
            raise OptionError(f"--sizes: {name} is given twice ({sizes[name]} and {value})")
        sizes[name] = int(value)
    return sizes


def is_checkpoint(path: str) -> bool:
    return Path(path).suffix.lower() == ".npz"


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
    path: str, model: str | None = None, task: str | None = None, sizes: dict | None = None
) -> list[Report]:
    """One report per model to explain, sizes bound from the task's data and `sizes`."""
    from specc.api import load

    program = load(path)
    sizes = dict(sizes or {})
    notes: list[str] = []
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
    parts: list[RenderableType] = []
    for i, report in enumerate(reports):
        if i:
            parts.append(Text(""))
        parts.append(model_view(report))
    if ckpt is not None:
        parts += [Text(""), checkpoint_view(ckpt)]
    return Group(*parts)


def unroll_view(reports: list[Report], steps: int) -> RenderableType:
    parts: list[RenderableType] = []
    for report in reports:
        model = report.model
        for node in model.nodes:
            if node.op != "rnn":
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
    console.print(view, width=min(console.width, WIDTH), no_wrap=False)


def save_svg(view: RenderableType, out: str, title: str) -> None:
    recorder = Console(record=True, width=100, file=io.StringIO())
    recorder.print(view, width=WIDTH)
    try:
        recorder.save_svg(out, title=title)
    except OSError as exc:
        raise OptionError(f"--svg: cannot write {out}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    """Explain a spec or checkpoint as the options ask; returns the exit status."""
    sizes = parse_sizes(getattr(args, "sizes", None))
    fmt = getattr(args, "format", "text") or "text"
    steps = getattr(args, "unroll", None)
    svg = getattr(args, "svg", None)
    model, task = getattr(args, "model", None), getattr(args, "task", None)
    if steps is not None and not 1 <= steps <= MAX_UNROLL:
        raise OptionError(f"--unroll: {steps} is not a number of steps; use 1 to {MAX_UNROLL:,}")
    if steps is not None and fmt != "text":
        raise OptionError("--unroll draws text; it cannot be combined with --format " + fmt)

    ckpt = None
    if is_checkpoint(args.file):
        if sizes or task is not None:
            raise OptionError(
                "--sizes and --task do not apply to a checkpoint: its sizes and task are fixed"
            )
        report, ckpt = load_checkpoint_report(args.file, model)
        reports = [report]
    else:
        reports = reports_from_spec(args.file, model, task, sizes)
    if not reports:
        raise SpecError(f"{args.file} defines no model")

    console = Console()
    view = unroll_view(reports, steps) if steps is not None else text_view(reports, ckpt)
    if fmt == "text":
        print_view(console, view)
    elif fmt == "json":
        extra = None
        if ckpt is not None:
            extra = {"checkpoint": checkpoint_json(ckpt)}
        console.out(to_json(reports, extra), highlight=False)
    elif fmt == "dot":
        console.out(to_dot(reports), highlight=False, end="")
    else:
        console.out(to_mermaid(reports), highlight=False, end="")
    if svg:
        save_svg(view, svg, f"specc explain {Path(args.file).name}")
    return 0


def checkpoint_json(ckpt: Any) -> dict[str, Any]:
    """The `checkpoint` key of the explain JSON (built by the explain contract's model)."""
    from specc.explain.export import checkpoint_summary

    return checkpoint_summary(ckpt).document()
