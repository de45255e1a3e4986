"""`specc generate`: sample text from a trained next_char checkpoint."""

from __future__ import annotations

import argparse
import math
import sys

from specc.cli.common import add_backend_options
from specc.errors import CheckpointError, OptionError

NAME = "generate"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc generate` and its options."""
    p = sub.add_parser(
        NAME,
        help="sample text from a next_char checkpoint",
        description="Sample characters from a trained next_char checkpoint.",
    )
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("--prime", default=None, help="text to start from (default: the task's)")
    p.add_argument(
        "-n",
        type=int,
        default=None,
        metavar="N",
        help="characters to sample (default: the task's generate setting)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        metavar="T",
        help="below 1 is more conservative, above 1 more adventurous",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument(
        "--context",
        choices=("auto", "step", "window"),
        default="auto",
        help="step: feed one character at a time, carrying every recurrent layer's state "
        "(one step per character); window: predict each character from the last seq_len "
        "characters from zero state, the context of training with state = window "
        "(seq_len steps per character); auto (the default): step, for models trained "
        "either way (even a window-trained model scores better held-out bits/char read "
        "as one carried stream: benchmarks/bench_carry.py), window only for a model "
        "with a reversed layer, which cannot be stepped",
    )
    add_backend_options(p)


def run(args: argparse.Namespace) -> int:
    """Sample from the checkpoint; options left out fall back to the task's settings."""
    from specc.train.checkpoint import load_checkpoint
    from specc.train.infer import can_step, generate

    ckpt = load_checkpoint(args.checkpoint)
    if ckpt.task.kind != "next_char" or ckpt.vocab is None:
        raise CheckpointError(
            args.checkpoint, f"is a {ckpt.task.kind} checkpoint; generate needs next_char"
        )
    n = ckpt.task.generate if args.n is None else args.n
    if n < 0:
        raise OptionError(f"-n must be 0 or more, got {n}")
    temperature = ckpt.task.temperature if args.temperature is None else args.temperature
    if not temperature > 0 or not math.isfinite(temperature):
        raise OptionError(f"--temperature must be a positive number, got {temperature:g}")
    prime = ckpt.task.prime if args.prime is None else args.prime
    context = args.context
    if context == "step" and not can_step(ckpt.model):
        raise OptionError(
            f"--context step: model '{ckpt.model.name}' has a layer that runs backward in "
            "time and cannot be stepped; use --context window"
        )
    text = generate(
        ckpt.network(args.backend, args.device),
        ckpt.vocab,
        prime,
        n,
        temperature,
        args.seed,
        window=ckpt.task.seq_len,
        context=context,
    )
    sys.stdout.write(prime + text + "\n")
    return 0
