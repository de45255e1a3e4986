"""One trial: an ordinary training run of the sweep's task, reporting every epoch to Tune."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from specc.errors import SpecError
from specc.fileio import write_text
from specc.sweep.space import as_text

#: A failed trial leaves its one-line reason here, in its folder, for the summary.
FAILURE_FILE = "failure.txt"


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a sweep shares (picklable: Ray ships it to the workers)."""

    spec_path: str
    task: str
    backend: str
    #: the sweep's folder; each trial writes straight into its `trial_<id>/` there
    #: (on a cluster, a folder every machine shares), not into Ray's staging copy
    folder: str


class TuneReporter:
    """The training loop's Reporter, reporting each epoch's held-out metrics to Tune,
    which is what ASHA judges a trial by."""

    def __init__(self) -> None:
        self.planned = 1

    def start(self, task, total: int, first: int, steps_per_epoch: int) -> None:
        self.planned = max(1, math.ceil(total / max(steps_per_epoch, 1)))

    def step(self, step: int, epoch: int, loss: float, tokens: int) -> None:
        pass

    def evaluated(self, step: int, epoch: int, metrics: dict[str, Any]) -> None:
        val = metrics.get("val") or {}
        report = {f"val.{k}": float(v) for k, v in val.items() if isinstance(v, (int, float))}
        report.update(
            epoch=epoch + 1,
            epochs_planned=self.planned,
            step=step,
            train_loss=float(metrics.get("train", {}).get("loss", math.nan)),
        )
        tune.report(report)

    def finish(self) -> None:
        pass

    def note(self, text: str) -> None:
        pass


def make_trainable(setup: TrialSetup) -> Callable[[dict[str, Any]], None]:
    """The function Tune runs per trial: compile the spec with the trial's params,
    train into the trial's own folder (checkpoint and metrics as `specc run` writes)."""

    def trial(config: dict[str, Any]) -> None:
        from specc.api import load
        from specc.train.loop import run_task

        folder = Path(setup.folder) / f"trial_{tune.get_context().get_trial_id()}"
        folder.mkdir(parents=True, exist_ok=True)
        params = {name: as_text(value) for name, value in config.items()}
        try:
            program = load(setup.spec_path, params)
            run_task(
                program,
                setup.task,
                out_dir=folder,
                reporter=TuneReporter(),
                backend=setup.backend,
            )
        except SpecError as err:  # a diverging run, a data file gone: this trial fails
            write_text(folder / FAILURE_FILE, err.diagnostics[0].message + "\n")
            raise

    return trial
