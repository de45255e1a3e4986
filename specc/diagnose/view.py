"""What `specc diagnose` shows: the gradient-flow chart and the covariate-shift table.

The command itself (options, measuring) is `specc.cli.diagnose`.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from specc.diagnose.flow import FLOOR, GradientFlow, ShiftTrace
from specc.fileio import write_text

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


def title_view(doc: dict[str, Any], flows: list[GradientFlow]) -> Group:
    """The gradient-flow chart under a title naming the model, rnn and batch measured."""
    title = (
        f"Gradient flow through time: model {doc['model']}, rnn '{doc['rnn']}' "
        f"({doc['activation']}, init {doc['init']}), T={doc['T']}, batch {doc['batch']}"
    )
    return diagnose_view(title, flows)


def flow_chart(doc: dict[str, Any], flows: list[GradientFlow]) -> Any:
    """‖∂L_T/∂h_t‖ against t on a log scale, one line per measurement (at
    initialisation, after training), so how fast each forgets is seen side by side."""
    from specc.plotting import pyplot

    plt = pyplot("a gradient-flow chart")
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for flow in flows:
        norms = np.maximum(np.asarray(flow.grad_norm, dtype=np.float64), FLOOR)
        ax.semilogy(
            np.arange(flow.length), norms, label=f"{flow.label} (×{flow.decay_per_step:.3f}/step)"
        )
    ax.set_xlabel("t (time step)")
    ax.set_ylabel(r"$\|\partial L_T / \partial h_t\|$")
    ax.set_title(
        f"gradient flow through time: {doc['model']}, rnn '{doc['rnn']}' ({doc['activation']}, "
        f"init {doc['init']}), T={doc['T']}",
        fontsize="medium",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def show(
    renderable: RenderableType,
    svg: str | None,
    quiet: bool = False,
    chart: Callable[[], Any] | None = None,
) -> None:
    """Print to the terminal, or (quiet) only record for the SVG.

    Quiet is for `--format json --svg`: stdout must hold only the JSON, yet the
    picture is still wanted. With a `chart` (a function drawing a matplotlib
    figure) and matplotlib installed, the SVG is that chart; otherwise it is the
    terminal view, recorded, with a note saying how to get the chart.
    """
    if quiet:
        console = Console(record=True, highlight=False, file=io.StringIO(), width=100)
    else:
        console = Console(record=bool(svg), highlight=False)
    console.print(renderable)
    if not svg:
        return
    from specc.plotting import available, save_figure

    if chart is not None and available():
        save_figure(chart(), svg)
        return
    if chart is not None:
        sys.stderr.write(
            "note: saved the terminal view; pip install 'specc[plot]' to save a chart\n"
        )
    write_text(svg, console.export_svg(title="specc diagnose"))
