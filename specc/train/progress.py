"""What a person watching training sees: a live bar on a terminal, plain lines in logs."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

#: How a held-out figure is named in the progress lines (others by their key).
METRIC_WORDS = {"bits_per_char": "bits/char", "unseen_accuracy": "accuracy on unseen words"}


def _fmt_metrics(metrics: dict[str, Any]) -> str:
    val = metrics.get("val", {})
    parts = [f"{METRIC_WORDS.get(k, k)} {v:.4f}" for k, v in val.items() if isinstance(v, float)]
    return ", ".join(parts)


class RichReporter:
    """A rich progress bar: step, epoch, loss, tokens/s and ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None

    def start(self, task, total, first, steps_per_epoch):
        self.spe = steps_per_epoch
        self.epochs = -(-total // steps_per_epoch)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("epoch {task.fields[epoch]}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} tok/s"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.bar = self.progress.add_task(
            task.name,
            total=total,
            completed=first,
            epoch=f"{first // steps_per_epoch + 1}/{self.epochs}",
            loss="-",
            rate="-",
        )
        self.t0, self.tokens = time.perf_counter(), 0

    def step(self, step, epoch, loss, tokens):
        self.tokens += tokens
        rate = self.tokens / max(time.perf_counter() - self.t0, 1e-9)
        assert self.progress is not None
        self.progress.update(
            self.bar,
            completed=step,
            epoch=f"{epoch + 1}/{self.epochs}",
            loss=f"{loss:.3f}",
            rate=f"{rate:,.0f}",
        )

    def evaluated(self, step, epoch, metrics):
        assert self.progress is not None
        self.progress.console.print(f"  epoch {epoch + 1}: held-out {_fmt_metrics(metrics)}")

    def note(self, text):
        self.console.print(f"[yellow]note:[/] {text}")

    def finish(self):
        if self.progress is not None:
            self.progress.stop()


class PlainReporter:
    """Periodic lines for logs and CI: no control characters, a line every few seconds."""

    def __init__(self, out: TextIO | None = None, every: float = 5.0) -> None:
        self.out = out or sys.stdout
        self.every = every

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def start(self, task, total, first, steps_per_epoch):
        self.total, self.spe = total, steps_per_epoch
        self.t0 = self.last = time.perf_counter()
        self.tokens = 0
        start = f" from step {first}" if first else ""
        self._say(f"training {task.name}: {total} steps, {steps_per_epoch} per epoch{start}")

    def step(self, step, epoch, loss, tokens):
        self.tokens += tokens
        now = time.perf_counter()
        if now - self.last >= self.every or step == self.total:
            self.last = now
            rate = self.tokens / max(now - self.t0, 1e-9)
            self._say(
                f"step {step}/{self.total}  epoch {epoch + 1}  loss {loss:.4f}  {rate:,.0f} tok/s"
            )

    def evaluated(self, step, epoch, metrics):
        self._say(f"epoch {epoch + 1} (step {step}): held-out {_fmt_metrics(metrics)}")

    def note(self, text):
        self._say(f"note: {text}")

    def finish(self):
        pass


def reporter_for(console: Console):
    return RichReporter(console) if console.is_terminal else PlainReporter()
