"""`specc run`: train a task, evaluate it, save a checkpoint and show the results."""

from __future__ import annotations

import argparse
import sys

from specc.cli.common import add_backend_options, check_device
from specc.cli.params import add_set_option, overrides, say_warnings
from specc.errors import OptionError, SpecError

NAME = "run"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc run` and its options."""
    p = sub.add_parser(
        NAME,
        help="train a task, evaluate it and show what the model does",
        description="Train a task of a spec file, evaluate it on held-out data after every "
        "epoch, and show inference (sampled text for next_char, tagged sentences for tag). "
        "Writes DIR/<task>.npz (the last checkpoint), DIR/<task>.best.npz (the one with the "
        "best held-out metric) and DIR/<task>.json (metrics with the history of every "
        "evaluation, for `specc plot`).",
    )
    p.add_argument("file", metavar="FILE", help="the spec file")
    p.add_argument("--task", metavar="T", help="which task to run (default: the first)")
    p.add_argument("--epochs", type=int, metavar="N", help="train for N epochs instead")
    p.add_argument("--steps", type=int, metavar="N", help="train for N steps instead")
    p.add_argument("--seed", type=int, metavar="S", help="override the task's seed")
    p.add_argument(
        "--time-limit",
        type=float,
        metavar="MINUTES",
        help="stop at the first step boundary after MINUTES of training (evaluations "
        "included), then evaluate and save as at the end; --resume continues it",
    )
    p.add_argument("--out", metavar="DIR", help="where to write (default: runs/ beside the spec)")
    add_backend_options(p)
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="the floats the model computes in (float64: to compare backends number for number)",
    )
    p.add_argument(
        "--procs",
        type=int,
        metavar="N",
        help="train as N processes on this machine (torch backend; what torchrun "
        "--standalone --nproc-per-node=N -m specc run ... does)",
    )
    p.add_argument(
        "--resume",
        metavar="CKPT",
        help="continue a checkpoint of this task up to the task's total length",
    )
    add_set_option(p)


def _positive(name: str, value: int | None) -> None:
    """Reject 0 and negatives before any data is read, naming the option."""
    if value is not None and value <= 0:
        raise OptionError(f"--{name} must be a positive whole number, got {value}")


def run(args: argparse.Namespace) -> int:
    """Train the task, then show its metrics and what the model does."""
    from specc.api import load
    from specc.cli.show import out, show_demo, show_metrics
    from specc.train.distributed import PeerFailed
    from specc.train.loop import Diverged, Interrupted, run_task
    from specc.train.progress import reporter_for

    _positive("epochs", args.epochs)
    _positive("steps", args.steps)
    if args.epochs is not None and args.steps is not None:
        raise OptionError("give --epochs or --steps, not both")
    if args.seed is not None and args.seed < 0:
        raise OptionError(f"--seed must be 0 or more, got {args.seed}")
    _positive("procs", args.procs)
    if args.time_limit is not None:
        from specc.train.distributed import world_size

        if not args.time_limit > 0:  # also refuses nan
            raise OptionError(
                f"--time-limit must be a positive number of minutes, got {args.time_limit:g}"
            )
        if (args.procs or 1) > 1 or world_size() > 1:
            raise OptionError(
                "--time-limit works with one process only, not with --procs or torchrun"
            )
    check_device(args)
    if args.procs is not None and args.procs > 1:
        return _launch(args)
    program = load(args.file, overrides(args))
    say_warnings(program)
    dist = _join(args)
    try:
        result = run_task(
            program,
            args.task,
            epochs=args.epochs,
            steps=args.steps,
            seed=args.seed,
            out_dir=args.out,
            resume=args.resume,
            reporter=reporter_for(out),
            backend=args.backend,
            dtype=args.dtype,
            device=args.device,
            dist=dist,
            time_limit=None if args.time_limit is None else args.time_limit * 60,
        )
    except SpecError as err:
        if dist is not None and not isinstance(err, PeerFailed):
            dist.mark_failed(err.render().removeprefix("error: "))
            if not dist.is_main:
                return 1  # every process meets the same error; process 0 says it
        if err.path is None and type(err) in (SpecError, Diverged):
            err.path = args.file  # found after reading the data: say which spec
        raise
    except Interrupted as stop:
        if dist is not None and not dist.is_main:
            return stop.exit_status
        where = f"; checkpoint saved to {stop.checkpoint}" if stop.checkpoint else ""
        sys.stderr.write(f"interrupted at a step boundary{where}\n")
        return stop.exit_status
    except Exception as exc:
        if dist is None:
            raise
        raise _failed(dist, exc) from None
    finally:
        if dist is not None:
            dist.close()
    if dist is not None and not dist.is_main:
        return 0
    show_metrics(result)
    curve = curve_line(result.metrics)
    if curve:
        out.print(curve)
    show_demo(result)
    out.print(f"checkpoint: {result.checkpoint}\nmetrics:    {result.metrics_path}")
    best = result.metrics.get("best")
    if result.best_checkpoint and best:
        out.print(
            f"best:       {result.best_checkpoint} (epoch {best['epoch']}, step "
            f"{best['step']}: held-out {best['metric']} {best['value']:.4f})"
        )
    return 0


#: Eight heights of a sparkline, lowest first.
BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    """`values` as bars, at most `width` of them (evenly spaced, the last kept)."""
    if len(values) > width:
        picks = [round(i * (len(values) - 1) / (width - 1)) for i in range(width)]
        values = [values[i] for i in picks]
    low, high = min(values), max(values)
    span = high - low
    return "".join(BARS[int((v - low) / span * (len(BARS) - 1)) if span else 0] for v in values)


def curve_line(metrics: dict) -> str | None:
    """The monitored held-out metric over the run's evaluations, with where it was best."""
    best = metrics.get("best")
    history = metrics.get("history", [])
    if not best or len(history) < 2:
        return None
    name = best["metric"]
    values = [h["val"][name] for h in history if name in h["val"]]
    return (
        f"held-out {name} {sparkline(values)} {values[0]:.4f} → {values[-1]:.4f}, best "
        f"{best['value']:.4f} at epoch {best['epoch']} (step {best['step']})"
        + (", stopped early" if metrics.get("stopped_early") else "")
    )


def _join(args: argparse.Namespace):
    """This process's place in a distributed run (None when alone); needs torch."""
    from specc.train.distributed import from_environment, world_size

    if world_size() <= 1:
        return None
    if args.backend == "torch":
        from specc.backend.torch.lib import require_torch

        require_torch()
    return from_environment(args.backend, args.device)


def _launch(args: argparse.Namespace) -> int:
    """`--procs N`: the same command as N local processes (see specc.train.launch)."""
    if args.backend != "torch":
        raise OptionError(f"--procs {args.procs} needs --backend torch")
    from specc.backend.torch.lib import require_torch

    require_torch()
    from specc.train.launch import launch

    argv = ["run", args.file, "--backend", "torch", "--dtype", args.dtype]
    for name in ("task", "epochs", "steps", "seed", "out", "resume", "device"):
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name}", str(value)]
    if args.debug:
        argv.insert(0, "--debug")
    return launch(argv, args.procs)


def _failed(dist, exc: Exception) -> Exception:
    """A one-line error for a distributed run that cannot go on: another process
    failed (a collective broke), or this one did (the others are told why)."""
    from specc.train.distributed import PeerFailed, is_collective_error

    if is_collective_error(exc):
        return PeerFailed(f"{dist.failure()}; rank {dist.rank} stops too")
    dist.mark_failed(f"{type(exc).__name__}: {exc}")
    return exc
