"""`specc explain`: its options, and which view of a spec or checkpoint they ask for.

The reports and views themselves are built in `specc.explain.views`. User
errors are raised as `SpecError`/`OptionError` for `specc.cli.main` to print
(exit status 1).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from specc.backend import DEFAULT_BACKEND
from specc.cli.common import add_backend_options, check_device
from specc.cli.params import add_set_option, overrides
from specc.errors import OptionError, SpecError
from specc.frontend.suggest import did_you_mean
from specc.ir.ops import SIZE_SYMBOLS

NAME = "explain"

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
parameter's shape and L2 norm, and batchnorm running statistics.

The figures come from the spec alone and are the same on every backend. With
--backend (and --device), explain also checks that this backend can run every
op of the model there, without running it: an op the backend has no kernel
for, a missing extra or a device that is not there is an error (exit status
1), and the text view says where the model runs."""

EPILOG = """\
examples:
  specc explain specs/char_rnn.spec
  specc explain specs/char_rnn.spec --sizes vocab=65
  specc explain specs/tagger.spec --task ud_english
  specc explain specs/adding.spec --unroll 5
  specc explain specs/char_rnn.spec --format mermaid > graph.mmd
  specc explain specs/char_rnn.spec --format dot | dot -Tsvg > graph.svg
  specc explain specs/char_rnn.spec --backend torch --device cuda
  specc explain runs/python_docs.npz"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc explain` and its options."""
    p = sub.add_parser(
        NAME,
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
    add_backend_options(
        p,
        default=None,
        what="; explain checks it can run every op of the model (the figures are the "
        "same on every backend)",
    )
    add_set_option(p)


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
    """Checkpoints are told from specs by their suffix, as `specc run` writes them."""
    return Path(path).suffix.lower() == ".npz"


# ----- running -------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Explain a spec or checkpoint as the options ask; returns the exit status."""
    from rich.console import Console

    from specc.explain.export import to_dot, to_json, to_mermaid
    from specc.explain.views import (
        checkpoint_json,
        load_checkpoint_report,
        print_view,
        reports_from_spec,
        save_svg,
        text_view,
        unroll_view,
    )
    from specc.fileio import check_writable

    sizes = parse_sizes(getattr(args, "sizes", None))
    fmt = getattr(args, "format", "text") or "text"
    steps = getattr(args, "unroll", None)
    svg = getattr(args, "svg", None)
    model, task = getattr(args, "model", None), getattr(args, "task", None)
    if steps is not None and not 1 <= steps <= MAX_UNROLL:
        raise OptionError(f"--unroll: {steps} is not a number of steps; use 1 to {MAX_UNROLL:,}")
    if steps is not None and fmt != "text":
        raise OptionError("--unroll draws text; it cannot be combined with --format " + fmt)
    backend, device = getattr(args, "backend", None), getattr(args, "device", None)
    if device is not None:
        check_device(args)
    if svg:
        check_writable(svg)

    params = overrides(args)
    ckpt = None
    if is_checkpoint(args.file):
        if params:
            raise OptionError("--set does not apply to a checkpoint: its params are fixed")
        if sizes or task is not None:
            raise OptionError(
                "--sizes and --task do not apply to a checkpoint: its sizes and task are fixed"
            )
        report, ckpt = load_checkpoint_report(args.file, model)
        reports = [report]
    else:
        reports = reports_from_spec(args.file, model, task, sizes, params)
    if not reports:
        raise SpecError("defines no model", path=args.file)
    if backend is not None or device is not None:
        _check_backend(reports, backend or DEFAULT_BACKEND, device, args.file)

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


def _check_backend(reports: list, backend: str, device: str | None, path: str) -> None:
    """`--backend`/`--device`: refuse what the backend cannot run there, else say
    where each model runs (a note under its figures)."""
    from specc.backend import check_runs

    for report in reports:
        try:
            where = check_runs(report.model, backend, device)
        except SpecError as err:
            if err.path is None and type(err) is SpecError:
                err.path = path  # an op the backend lacks: say which file holds it
            raise
        report.notes.append(f"the {backend} backend runs every op of this model, on {where}")
