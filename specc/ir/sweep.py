"""The checked form of a `sweep NAME : TASK { ... }` block: what `specc sweep` searches.

A sweep names a task of its file, a search space over the file's params and
how to search it. It is plain data: the runner in `specc.sweep` turns it into
a Ray Tune search, and `specc check` validates it without Ray installed.
Each value of a `choice` or `grid` is kept as spec text, exactly what a trial
passes to the compiler as `--set NAME=VALUE`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from specc.errors import Span

#: The held-out metrics each task kind reports after every epoch (`specc.train.metrics`).
HELD_OUT_METRICS: dict[str, tuple[str, ...]] = {
    "next_char": ("loss", "bits_per_char", "accuracy"),
    "tag": ("loss", "accuracy"),
    "classify": ("loss", "accuracy"),
    "regress": ("loss", "mse"),
}

#: The metric a sweep optimises when it names none: the one each kind is judged by.
DEFAULT_METRIC: dict[str, str] = {
    "next_char": "val.bits_per_char",
    "tag": "val.accuracy",
    "classify": "val.accuracy",
    "regress": "val.mse",
}

#: Metrics where higher is better; every other metric is minimised unless `mode` says.
MAXIMISED = ("accuracy",)

DISTRIBUTIONS = ("choice", "grid", "uniform", "loguniform", "randint")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Distribution(_Frozen):
    """Where one param's values are drawn from.

    choice and grid list their values (as spec text); uniform and loguniform
    draw a number in [low, high); randint a whole number in [low, high)."""

    kind: Literal["choice", "grid", "uniform", "loguniform", "randint"]
    values: list[str] = []
    low: int | float | None = None
    high: int | float | None = None


class Asha(_Frozen):
    """Asynchronous successive halving: stops trials whose held-out metric trails,
    judged after `grace` epochs and then at every `reduction`-fold more."""

    name: Literal["asha"] = "asha"
    grace: int = Field(1, ge=1)
    reduction: float = Field(2.0, gt=1)


class Sweep(_Frozen):
    """A search over params for one task."""

    name: str
    task: str
    space: dict[str, Distribution]
    metric: str = Field(description="A held-out metric of the task, as `val.NAME`.")
    mode: Literal["min", "max"]
    trials: int = Field(ge=1, description="Samples drawn; a grid is run whole once per sample.")
    max_concurrent: int | None = Field(None, ge=1)
    scheduler: Asha | None = None
    search: Literal["random", "optuna"] = "random"
    cpus: float = Field(1.0, gt=0, description="CPUs each trial holds.")
    gpus: float = Field(0.0, ge=0, description="GPUs each trial holds.")
    seed: int = Field(0, ge=0, description="Seeds the search, so it draws the same trials.")
    span: Span
