"""Which character model learns more in the same time: the rnn or the lstm?

Trains `specs/char_rnn.spec` (embedding -> tanh rnn(128) -> batchnorm ->
leaky_relu -> dense) and `specs/char_lstm.spec` (embedding -> lstm(128) ->
dense) on the built-in corpus (Python's own documentation, no download), each
for the same wall-clock budget with its task's settings (batch 32, 64
characters, clip 5; Adam 3e-3 for the rnn, 1e-2 for the lstm), and prints the
held-out bits per character of each, on the held-out text the specs' split
sets aside.

The two run in alternating slices of about a second, so a machine that gets
busier or quieter affects both alike; the budget counts only each model's own
training steps (evaluation is outside it). Not a test: a measurement.

Usage:
    python benchmarks/bench_learning.py                  # 120 s per model
    python benchmarks/bench_learning.py --seconds 30     # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODELS = {"rnn": REPO / "specs" / "char_rnn.spec", "lstm": REPO / "specs" / "char_lstm.spec"}
SLICE_SECONDS = 1.0


class Trainer:
    """One model's training, a slice at a time, with its own clock."""

    def __init__(self, path: Path, state: str | None = None) -> None:
        """``state`` overrides the task's (`window` or `carry`, see bench_carry.py)."""
        import specc
        from specc.train.optim import make_optimizer
        from specc.train.prepare import prepare

        self.program = specc.load(path)
        self.task = self.program.task(None)
        if state is not None:
            self.task = self.task.model_copy(update={"state": state})
        self.prepared = prepare(self.task, self.program.base_dir)
        self.net = self.program.build(
            self.task.model, self.prepared.sizes, seed=self.task.seed, dtype="float32"
        )
        self.opt = make_optimizer(self.task.optimizer, self.net.flat_params.size, self.net.dtype)
        self.steps = 0
        self.seconds = 0.0
        #: state = carry: where each row of the next batch starts (as specc.train.loop)
        self.carried = self.net.zero_state(self.task.batch) if self.prepared.carried else None

    def train_for(self, seconds: float) -> None:
        from specc.train.optim import clip_global_norm

        spe = self.prepared.steps_per_epoch
        end = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < end:
            b = self.prepared.batch(self.steps // spe, self.steps % spe)
            if self.carried is None:
                self.net.backward_flat({"chars": b.inputs}, b.targets, b.mask)
            else:
                if self.steps % spe == 0:  # each epoch's streams start again from zero
                    self.carried = self.net.zero_state(self.task.batch)
                with self.net.carrying(self.carried) as c:
                    self.net.backward_flat({"chars": b.inputs}, b.targets, b.mask)
                self.carried = c.state
            if self.task.clip:
                clip_global_norm(self.net.flat_grads, self.task.clip)
            self.opt.step(self.net.flat_params, self.net.flat_grads)
            self.steps += 1
        self.seconds += time.perf_counter() - start

    def held_out(self) -> dict[str, Any]:
        from specc.train.metrics import evaluate

        return evaluate(self.net, self.prepared, self.prepared.val)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="training time per model")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from specc.study.machine import describe

    trainers = {name: Trainer(path) for name, path in MODELS.items()}
    done = 0.0
    while done < args.seconds:
        piece = min(SLICE_SECONDS, args.seconds - done)
        for t in trainers.values():
            t.train_for(piece)
        done += piece
    print(f"machine: {describe()}")
    print(f"budget: {args.seconds:g} s of training per model, in {SLICE_SECONDS:g} s turns")
    print(f"{'model':<6} {'spec':<22} {'steps':>6} {'held-out bits/char':>19} {'accuracy':>9}")
    for name, t in trainers.items():
        m = t.held_out()
        print(
            f"{name:<6} {MODELS[name].name:<22} {t.steps:>6} {m['bits_per_char']:>19.4f}"
            f" {m['accuracy']:>9.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
