"""One training step, what stops a run between steps (signals, divergence), and
what the loop tells whoever watches it.

Apart from the loop so that the loop reads as the order of a run (evaluate,
keep the best, save, stop early) while the step's own checks live here.
"""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from specc.backend.graph import Network
from specc.errors import SpecError
from specc.ir.spec import Task
from specc.train.optim import FlatOptimizer, clip_global_norm
from specc.train.prepare import Batch


class Reporter(Protocol):
    """What the loop tells whoever is watching (a progress bar, a log, nothing)."""

    def start(self, task: Task, total: int, first: int, steps_per_epoch: int) -> None: ...
    def step(self, step: int, epoch: int, loss: float, tokens: int) -> None: ...
    def evaluated(self, step: int, epoch: int, metrics: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...
    def note(self, text: str) -> None: ...


class SilentReporter:
    def start(self, task, total, first, steps_per_epoch):
        pass

    def step(self, step, epoch, loss, tokens):
        pass

    def evaluated(self, step, epoch, metrics):
        pass

    def finish(self):
        pass

    def note(self, text):
        pass


class Interrupted(Exception):
    """Training stopped by a signal after saving; carries the exit status."""

    def __init__(self, signum: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
        self.checkpoint = checkpoint
        self.exit_status = 128 + signum


class Diverged(SpecError):
    """The loss or a gradient became NaN or infinite."""


class SignalGuard:
    """Turns SIGINT/SIGTERM into a request to stop at the next step boundary.

    A second SIGINT stops at once (KeyboardInterrupt): checkpoints are written
    atomically, so even that never tears a file. In a distributed run a repeat
    does not (a launcher forwards the terminal's Ctrl-C, which each process
    also gets): the processes stop together at the step boundary.
    """

    def __init__(self, repeat_stops: bool = True) -> None:
        self.requested: int | None = None
        self._old: dict[int, Any] = {}
        self._repeat_stops = repeat_stops

    def _handle(self, signum, frame):
        if self.requested is not None and signum == signal.SIGINT and self._repeat_stops:
            raise KeyboardInterrupt
        self.requested = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def _find_nonfinite(net: Network, batch: Batch) -> str:
    """Name where NaN/inf first appears: a node's output, else a gradient."""
    values = net.trace(batch.feeds(net.model.inputs[0].name), True, batch.mask).values
    for node in net.model.nodes:
        v = values.get(node.name)
        if v is not None and not np.all(np.isfinite(v)):
            return f"the output of node '{node.name}' ({node.op})"
    for key, sl in net.param_slices.items():
        if not np.all(np.isfinite(net.flat_grads[sl])):
            return f"the gradient of '{key}'"
    for key, sl in net.param_slices.items():
        if not np.all(np.isfinite(net.flat_params[sl])):
            return f"parameter '{key}'"
    return "the loss"


def train_step(
    net: Network,
    opt: FlatOptimizer,
    batch: Batch,
    task: Task,
    step: int,
    last_good: Path | None = None,
) -> float:
    """One step: loss and gradients, global-norm clip, divergence check, update."""
    inputs = batch.feeds(net.model.inputs[0].name)
    loss = net.backward_flat(inputs, batch.targets, batch.mask, loss=task.loss)
    norm = clip_global_norm(net.flat_grads, task.clip)
    if not (math.isfinite(loss) and math.isfinite(norm)):
        where = _find_nonfinite(net, batch)
        kept = f"; the last good checkpoint ({last_good}) is untouched" if last_good else ""
        raise Diverged(
            f"training diverged at step {step + 1}: NaN or infinity first appeared in "
            f"{where}; lower the learning rate (now {opt.lr:g})"
            + (f" or lower clip (now {task.clip:g})" if task.clip else " or set clip = 1.0")
            + kept
        )
    opt.step(net.flat_params, net.flat_grads)
    return loss
