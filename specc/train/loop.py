"""The training loop: steps, evaluation, the best checkpoint, early stopping, saving.

A run is a pure function of the spec and the seed: batches depend only on
(seed, epoch, index), initial weights only on (seed, node name), the learning
rate on the step (and, for plateau, on evaluations whose state is saved),
and dropout on a generator whose state is checkpointed. So a run resumed from
a checkpoint at step k ends with exactly the parameters, the best checkpoint
and the early stop of an uninterrupted run.

The order at each evaluation (end of an epoch, or every `eval_every` steps,
and after the last step): evaluate the held-out split, append to the history,
let the monitored metric pick the best (saved first as `DIR/<task>.best.npz`)
and the plateau schedule react, then save the last checkpoint and the metrics
file, then stop early if the metric has not improved for `patience`
evaluations. Saving the best before the last means a crash between the two
leaves a last checkpoint from which a resume redoes the same evaluation. A
run given a time limit stops at the first step boundary past it, evaluated
(test split included) and saved as a run that ended there would be.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from specc.backend import build_network
from specc.backend.graph import Network
from specc.errors import CheckpointError, SpecError
from specc.fileio import OutputError, check_writable, write_text
from specc.ir.spec import Cosine, Plateau, Task
from specc.train.checkpoint import (
    Checkpoint,
    checkpoint_nbytes,
    load_checkpoint,
    save_checkpoint,
)
from specc.train.memory import check_training_fits
from specc.train.metrics import baseline, evaluate
from specc.train.optim import FlatOptimizer, decay_slices, make_optimizer
from specc.train.prepare import Prepared, check_output_fits, prepare
from specc.train.records import RunMetrics
from specc.train.schedule import LearningRate, Watch
from specc.train.step import (
    Diverged,
    Interrupted,
    Reporter,
    SignalGuard,
    SilentReporter,
    train_step,
)

__all__ = [
    "Diverged",
    "Interrupted",
    "Reporter",
    "RunResult",
    "SilentReporter",
    "configure",
    "run_task",
    "train_step",
]

#: Bytes allowed for the metrics JSON beside the checkpoints in the free-space check,
#: and for each evaluation's history entry (kept in the JSON and in each checkpoint).
METRICS_ALLOWANCE = 64 << 10
HISTORY_ENTRY_BYTES = 512


@dataclass
class RunResult:
    task: Task
    net: Network
    prepared: Prepared
    metrics: dict[str, Any]  # the RunMetrics document (history, best, stopped_early)
    checkpoint: Path | None
    metrics_path: Path | None
    steps: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    best_checkpoint: Path | None = None  # DIR/<task>.best.npz, when there is held-out data


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


@dataclass
class _Progress:
    """What the loop accumulates besides the network and optimizer; all of it is
    saved in the checkpoint (the metrics document and `__train__`)."""

    metrics: dict[str, Any]  # the latest val/train/test figures
    history: list[dict[str, Any]]
    pending: list[float]  # [sum, count] of training losses since the last evaluation
    stopped_early: bool = False
    time_limited: bool = False


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
    dtype: str = "float32",
    device: str | None = None,
    dist: Any = None,
    time_limit: float | None = None,
    until: Callable[[dict[str, float]], bool] | None = None,
) -> RunResult:
    """Train a task of `program` and evaluate it; writes the checkpoints and metrics.

    ``until`` (given the held-out figures of an evaluation, e.g. ``{"loss": ...}``)
    ends training at the first evaluation where it holds: a caller that only asks
    whether a goal is reached (the study) need not train past it.

    ``dist`` (a `specc.train.distributed.Dist`) makes this one process of a
    distributed run: it trains on its shard of each batch, and only process 0
    reports and writes. ``time_limit`` (seconds of this run, evaluations included)
    ends training at the first step boundary past it, evaluated and saved."""
    reporter = reporter or SilentReporter()
    if time_limit is not None and (time_limit <= 0 or dist is not None):
        raise SpecError("a time limit must be positive, and a distributed run cannot have one")
    if dist is not None and not dist.is_main:  # distributed: process 0 alone speaks
        reporter, save = SilentReporter(), False
    chosen = task_name if isinstance(task_name, Task) else program.task(task_name)
    task = configure(chosen, epochs, steps, seed)
    resumed: Checkpoint | None = load_checkpoint(resume) if resume else None
    if resumed is not None:
        _check_resumable(resumed, task, resume)
    out = Path(out_dir) if out_dir is not None else program.base_dir / "runs"
    ckpt_path, best_path = out / f"{task.name}.npz", out / f"{task.name}.best.npz"
    metrics_path = out / f"{task.name}.json"
    if save:  # where the output goes, before any data is read
        for path in (ckpt_path, best_path, metrics_path):
            check_writable(path)
    prepared = prepare(task, program.base_dir, program.model(task.model))
    baselines = baseline(prepared)
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
    total = total_steps(task, prepared)
    _check_settings_fit(task, prepared, total, reporter, shortened=(epochs, steps) != (None, None))
    net = build_network(model, backend, seed=task.seed, dtype=dtype, device=device)
    shapes = {k: v.shape for k, v in net.params.items()}
    which = getattr(task.optimizer, "decay", "weights")
    decay = decay_slices(net.param_slices, shapes, which)
    opt = make_optimizer(task.optimizer, net.flat_params.size, net.dtype, decay)
    spe = prepared.steps_per_epoch
    schedule = LearningRate(task.schedule, task.optimizer.lr, total, Watch.of(task).higher)
    watch = Watch.of(task)
    progress = _Progress(metrics={}, history=[], pending=[0.0, 0])
    first = 0
    if resumed is not None:
        _restore(net, opt, resumed)
        first = resumed.step
        _restore_progress(progress, schedule, watch, resumed)
    # state = carry: where each row of the next batch starts (see specc.backend.carry)
    carried = net.zero_state(task.batch) if prepared.carried else None
    if carried is not None and resumed is not None:
        carried = {k: v.copy() for k, v in resumed.carried.items()}
    if dist is not None:
        if carried is not None:
            raise SpecError(
                "state = carry trains in one process only; run without --procs, or use "
                "state = window"
            )
        dist.attach(net)
    saved: tuple[Path, int] | None = (Path(resume), resumed.step) if resumed else None
    started = time.perf_counter()
    prior_seconds = float(resumed.metrics.get("seconds", 0.0)) if resumed else 0.0
    train_losses: list[float] = []
    step = first

    def seconds() -> float:
        return prior_seconds + time.perf_counter() - started

    def snapshot(at_step: int) -> RunMetrics:
        m = progress.metrics
        recent = train_losses[-spe:] if train_losses else []
        # no step since the start or the resume: keep what the checkpoint had
        train = {"loss": float(np.mean(recent))} if recent else m.get("train", {})
        best = None
        if watch.value is not None:
            best = {"metric": watch.metric, "value": watch.value}
            best.update(step=watch.step, epoch=watch.epoch)
        doc = {
            "task": task.name,
            "kind": task.kind,
            "steps": at_step,
            "seconds": round(seconds(), 3),
            "train": train,
            "val": m.get("val", {}),
            **({"test": m["test"]} if "test" in m else {}),
            "history": progress.history,
            **({"best": best} if best else {}),
            **({"baseline": baselines} if baselines else {}),
            **({"stopped_early": True} if progress.stopped_early else {}),
            **({"time_limited": True} if progress.time_limited else {}),
            **({"params": task.params} if task.params else {}),
        }
        return RunMetrics.model_validate(doc)

    def make_checkpoint(at_step: int, record: RunMetrics) -> Checkpoint:
        # no copies: save_checkpoint serialises the arrays before training goes on
        state = {"watch": watch.state(), "pending": {"total": progress.pending[0]}}
        state["pending"]["count"] = progress.pending[1]
        if schedule.state() is not None:
            plateau = {k: v for k, v in schedule.state().items() if v is not None}
            state["plateau"] = plateau
        state["watch"] = {k: v for k, v in state["watch"].items() if v is not None}
        return Checkpoint(
            model=model,
            task=task,
            params=net.params,
            state=net.state,
            step=at_step,
            total_steps=total,
            vocab=prepared.vocab,
            labels=prepared.labels,
            chars=prepared.chars,
            optimizer={"t": opt.t, "arrays": opt.state},
            rng_state=net.rng.bit_generator.state,
            metrics=record.checkpoint_record().document(),
            spec_path=str(program.path) if program.path else None,
            progress=state,
            carried=carried or {},
        )

    def latest_good() -> str:
        if saved is None:
            before = f" ({ckpt_path}, from before this run, is untouched)"
            return "no checkpoint of this run was saved" + (before if ckpt_path.exists() else "")
        return f"the latest good checkpoint is {saved[0]} (step {saved[1]})"

    def checkpoint(at_step: int, best: bool = False) -> None:
        nonlocal saved
        if not save:
            return
        try:
            record = snapshot(at_step)
            ckpt = make_checkpoint(at_step, record)
            if best:
                save_checkpoint(best_path, ckpt)
                saved = (best_path, at_step)
            save_checkpoint(ckpt_path, ckpt)
            saved = (ckpt_path, at_step)
            write_text(metrics_path, record.to_json())
        except OutputError as err:
            raise err.keeping(f"stopped at step {at_step}/{total}; {latest_good()}") from None

    def evaluation(at_step: int, epoch: int, out_of_time: bool = False) -> bool:
        """Evaluate, record, keep the best, save; True when training should stop early
        (or stops because it is `out_of_time`)."""
        m = progress.metrics
        m["val"] = evaluate(net, prepared, prepared.val) if prepared.val else {}
        m["train"] = {"loss": float(np.mean(train_losses[-spe:]))}
        total_loss, count = progress.pending
        entry = {"step": at_step, "epoch": epoch + 1, "val": _scalars(m["val"])}
        entry.update(train_loss=total_loss / count if count else m["train"]["loss"])
        entry.update(lr=opt.lr, seconds=round(seconds(), 3))
        progress.history.append(entry)
        progress.pending = [0.0, 0]
        best = False
        if m["val"]:
            value = float(m["val"][watch.metric])
            best = watch.evaluated(value, at_step, epoch + 1)
            schedule.evaluated(value)
        reached = bool(m["val"]) and until is not None and until(_scalars(m["val"]))
        stop = (watch.stop or reached) and at_step < total
        progress.stopped_early = stop
        if (at_step == total or stop or out_of_time) and prepared.test:
            m["test"] = evaluate(net, prepared, prepared.test)
        progress.time_limited = out_of_time and not stop and at_step < total
        reporter.evaluated(at_step, epoch, m)
        checkpoint(at_step, best=best)
        if stop and reached:
            reporter.note(f"stopped at step {at_step}: the held-out figures reached the goal")
        elif stop:
            reporter.note(
                f"stopped early: held-out {watch.metric} has not improved"
                + (f" by more than {watch.min_delta:g}" if watch.min_delta else "")
                + f" for {watch.since} evaluations; the best, {watch.value:.4f}, was at "
                f"epoch {watch.epoch} (step {watch.step})"
            )
        elif progress.time_limited:
            reporter.note(
                f"stopped at the time limit after step {at_step} of {total} "
                f"({seconds():.0f} s); --resume continues it"
            )
        return stop or progress.time_limited

    if save:  # the free space the checkpoints and metrics need, before the first step
        evaluations = total // task.eval_every if task.eval_every else total // spe
        history = HISTORY_ENTRY_BYTES * (evaluations + 1)
        copies = 2 if prepared.val else 1
        size = checkpoint_nbytes(make_checkpoint(total, snapshot(first))) + history
        check_writable(ckpt_path, copies * size + METRICS_ALLOWANCE + history)
    reporter.start(task, total, first, spe)
    with SignalGuard(repeat_stops=dist is None) as guard:
        try:
            while step < total:
                epoch, index = divmod(step, spe)
                batch = prepared.batch(epoch, index)
                opt.lr = schedule.at(step)
                mine = batch if dist is None else dist.shard(batch)
                last_good = saved[0] if saved else None
                if carried is None:
                    loss = train_step(net, opt, mine, task, step, last_good)
                else:  # truncated BPTT: each epoch's streams start again from zero
                    with net.carrying(net.zero_state(task.batch) if index == 0 else carried) as c:
                        loss = train_step(net, opt, mine, task, step, last_good)
                    carried = c.state
                step += 1
                train_losses.append(loss)
                progress.pending = [progress.pending[0] + loss, progress.pending[1] + 1]
                reporter.step(step, epoch, loss, batch.tokens)
                due = step % task.eval_every == 0 if task.eval_every else index == spe - 1
                late = time_limit is not None and time.perf_counter() - started >= time_limit
                if (due or step == total or late) and evaluation(step, epoch, late):
                    break
                stop = guard.requested if dist is None else dist.agree_stop(guard.requested)
                if stop is not None:
                    checkpoint(step)
                    if dist is not None:
                        dist.barrier()  # no process exits while process 0 writes
                    raise Interrupted(stop, ckpt_path if save else None)
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
        seconds(),
        progress.history,
        best_path if save and watch.value is not None else None,
    )


def _check_settings_fit(
    task: Task, prepared: Prepared, total: int, reporter: Reporter, shortened: bool
) -> None:
    """Settings that depend on the data: a warmup within the run, held-out data for
    the settings that watch it. A run shortened by --steps/--epochs (a quick try of a
    spec) may end inside its warmup: that is said, not refused."""
    schedule = task.schedule
    if isinstance(schedule, Cosine) and schedule.warmup >= total:
        if shortened:
            reporter.note(
                f"schedule: this run's {total} steps end inside the warmup of "
                f"{schedule.warmup} steps; the learning rate only warms up"
            )
            return
        raise SpecError(
            f"schedule: a warmup of {schedule.warmup} steps does not end before the run's "
            f"{total} steps; shorten the warmup or train longer"
        )
    if not prepared.val:
        watching = [
            name
            for name, on in (
                ("early_stop", task.early_stop is not None),
                ("schedule = plateau", isinstance(schedule, Plateau)),
            )
            if on
        ]
        if watching:
            raise SpecError(f"{' and '.join(watching)} needs held-out data, and this task has none")


def _restore_progress(
    progress: _Progress, schedule: LearningRate, watch: Watch, ckpt: Checkpoint
) -> None:
    """The evaluations so far, the plateau's and the best's state, the pending loss."""
    progress.metrics = dict(ckpt.metrics)
    progress.history = list(ckpt.metrics.get("history", []))
    progress.stopped_early = bool(ckpt.metrics.get("stopped_early", False))
    pending = ckpt.progress.get("pending")
    if pending:
        progress.pending = [pending["total"], pending["count"]]
    plateau = ckpt.progress.get("plateau")
    if plateau:
        schedule.restore({"best": None, **plateau})
    watch.restore(ckpt.progress.get("watch"))


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


def _restore(net: Network, opt: FlatOptimizer, ckpt: Checkpoint) -> None:
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
