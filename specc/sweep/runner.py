"""Starting (or joining) Ray, running or resuming the search, and summing it up."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from specc.errors import OptionError
from specc.ir.spec import Task
from specc.ir.sweep import Sweep


@dataclass
class Outcome:
    """What a sweep ended with: its folder, its summary, and whether Ctrl-C cut it short."""

    folder: Path
    summary: object | None
    interrupted: bool


def _quiet_ray() -> None:
    """Ray's defaults that do not fit a command-line tool: no usage reports sent out,
    no banners of its own (specc draws the tables), no TensorBoard files per trial."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "0")


def _probe(address: str, seconds: float = 5.0) -> None:
    """Refuse at once an address where nothing listens: Ray itself retries for minutes."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # `auto` and the like: Ray finds the cluster itself
    try:
        with socket.create_connection((host, int(port)), timeout=seconds):
            pass
    except (OSError, ValueError) as exc:
        raise OptionError(
            f"--address {address}: nothing answers there ({exc.__class__.__name__}); "
            "is `ray start --head` running on that machine?"
        ) from None


def start_ray(address: str | None, cpus: int | None) -> int:
    """A local Ray for this sweep on the loopback interface, sized to the machine (or
    `cpus`), or the cluster at `address`; returns the CPUs the sweep may use."""
    _quiet_ray()
    import ray

    if address is None:
        ray.init(
            address="local",
            num_cpus=cpus or os.cpu_count() or 1,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    else:
        _probe(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise OptionError(f"--address {address}: cannot join the Ray cluster ({exc})") from None
    return int(ray.cluster_resources().get("CPU", 1))


def run_sweep(
    program,
    sweep: Sweep,
    task: Task,
    *,
    spec_path: str,
    out_root: Path,
    backend: str = "numpy",
    address: str | None = None,
    cpus: int | None = None,
    resume: Path | None = None,
    console: Console | None = None,
) -> Outcome:
    """Run the sweep on Ray Tune (or resume it from its folder) and write its summary."""
    import ray
    from ray import tune

    from specc.sweep import report
    from specc.sweep.space import expected_trials, param_space, tune_config
    from specc.sweep.trial import TrialSetup, make_trainable

    console = console or Console()
    if resume is not None and not tune.Tuner.can_restore(str(resume.resolve())):
        raise OptionError(f"--resume {resume}: not the folder of a sweep (no saved search in it)")
    folder = resume.resolve() if resume is not None else (out_root / sweep.name).resolve()
    setup = TrialSetup(
        spec_path=str(Path(spec_path).resolve()),
        task=task.name,
        backend=backend,
        folder=str(folder),
    )
    trainable = tune.with_resources(make_trainable(setup), {"cpu": sweep.cpus, "gpu": sweep.gpus})
    expected = expected_trials(sweep)
    available = start_ray(address, cpus)
    try:
        if resume is not None:
            tuner = tune.Tuner.restore(str(folder), trainable, resume_unfinished=True)
            before = tuner.get_results()
            already = sum(1 for r in before if r.error is not None or _finished(r.metrics))
            live = report.restored_table() or report.LiveTable(sweep, console, expected)
            live.concluded = already
        else:
            live = report.LiveTable(sweep, console, expected)
            concurrent = sweep.max_concurrent or max(1, int(available // sweep.cpus))
            tuner = tune.Tuner(
                trainable,
                param_space=param_space(sweep),
                tune_config=tune_config(sweep, task.epochs or 100, concurrent),
                run_config=tune.RunConfig(
                    name=sweep.name,
                    storage_path=str(folder.parent),
                    verbose=0,
                    callbacks=[live],
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                ),
            )
        with live:
            results = tuner.fit()
    finally:
        ray.shutdown()
    rows = [
        report.row_of(
            Path(r.path).name.removeprefix("trial_"),
            r.config or {},
            r.metrics or {},
            r.path,
            r.error is not None,
            sweep,
        )
        for r in results
    ]
    interrupted = live.concluded < expected
    summary = report.Summary(
        sweep=sweep.name,
        task=task.name,
        spec=spec_path,
        metric=sweep.metric,
        mode=sweep.mode,
        trials=report.ranked(rows, sweep.mode),
    )
    best = next((r for r in summary.trials if r.metric is not None), None)
    if best is not None:
        summary.best = best
        summary.command = report.reproduce(spec_path, task.name, best.params, backend)
    report.write_summary(summary, folder)
    return Outcome(folder, summary, interrupted)


def _finished(metrics: dict | None) -> bool:
    """Whether a restored trial ran to its end (or was stopped early by ASHA)."""
    return bool(metrics) and bool(metrics.get("done"))
