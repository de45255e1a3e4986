"""What reading the letters of words costs a tagger, and what grouping words by length saves.

Times training steps (forward, backward, clip and Adam, float32, the NumPy
backend) of three taggers on one CoNLL-U file, each on the same batches in
alternating turns so a busier or quieter machine affects all alike:

* ``words``: `specs/char_tagger.spec` without its letters (word embedding 100,
  dropout, bidirectional lstm 128, dense): the baseline;
* ``letters``: `specs/char_tagger.spec` as shipped (plus a character lstm of
  64 each way over the letters of every word, last states);
* ``letters, one group``: the same with every word of a batch run as one
  group as long as the batch's longest word (what the letters layer would do
  without its grouping by length).

Prints milliseconds a step and seconds an epoch for each. Not a test: a
measurement. The data is an argument (nothing is downloaded):

    python benchmarks/bench_spell.py                                  # specs/data/sample.conllu
    python benchmarks/bench_spell.py PATH/en_gum-ud-train.conllu --steps 20
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "specs" / "char_tagger.spec"
WORDS_ONLY = (
    "    c = words -> spell -> embedding(dim=32)\n"
    "    cf = c -> lstm(hidden=64, return=last)\n"
    "    cb = c -> lstm(hidden=64, reverse=true, return=last)\n"
    "    x = (w, cf, cb) -> concat -> dropout(p=0.25)\n"
)


class Run:
    """One tagger's training steps on the task's batches, timed on its own clock."""

    def __init__(self, text: str, data: Path, one_group: bool = False) -> None:
        import specc
        from specc.backend import build_network
        from specc.train.optim import make_optimizer
        from specc.train.prepare import prepare

        text = text.replace('conllu("data/sample.conllu"', f'conllu("{data}"')
        self.program = specc.loads(text, base_dir=data.parent)
        self.task = self.program.task()
        self.prepared = prepare(self.task, data.parent, self.program.model(self.task.model))
        model = self.program.bound_model(self.task.model, self.prepared.sizes)
        self.net = build_network(model, "numpy", seed=0)
        self.opt = make_optimizer(self.task.optimizer, self.net.flat_params.size, self.net.dtype)
        self.one_group = one_group
        self.seconds = 0.0
        self.steps = 0

    def step(self, index: int) -> None:
        from specc.backend import letters
        from specc.train.step import train_step

        batch = self.prepared.batch(0, index % self.prepared.steps_per_epoch)
        grouped = letters.length_groups
        if self.one_group:
            letters.length_groups = _one_group
        try:
            start = time.perf_counter()
            train_step(self.net, self.opt, batch, self.task, self.steps)
            self.seconds += time.perf_counter() - start
        finally:
            letters.length_groups = grouped
        self.steps += 1


def _one_group(lengths: np.ndarray) -> list[tuple[np.ndarray, int]]:
    real = np.flatnonzero(lengths)
    return [(real, int(lengths.max()))] if len(real) else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=REPO / "specs/data/sample.conllu")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per tagger")
    args = parser.parse_args()
    text = SPEC.read_text(encoding="utf-8")
    words = text.replace(WORDS_ONLY, "    x = w -> dropout(p=0.25)\n")
    assert words != text, "char_tagger.spec changed: update WORDS_ONLY"
    data = args.data.resolve()
    runs = {
        "words": Run(words, data),
        "letters": Run(text, data),
        "letters, one group": Run(text, data, one_group=True),
    }
    for run in runs.values():  # warm up: buffers, BLAS threads
        run.step(0)
        run.seconds, run.steps = 0.0, 0
    for i in range(args.steps):
        for run in runs.values():
            run.step(i + 1)
    spe = runs["words"].prepared.steps_per_epoch
    print(f"{data.name}: {spe} steps an epoch (batch {runs['words'].task.batch})")
    for name, run in runs.items():
        ms = 1000 * run.seconds / run.steps
        print(f"  {name:<20} {ms:8.1f} ms a step   {ms * spe / 1000:7.1f} s an epoch")


if __name__ == "__main__":
    main()
