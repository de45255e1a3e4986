"""What a sweep shows: a live table of its trials, then the results sorted by the metric,
the best params, the command that reproduces the best trial, and a JSON summary."""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.table import Table

from specc.fileio import write_text
from specc.ir.sweep import Sweep
from specc.sweep.space import as_text
from specc.sweep.trial import FAILURE_FILE


@dataclass
class TrialRow:
    """One trial as the tables and the summary show it."""

    id: str
    params: dict[str, str]
    status: str  # running, done, stopped early, failed
    metric: float | None = None
    epochs: int = 0
    folder: str = ""
    error: str | None = None


@dataclass
class Summary:
    """The JSON summary a sweep writes beside its trials (`summary.json`)."""

    sweep: str
    task: str
    spec: str
    metric: str
    mode: str
    trials: list[TrialRow] = field(default_factory=list)
    best: TrialRow | None = None
    command: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def _failure(folder: str) -> str:
    try:
        return (Path(folder) / FAILURE_FILE).read_text().strip()
    except OSError:
        return "the trial failed; see its folder"


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def row_of(trial_id: str, config: dict, metrics: dict, folder: str, error: bool, sweep: Sweep):
    """A table row from what Tune knows about a trial."""
    epochs = int(metrics.get("epoch", 0) or 0)
    planned = int(metrics.get("epochs_planned", 0) or 0)
    status = "failed" if error else ("done" if epochs and epochs >= planned else "stopped early")
    return TrialRow(
        id=trial_id,
        params={k: as_text(v) for k, v in config.items()},
        status=status,
        metric=_finite(metrics.get(sweep.metric)),
        epochs=epochs,
        folder=folder,
        error=_failure(folder) if error else None,
    )


def ranked(rows: list[TrialRow], mode: str) -> list[TrialRow]:
    """Best first by the metric; failed trials and trials without the metric last."""

    def key(r: TrialRow) -> tuple:
        if r.metric is None:
            return (1, 0.0, r.id)
        return (0, -r.metric if mode == "max" else r.metric, r.id)

    return sorted(rows, key=key)


def table(rows: list[TrialRow], sweep: Sweep, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("trial")
    for name in sweep.space:
        t.add_column(name, justify="right")
    t.add_column(sweep.metric, justify="right")
    t.add_column("epochs", justify="right")
    t.add_column("status")
    for r in rows:
        metric = f"{r.metric:.4f}" if r.metric is not None else "-"
        status = r.status if r.error is None else f"{r.status}: {r.error}"
        cells = [_short(r.params.get(n, "")) for n in sweep.space]
        t.add_row(r.id, *cells, metric, str(r.epochs), status)
    return t


def _short(text: str) -> str:
    """A float drawn from a range, shown to 4 significant figures (the summary keeps all)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return text if "." not in text and "e" not in text else f"{value:.4g}"


def reproduce(spec: str, task: str, params: dict[str, str], backend: str) -> str:
    """The `specc run` command line that trains the same model as a trial."""
    words = ["specc", "run", spec, "--task", task]
    if backend != "numpy":
        words += ["--backend", backend]
    for name, value in params.items():
        words += ["--set", f"{name}={value}"]
    return shlex.join(words)


class LiveTable(Callback):
    """A Tune callback that keeps a table of the trials while the sweep runs: redrawn in
    place on a terminal, one line per finished trial otherwise (logs, pipes)."""

    def __init__(self, sweep: Sweep, console: Console, expected: int) -> None:
        self.sweep, self.console, self.expected = sweep, console, expected
        self.rows: dict[str, TrialRow] = {}
        self.concluded = 0
        self.live: Live | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks with the sweep (to resume it): keep the plain data."""
        return {"sweep": self.sweep, "expected": self.expected}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled by `Tuner.restore` in a new `specc sweep --resume`: draw on its stdout."""
        self.__init__(state["sweep"], Console(), state["expected"])  # type: ignore[misc]
        global _RESTORED
        _RESTORED = self

    def __enter__(self) -> LiveTable:
        if self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def _table(self) -> Table:
        rows = sorted(self.rows.values(), key=lambda r: r.id)
        return table(rows, self.sweep, f"{self.concluded}/{self.expected} trials finished")

    def _update(self, trial, error: bool = False, final: bool = False) -> TrialRow:
        row = row_of(
            trial.trial_id,
            trial.config,
            trial.last_result or {},
            trial.local_path,
            error,
            self.sweep,
        )
        if not final and not error:
            row.status = "running"
        self.rows[trial.trial_id] = row
        if self.live is not None:
            self.live.update(self._table())
        return row

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._update(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._update(trial)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.concluded += 1
        self._say(self._update(trial, final=True))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.concluded += 1
        self._say(self._update(trial, error=True, final=True))

    def _say(self, row: TrialRow) -> None:
        if self.live is not None:
            return
        params = " ".join(f"{k}={_short(v)}" for k, v in row.params.items())
        value = f"{self.sweep.metric}={row.metric:.4f}" if row.metric is not None else ""
        what = row.status if row.error is None else f"failed: {row.error}"
        self.console.print(
            f"[{self.concluded}/{self.expected}] {row.id} {params} {value} "
            f"({row.epochs} epoch{'' if row.epochs == 1 else 's'}) {what}",
            highlight=False,
            soft_wrap=True,
        )


#: The table that `Tuner.restore` unpickled last (see LiveTable.__setstate__).
_RESTORED: LiveTable | None = None


def restored_table() -> LiveTable | None:
    """The live table of a sweep just restored from its folder, to draw with."""
    return _RESTORED


def write_summary(summary: Summary, folder: Path) -> Path:
    path = folder / "summary.json"
    write_text(path, summary.to_json())
    return path
