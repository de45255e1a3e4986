"""The sweep block as Ray Tune sees it: the search space, the searcher, the scheduler."""

from __future__ import annotations

import math
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import BasicVariantGenerator

from specc.ir.sweep import Sweep


def param_space(sweep: Sweep) -> dict[str, Any]:
    """One Tune domain per swept param. choice and grid values are spec text, which
    a trial hands to the compiler as `--set NAME=VALUE` would."""
    space: dict[str, Any] = {}
    for name, d in sweep.space.items():
        if d.kind == "choice":
            space[name] = tune.choice(list(d.values))
        elif d.kind == "grid":
            space[name] = tune.grid_search(list(d.values))
        elif d.kind == "uniform":
            space[name] = tune.uniform(float(d.low), float(d.high))
        elif d.kind == "loguniform":
            space[name] = tune.loguniform(float(d.low), float(d.high))
        else:
            space[name] = tune.randint(int(d.low), int(d.high))
    return space


def expected_trials(sweep: Sweep) -> int:
    """How many trials the sweep runs: each sample runs every point of its grids."""
    points = math.prod(len(d.values) for d in sweep.space.values() if d.kind == "grid")
    return sweep.trials * points


def as_text(value: Any) -> str:
    """A sampled value as spec text (floats exactly, so `--set` reproduces the trial)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return str(int(value))


def tune_config(sweep: Sweep, max_epochs: int, max_concurrent: int) -> tune.TuneConfig:
    """The searcher and scheduler the sweep block asks for, seeded so a sweep draws
    the same trials every time."""
    if sweep.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        searcher: Any = OptunaSearch(seed=sweep.seed)
    else:
        searcher = BasicVariantGenerator(random_state=sweep.seed)
    if sweep.scheduler is not None:
        scheduler: Any = ASHAScheduler(
            time_attr="training_iteration",  # one report per epoch
            max_t=max(max_epochs, 1),
            grace_period=sweep.scheduler.grace,
            reduction_factor=sweep.scheduler.reduction,
        )
    else:
        scheduler = FIFOScheduler()
    return tune.TuneConfig(
        metric=sweep.metric,
        mode=sweep.mode,
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=sweep.trials,
        max_concurrent_trials=max_concurrent,
        trial_name_creator=lambda t: f"trial_{t.trial_id}",
        trial_dirname_creator=lambda t: f"trial_{t.trial_id}",
    )
