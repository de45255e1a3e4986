"""`specc diagnose`: the gradient-flow chart, the covariate-shift table, and the command."""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from specc.diagnose.flow import FLOOR, GradientFlow, ShiftTrace
from specc.errors import OptionError

SPARKS = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 40


def _log(x: float) -> float:
    return math.log10(max(float(x), FLOOR))


def sparkline(
    values: np.ndarray, width: int = 60, lo: float | None = None, hi: float | None = None
) -> str:
    """One character per bucket of time steps, height by log10 of the norm."""
    logs = np.array([_log(v) for v in values])
    lo = float(logs.min()) if lo is None else lo
    hi = float(logs.max()) if hi is None else hi
    buckets = np.array_split(logs, min(width, len(logs)))
    span = max(hi - lo, 1e-12)
    return "".join(
        SPARKS[round((float(b.mean()) - lo) / span * (len(SPARKS) - 1))] for b in buckets
    )


def flow_view(flow: GradientFlow, lo: float, hi: float, rows: int = 12) -> Group:
    T = flow.length
    spark = sparkline(flow.grad_norm, lo=lo, hi=hi)
    head = Text.assemble(
        (f"{flow.label}\n", "bold"),
        f"  t=0 {spark} t={T - 1}\n",
    )
    table = Table(box=None, show_header=True, pad_edge=False)
    table.add_column("  t", justify="right")
    table.add_column("‖∂L_T/∂h_t‖", justify="right")
    table.add_column(f"log scale 1e{lo:.0f} .. 1e{hi:.0f}")
    picks = sorted({round(i) for i in np.linspace(T - 1, 0, min(rows, T))}, reverse=True)
    span = max(hi - lo, 1e-12)
    for t in picks:
        g = flow.grad_norm[t]
        n = round((_log(g) - lo) / span * BAR_WIDTH)
        table.add_row(f"  {t}", f"{g:.2e}", "█" * max(n, 0))
    horizon = flow.horizon()
    ratio = flow.ratio
    summary = Text(
        f"  decay per step back in time: ×{flow.decay_per_step:.4f}\n"
        f"  gradient at t=0 is {ratio:.1e} × its value at t={T - 1}\n"
        + (
            f"  falls below 1e-3 of its value at t={T - 1} after {horizon} steps back\n"
            if horizon is not None
            else f"  stays above 1e-3 of its value at t={T - 1} over all {T} steps\n"
        )
    )
    return Group(head, table, summary)


def diagnose_view(title: str, flows: list[GradientFlow]) -> Group:
    logs = [_log(v) for f in flows for v in f.grad_norm]
    hi = math.ceil(max(logs))
    lo = min(math.floor(min(logs)), hi - 6)  # at least six decades, so shapes compare
    parts: list[Any] = [Text(title, style="bold"), Text("")]
    for f in flows:
        parts.append(flow_view(f, lo, hi))
    return Group(*parts)


def shift_view(traces: list[ShiftTrace]) -> Table:
    table = Table(
        title=f"Input of layer '{traces[0].layer}' on a fixed probe batch during training",
        caption="mean drift: RMS change of per-feature means since step 0, in initial standard "
        "deviations; var drift: mean |log(σ²/σ²₀)| (0.69 ≈ a 2× change)",
        title_justify="left",
    )
    table.add_column("step", justify="right")
    for t in traces:
        table.add_column(f"{t.variant}\nmean drift", justify="right")
        table.add_column("var drift", justify="right")
    drifts = [(t.mean_drift(), t.var_drift()) for t in traces]
    for i, step in enumerate(traces[0].steps):
        row = [str(step)]
        for md, vd in drifts:
            row += [f"{md[i]:.3f}", f"{vd[i]:.3f}"]
        table.add_row(*row)
    return table


# ----- command -----------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose",
        help="gradient flow through time (why a plain rnn forgets)",
        description="Measure ‖∂L_T/∂h_t‖: how much the loss at the last step depends on the "
        "hidden state at each earlier step t, on a batch of the task's data, at "
        "initialisation and (with --train) after training. FILE may be a checkpoint. "
        "With --shift, measure instead how a layer's input distribution drifts during "
        "training with and without batchnorm.",
    )
    p.add_argument("file", metavar="FILE", help="a spec file or a checkpoint (.npz)")
    p.add_argument("--task", metavar="T", help="which task (default: the first)")
    p.add_argument("--rnn", metavar="NODE", help="which rnn node (default: the first)")
    p.add_argument(
        "--train",
        action="store_true",
        help="also train the task (as specc run does) and measure again",
    )
    p.add_argument(
        "--shift",
        action="store_true",
        help="measure internal covariate shift with and without batchnorm",
    )
    p.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="training steps for --train or --shift (default: the task's)",
    )
    p.add_argument("--seed", type=int, metavar="S", help="override the task's seed")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--svg", metavar="OUT", help="also save the chart as an SVG picture")
    p.add_argument("--out", metavar="DIR", help="where --train writes its checkpoint")


def run(args: argparse.Namespace) -> int:
    from specc.api import load
    from specc.diagnose.flow import covariate_shift, gradient_flow
    from specc.train.checkpoint import load_checkpoint
    from specc.train.loop import configure, run_task
    from specc.train.prepare import prepare

    if args.steps is not None and args.steps <= 0:
        raise OptionError(f"--steps must be a positive whole number, got {args.steps}")
    flows: list[GradientFlow] = []
    doc: dict[str, Any] = {}
    if Path(args.file).suffix == ".npz":
        ckpt = load_checkpoint(args.file)
        task = ckpt.task
        base = Path(ckpt.spec_path).parent if ckpt.spec_path else Path.cwd()
        prepared = prepare(task, base)
        net = ckpt.network()
        net = net.astype("float64")
        flows.append(
            gradient_flow(
                net,
                prepared.batch(0, 0),
                task,
                args.rnn,
                f"after {ckpt.step} training steps (checkpoint)",
            )
        )
        model_name = ckpt.model.name
    else:
        program = load(args.file)
        task = configure(program.task(args.task), None, None, args.seed)
        prepared = prepare(task, program.base_dir)
        model = program.bound_model(task.model, prepared.sizes)
        model_name = model.name
        if args.shift:
            steps = args.steps or 200
            every = max(1, steps // 10)
            traces = covariate_shift(model, task, prepared, steps, every, task.seed)
            if args.format == "json":
                sys.stdout.write(
                    json.dumps(
                        {
                            "model": model.name,
                            "task": task.name,
                            "shift": [t.to_json() for t in traces],
                        }
                    )
                    + "\n"
                )
            else:
                _print(shift_view(traces), args.svg)
            return 0
        net = program.build(task.model, prepared.sizes, seed=task.seed, dtype="float64")
        batch = prepared.batch(0, 0)
        flows.append(gradient_flow(net, batch, task, args.rnn, "at initialisation"))
        if args.train:
            result = run_task(
                program, task.name, steps=args.steps, seed=args.seed, out_dir=args.out
            )
            trained = result.net.astype("float64")
            flows.append(
                gradient_flow(
                    trained, batch, task, args.rnn, f"after {result.steps} training steps"
                )
            )
            doc["trained_metrics"] = result.metrics
    node = net.model.node(flows[0].node)
    doc.update(
        {
            "model": model_name,
            "task": task.name,
            "rnn": node.name,
            "activation": node.activation.text(),
            "init": node.init,
            "batch": int(prepared.batch(0, 0).targets.shape[0]),
            **flows[0].to_json(),
        }
    )
    if len(flows) > 1:
        doc["after_training"] = flows[1].to_json()
    if args.format == "json":
        sys.stdout.write(json.dumps(doc) + "\n")
        if args.svg:
            _print(_title_view(doc, flows), args.svg, quiet=True)
        return 0
    _print(_title_view(doc, flows), args.svg)
    return 0


def _title_view(doc: dict[str, Any], flows: list[GradientFlow]) -> Group:
    title = (
        f"Gradient flow through time: model {doc['model']}, rnn '{doc['rnn']}' "
        f"({doc['activation']}, init {doc['init']}), T={doc['T']}, batch {doc['batch']}"
    )
    return diagnose_view(title, flows)


def _print(renderable, svg: str | None, quiet: bool = False) -> None:
    """Print to the terminal, or (quiet) only record for the SVG."""
    if quiet:
        console = Console(record=True, highlight=False, file=io.StringIO(), width=100)
    else:
        console = Console(record=bool(svg), highlight=False)
    console.print(renderable)
    if svg:
        console.save_svg(svg, title="specc diagnose")
