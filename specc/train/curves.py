"""Learning curves from metrics files: what `specc plot` draws.

A metrics file (`DIR/<task>.json`, :class:`specc.train.records.RunMetrics`)
keeps every evaluation of a run. The chart has three panels sharing the step
axis: the training and held-out loss, one held-out metric, and the learning
rate; several runs are drawn on the same axes, one colour each, so they can
be compared at a glance. The best evaluation of each run is marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from specc.errors import DataError
from specc.plotting import pyplot
from specc.train.records import RunMetrics


@dataclass
class Run:
    """One metrics file, read and checked, with the label its lines carry."""

    label: str
    metrics: RunMetrics


def read_runs(paths: list[str]) -> list[Run]:
    """The metrics files, each labelled by the shortest end of its path that tells it
    apart from the others (`runs/t`, or `a/runs/t` and `b/runs/t`)."""
    stems = [Path(p).with_suffix("").parts for p in paths]
    depth = 2
    while depth < max(len(s) for s in stems) and len({s[-depth:] for s in stems}) < len(stems):
        depth += 1
    return [read_run(p, "/".join(s[-depth:])) for p, s in zip(paths, stems, strict=True)]


def read_run(path: str | Path, label: str | None = None) -> Run:
    """A metrics file, or a one-line error saying why it cannot be drawn."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DataError(p, f"cannot read it ({reason})") from None
    try:
        metrics = RunMetrics.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        problem = f"{where}: {first['msg']}" if where else first["msg"]
        raise DataError(p, f"not a specc metrics file ({problem})") from None
    if not metrics.history:
        raise DataError(p, "holds no evaluations to draw (written by a specc without history?)")
    return Run(label=label or "/".join(p.with_suffix("").parts[-2:]), metrics=metrics)


def metric_of(metrics: RunMetrics) -> str:
    """The held-out metric the middle panel shows: the one the run monitored, unless
    that is the loss (already drawn above), then accuracy, else the first other one."""
    names = [k for entry in metrics.history for k, v in entry.val.document().items()]
    if metrics.best is not None and metrics.best.metric != "loss":
        return metrics.best.metric
    for name in ("accuracy", *names):
        if name in names and name != "loss":
            return name
    return "loss"


def _series(history: list[Any], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for entry in history:
        value = entry.val.document().get(key) if key != "lr" else entry.lr
        if value is not None:
            steps.append(entry.step)
            values.append(float(value))
    return steps, values


def learning_curves(runs: list[Run]) -> Any:
    """The figure: loss, held-out metric and learning rate against steps, per run."""
    plt = pyplot("specc plot")
    fig, (loss_ax, metric_ax, lr_ax) = plt.subplots(
        3, 1, sharex=True, figsize=(8, 8), height_ratios=(3, 2, 1.2), layout="constrained"
    )
    metric = metric_of(runs[0].metrics)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        colour = colours[i % len(colours)]
        history = run.metrics.history
        steps = [h.step for h in history]
        loss_ax.plot(
            steps,
            [h.train_loss for h in history],
            "--",
            color=colour,
            alpha=0.7,
            label=f"{run.label}: train",
        )
        held_steps, held = _series(history, "loss")
        loss_ax.plot(held_steps, held, "-", color=colour, label=f"{run.label}: held-out")
        m_steps, m_values = _series(history, metric)
        metric_ax.plot(m_steps, m_values, "-", color=colour, label=run.label)
        best = run.metrics.best
        if best is not None and best.metric == metric:
            metric_ax.scatter([best.step], [best.value], color=colour, zorder=3, s=30)
        lr_steps, rates = _series(history, "lr")
        lr_ax.plot(lr_steps, rates, "-", color=colour, label=run.label)
    loss_ax.set_ylabel("loss (mse)" if runs[0].metrics.kind == "regress" else "loss (nats)")
    loss_ax.set_title("learning curves" + (f": {runs[0].label}" if len(runs) == 1 else ""))
    loss_ax.legend(fontsize="small")
    metric_ax.set_ylabel(f"held-out {metric.replace('_', ' ')}")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("training step")
    for ax in (loss_ax, metric_ax, lr_ax):
        ax.grid(True, alpha=0.3)
    return fig


def describe(runs: list[Run]) -> str:
    """One line per run: what was drawn (for the command's output)."""
    lines = []
    for run in runs:
        m = run.metrics
        best = f", best {m.best.metric} {m.best.value:.4f} at step {m.best.step}" if m.best else ""
        lines.append(f"{run.label}: {len(m.history)} evaluations over {m.steps} steps{best}")
    return "\n".join(lines)
