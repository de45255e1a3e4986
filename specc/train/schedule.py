"""The learning rate at every step, and which evaluation was the best.

Schedules follow torch.optim.lr_scheduler, counting optimizer steps: step i
(from 0) updates with `LearningRate.at(i)`. `constant`, `cosine` and `step` are
pure functions of the step, so a resumed run needs nothing from the
checkpoint to continue them; `plateau` and :class:`Watch` (the best
checkpoint, early stopping) depend on the evaluations so far, so their state
is part of the checkpoint, which keeps resume bit-exact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from specc.ir.spec import HIGHER_IS_BETTER, Cosine, Plateau, Schedule, StepDecay, Task

#: ReduceLROnPlateau's defaults: an improvement is a relative change of 1e-4, and a
#: reduction smaller than 1e-8 is not made.
PLATEAU_THRESHOLD = 1e-4
PLATEAU_EPS = 1e-8


def _better(value: float, best: float | None, higher: bool, margin: float) -> bool:
    """Is `value` better than `best` by more than `margin` (absolute)?"""
    if best is None:
        return True
    return value > best + margin if higher else value < best - margin


class LearningRate:
    """The schedule `cfg` of a run of `total` steps from the optimizer's `base` lr."""

    def __init__(self, cfg: Schedule, base: float, total: int, higher: bool = False) -> None:
        self.cfg, self.base, self.total, self.higher = cfg, base, total, higher
        self.lr = base  # plateau's current rate
        self.best: float | None = None
        self.bad = 0

    def at(self, step: int) -> float:
        """The rate of the update made at step `step` (0 for the first)."""
        cfg = self.cfg
        if isinstance(cfg, Cosine):
            if step < cfg.warmup:
                start = 1 / cfg.warmup
                return self.base * (start + (1 - start) * step / cfg.warmup)
            span = max(1, self.total - cfg.warmup)
            cos = (1 + math.cos(math.pi * min(step - cfg.warmup, span) / span)) / 2
            return cfg.min_lr + (self.base - cfg.min_lr) * cos
        if isinstance(cfg, StepDecay):
            return self.base * cfg.factor ** (step // cfg.every)
        if isinstance(cfg, Plateau):
            return self.lr
        return self.base

    def evaluated(self, value: float) -> None:
        """Plateau: count evaluations without a relative improvement of 1e-4, and cut
        the rate once more than `patience` have passed (ReduceLROnPlateau, rel mode)."""
        cfg = self.cfg
        if not isinstance(cfg, Plateau):
            return
        if self.best is None or (
            value > self.best * (1 + PLATEAU_THRESHOLD)
            if self.higher
            else value < self.best * (1 - PLATEAU_THRESHOLD)
        ):
            self.best, self.bad = value, 0
        else:
            self.bad += 1
        if self.bad > cfg.patience:
            lower = max(self.lr * cfg.factor, cfg.min_lr)
            if self.lr - lower > PLATEAU_EPS:
                self.lr = lower
            self.bad = 0

    def state(self) -> dict[str, Any] | None:
        """What a checkpoint keeps (plateau only; the others are functions of the step)."""
        if not isinstance(self.cfg, Plateau):
            return None
        return {"lr": self.lr, "best": self.best, "bad": self.bad}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state is not None and isinstance(self.cfg, Plateau):
            self.lr, self.best, self.bad = state["lr"], state["best"], state["bad"]


@dataclass
class Watch:
    """The best evaluation by the task's monitored metric, and early stopping's count.

    The best is any improvement (it picks the checkpoint kept). Early stopping, as
    Keras's EarlyStopping, counts in `since` the evaluations that did not beat
    `reference` (the value at its last reset) by more than `min_delta`, and stops
    once that count reaches `patience`."""

    metric: str
    higher: bool
    patience: int | None = None
    min_delta: float = 0.0
    value: float | None = None
    step: int | None = None
    epoch: int | None = None
    reference: float | None = None
    since: int = 0

    @classmethod
    def of(cls, task: Task) -> Watch:
        stop = task.early_stop
        return cls(
            metric=task.monitored,
            higher=task.monitored in HIGHER_IS_BETTER,
            patience=stop.evals if stop else None,
            min_delta=stop.min_delta if stop else 0.0,
        )

    def evaluated(self, value: float, step: int, epoch: int) -> bool:
        """Record one evaluation; True when it is the best so far (keep its checkpoint)."""
        if _better(value, self.reference, self.higher, self.min_delta):
            self.reference, self.since = value, 0
        else:
            self.since += 1
        if _better(value, self.value, self.higher, 0.0):
            self.value, self.step, self.epoch = value, step, epoch
            return True
        return False

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.since >= self.patience

    def state(self) -> dict[str, Any]:
        keep = ("value", "step", "epoch", "reference", "since")
        return {k: v for k, v in asdict(self).items() if k in keep}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state:
            self.value, self.step = state.get("value"), state.get("step")
            self.epoch, self.reference = state.get("epoch"), state.get("reference")
            self.since = state.get("since", 0)
