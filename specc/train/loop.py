"""The training loop: batches, steps, clipping, evaluation, checkpoints, signals.

A run is a pure function of the spec and the seed: batches depend only on
(seed, epoch, index), initial weights only on (seed, node name), and dropout
on a generator whose state is checkpointed. So a run resumed from a
checkpoint at step k ends with exactly the parameters of an uninterrupted run.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from specc.backend import build_network
from specc.backend.graph import Network
from specc.errors import CheckpointError, SpecError
from specc.fileio import atomic_write_text
from specc.ir.spec import Task
from specc.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from specc.train.memory import check_training_fits
from specc.train.metrics import evaluate
from specc.train.optim import clip_global_norm, make_optimizer
from specc.train.prepare import Batch, Prepared, check_output_fits, prepare
from specc.train.records import EvalMetrics, RunMetrics, TrainMetrics


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


@dataclass
class RunResult:
    task: Task
    net: Network
    prepared: Prepared
    metrics: dict[str, Any]
    checkpoint: Path | None
    metrics_path: Path | None
    steps: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def configure(task: Task, epochs: int | None, steps: int | None, seed: int | None) -> Task:
    """The task with command-line overrides applied (epochs and steps exclude each other)."""
    update: dict[str, Any] = {}
    if epochs is not None:
        update.update(epochs=epochs, steps=None)
    if steps is not None:
        update.update(steps=steps, epochs=None)
    if seed is not None:
        update["seed"] = seed
    if not update.get("steps") and not update.get("epochs") and not task.steps and not task.epochs:
        update["epochs"] = 1
    return task.model_copy(update=update) if update else task


def total_steps(task: Task, prepared: Prepared) -> int:
    if task.steps:
        return task.steps
    return (task.epochs or 1) * prepared.steps_per_epoch


class _SignalGuard:
    """Turns SIGINT/SIGTERM into a request to stop at the next step boundary.

    A second SIGINT stops at once (KeyboardInterrupt): checkpoints are written
    atomically, so even that never tears a file.
    """

    def __init__(self) -> None:
        self.requested: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.requested is not None and signum == signal.SIGINT:
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
    values = net.trace({net.model.inputs[0].name: batch.inputs}, True, batch.mask).values
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
    net: Network, opt, batch: Batch, task: Task, step: int, last_good: Path | None = None
) -> float:
    """One step: loss and gradients, global-norm clip, divergence check, update."""
    input_name = net.model.inputs[0].name
    loss = net.backward_flat({input_name: batch.inputs}, batch.targets, batch.mask, loss=task.loss)
    norm = clip_global_norm(net.flat_grads, task.clip)
    if not (math.isfinite(loss) and math.isfinite(norm)):
        where = _find_nonfinite(net, batch)
        kept = f"; the last good checkpoint ({last_good}) is untouched" if last_good else ""
        raise Diverged(
            f"training diverged at step {step + 1}: NaN or infinity first appeared in "
            f"{where}; lower the learning rate (now {task.optimizer.lr:g})"
            + (f" or lower clip (now {task.clip:g})" if task.clip else " or set clip = 1.0")
            + kept
        )
    opt.step(net.flat_params, net.flat_grads)
    return loss


def run_task(
    program,
    task_name: str | Task | None = None,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    seed: int | None = None,
    out_dir: str | Path | None = None,
    resume: str | Path | None = None,
    reporter: Reporter | None = None,
    save: bool = True,
    backend: str = "numpy",
) -> RunResult:
    """Train a task of `program` and evaluate it; writes the checkpoint and metrics."""
    reporter = reporter or SilentReporter()
    chosen = task_name if isinstance(task_name, Task) else program.task(task_name)
    task = configure(chosen, epochs, steps, seed)
    resumed: Checkpoint | None = load_checkpoint(resume) if resume else None
    if resumed is not None:
        _check_resumable(resumed, task, resume)
    prepared = prepare(task, program.base_dir)
    for text in prepared.notes:
        reporter.note(text)
    model = program.bound_model(task.model, prepared.sizes)
    check_output_fits(model, prepared)
    check_training_fits(model, task)
    if task.kind == "next_char" and task.prime and prepared.vocab is not None:
        from specc.train.infer import encode_prime

        try:
            encode_prime(prepared.vocab, task.prime)  # fail now, not after training
        except SpecError as err:
            raise SpecError(f"prime: {err.args[0]}") from None
    net = build_network(model, backend, seed=task.seed, dtype="float32")
    opt = make_optimizer(task.optimizer, net.flat_params.size, net.dtype)
    total = total_steps(task, prepared)
    spe = prepared.steps_per_epoch
    first = 0
    history: list[dict[str, Any]] = []
    if resumed is not None:
        _restore(net, opt, resumed)
        first = resumed.step
        history = list(resumed.metrics.get("history", []))
    out = Path(out_dir) if out_dir is not None else program.base_dir / "runs"
    ckpt_path = out / f"{task.name}.npz"
    metrics_path = out / f"{task.name}.json"
    reporter.start(task, total, first, spe)
    started = time.perf_counter()
    prior_seconds = float(resumed.metrics.get("seconds", 0.0)) if resumed else 0.0
    train_losses: list[float] = []
    metrics: dict[str, Any] = dict(resumed.metrics) if resumed else {}
    step = first

    def snapshot(at_step: int) -> RunMetrics:
        seconds = prior_seconds + time.perf_counter() - started
        recent = train_losses[-spe:] if train_losses else []
        if recent:
            train = TrainMetrics(loss=float(np.mean(recent)))
        else:  # no step since the start or the resume: keep what the checkpoint had
            train = TrainMetrics.model_validate(metrics.get("train", {}))
        return RunMetrics(
            task=task.name,
            kind=task.kind,
            steps=at_step,
            seconds=round(seconds, 3),
            train=train,
            val=EvalMetrics.model_validate(metrics.get("val", {})),
            test=EvalMetrics.model_validate(metrics["test"]) if "test" in metrics else None,
            params=task.params or None,
        )

    def checkpoint(at_step: int) -> None:
        if not save:
            return
        record = snapshot(at_step)
        save_checkpoint(
            ckpt_path,
            Checkpoint(
                model=model,
                task=task,
                params={k: v.copy() for k, v in net.params.items()},
                state={k: v.copy() for k, v in net.state.items()},
                step=at_step,
                total_steps=total,
                vocab=prepared.vocab,
                labels=prepared.labels,
                optimizer={"t": opt.t, "arrays": {k: v.copy() for k, v in opt.state.items()}},
                rng_state=net.rng.bit_generator.state,
                metrics=record.with_history(history).document(),
                spec_path=str(program.path) if program.path else None,
            ),
        )
        atomic_write_text(metrics_path, record.to_json())

    with _SignalGuard() as guard:
        try:
            while step < total:
                epoch, index = divmod(step, spe)
                batch = prepared.batch(epoch, index)
                loss = train_step(net, opt, batch, task, step, ckpt_path if save else None)
                step += 1
                train_losses.append(loss)
                reporter.step(step, epoch, loss, batch.tokens)
                end_of_epoch = index == spe - 1
                if end_of_epoch or step == total:
                    metrics["val"] = evaluate(net, prepared, prepared.val) if prepared.val else {}
                    metrics["train"] = {"loss": float(np.mean(train_losses[-spe:]))}
                    history.append(
                        {
                            "step": step,
                            "epoch": epoch + 1,
                            "train_loss": metrics["train"]["loss"],
                            "val": _scalars(metrics["val"]),
                        }
                    )
                    if step == total and prepared.test:
                        metrics["test"] = evaluate(net, prepared, prepared.test)
                    reporter.evaluated(step, epoch, metrics)
                    checkpoint(step)
                if guard.requested is not None:
                    checkpoint(step)
                    raise Interrupted(guard.requested, ckpt_path if save else None)
        finally:
            reporter.finish()
    return RunResult(
        task,
        net,
        prepared,
        snapshot(step).document(),
        ckpt_path if save else None,
        metrics_path if save else None,
        step,
        prior_seconds + time.perf_counter() - started,
        history,
    )


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def _check_resumable(ckpt: Checkpoint, task: Task, path) -> None:
    if ckpt.task.name != task.name:
        raise CheckpointError(path, f"belongs to task '{ckpt.task.name}', not '{task.name}'")
    a = ckpt.task.model_dump(exclude={"span", "epochs", "steps"})
    b = task.model_dump(exclude={"span", "epochs", "steps"})
    if a != b:
        changed = sorted(k for k in a if a[k] != b.get(k))
        raise CheckpointError(
            path,
            f"task settings changed since it was saved ({', '.join(changed)}); "
            "resume needs the same settings",
        )


def _restore(net: Network, opt, ckpt: Checkpoint) -> None:
    if [k for k in net.params] != [k for k in ckpt.params]:
        raise CheckpointError(ckpt.path, "its parameters do not match the spec's model")
    for k, v in ckpt.params.items():
        if net.params[k].shape != v.shape:
            raise CheckpointError(
                ckpt.path,
                f"'{k}' has shape {v.shape}; the spec's model needs {net.params[k].shape}",
            )
    net.load(ckpt.params, ckpt.state)
    if ckpt.rng_state is not None:
        net.rng.bit_generator.state = ckpt.rng_state
    opt.t = ckpt.optimizer.get("t", 0)
    for k, v in ckpt.optimizer.get("arrays", {}).items():
        if k in opt.state:
            opt.state[k][...] = v
