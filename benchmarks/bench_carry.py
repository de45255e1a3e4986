"""Carried recurrent state (issue 24): how fast sampling is, and what carrying buys.

1. Sampling: characters per second of `specc.train.infer.generate` on
   bench_torch.py's character model (embedding(32) -> rnn(H) -> batchnorm ->
   leaky_relu -> dense -> softmax, 65 characters) at hidden 128 and 512, with
   ``context="window"`` (each character re-reads the last 64 from zero state:
   how every model sampled before) and ``context="step"`` (one step per
   character, every layer's state carried), the two alternating in one process
   so that a busier or quieter machine affects both alike.
2. Learning: `specs/char_lstm.spec` (or ``--spec``) trained with ``state = window`` and with
   ``state = carry`` for the same wall-clock budget, in alternating slices
   (bench_learning.py's trainer), then the held-out bits per character of each
   as it trains (windows from zero state; the held-out stream carried), and the
   window-trained model's also read as one carried stream, the context
   `generate --context step` gives it.

Not a test: a measurement. Usage:
    python benchmarks/bench_carry.py                   # 120 s of training per model
    python benchmarks/bench_carry.py --seconds 20      # a quick look
    python benchmarks/bench_carry.py --skip-learning   # sampling only
"""

from __future__ import annotations

import argparse
import dataclasses
import string
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_learning import SLICE_SECONDS, Trainer  # noqa: E402
from bench_torch import SPEC, VOCAB, layer  # noqa: E402

#: Characters each measurement samples: enough for ~1 s at the slower context.
CHARS = {("window", 128): 300, ("window", 512): 60, ("step", 128): 6000, ("step", 512): 3000}


def sampling(rounds: int) -> list[tuple[int, str, float]]:
    """(hidden, context, characters/s): the best of ``rounds`` alternating runs."""
    import specc
    from specc.data.vocab import Vocab
    from specc.train.infer import generate

    vocab = Vocab(list(string.ascii_letters + string.digits + " .\n"))
    out = []
    for hidden in (128, 512):
        net = specc.loads(SPEC % layer("rnn", hidden)).build(
            "bench", sizes={"vocab": VOCAB}, seed=0
        )
        best = {"window": 0.0, "step": 0.0}
        for _ in range(rounds):
            for context in best:
                n = CHARS[(context, hidden)]
                generate(net, vocab, "The ", 5, seed=1, context=context)  # warm
                start = time.perf_counter()
                generate(net, vocab, "The ", n, seed=1, window=64, context=context)
                best[context] = max(best[context], n / (time.perf_counter() - start))
        out += [(hidden, context, rate) for context, rate in best.items()]
    return out


def learning(spec: Path, seconds: float) -> list[tuple[str, int, dict, dict]]:
    """(state, steps, held-out metrics as trained, held-out metrics read carried)."""
    from specc.train.metrics import evaluate

    trainers = {state: Trainer(spec, state) for state in ("window", "carry")}
    done = 0.0
    while done < seconds:
        piece = min(SLICE_SECONDS, seconds - done)
        for t in trainers.values():
            t.train_for(piece)
        done += piece
    rows = []
    for state, t in trainers.items():
        carried = dataclasses.replace(t.prepared, carried=True)
        rows.append((state, t.steps, t.held_out(), evaluate(t.net, carried, carried.val)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="training time per model")
    ap.add_argument("--rounds", type=int, default=3, help="sampling runs per context")
    ap.add_argument("--skip-learning", action="store_true")
    ap.add_argument("--skip-sampling", action="store_true")
    ap.add_argument(
        "--spec", type=Path, default=REPO / "specs" / "char_lstm.spec", help="what learns"
    )
    args = ap.parse_args(argv)
    from specc.study.machine import describe

    print(f"machine: {describe()}")
    if not args.skip_sampling:
        print("sampling (generate, rnn model of bench_torch.py, 65 characters, batch 1):")
        rates = {(h, c): r for h, c, r in sampling(args.rounds)}
        for hidden in (128, 512):
            window, step = rates[(hidden, "window")], rates[(hidden, "step")]
            print(
                f"  hidden {hidden:>3}: window of 64 {window:>9,.0f} chars/s   "
                f"step {step:>9,.0f} chars/s   ({step / window:.1f}x)"
            )
    if args.skip_learning:
        return 0
    print(
        f"learning ({args.spec.name}, {args.seconds:g} s of training each, "
        f"in {SLICE_SECONDS:g} s turns):"
    )
    print(f"  {'state':<7} {'steps':>6} {'held-out bits/char':>19} {'read carried':>13}")
    for state, steps, own, carried in learning(args.spec, args.seconds):
        print(
            f"  {state:<7} {steps:>6} {own['bits_per_char']:>19.4f} "
            f"{carried['bits_per_char']:>13.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
