"""`specc tag`: tag the words of a sentence with a trained tag checkpoint."""

from __future__ import annotations

import argparse

from specc.cli.common import add_backend_options, check_device
from specc.errors import CheckpointError, OptionError

NAME = "tag"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc tag` and its options."""
    p = sub.add_parser(
        NAME,
        help="tag a sentence with a tag checkpoint",
        description="Tag each word of a sentence; shows each word's most likely tags "
        "with their probabilities.",
    )
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("sentence", help="the words to tag, separated by spaces")
    p.add_argument("--top", type=int, default=3, metavar="K", help="tags shown per word")
    add_backend_options(p)


def run(args: argparse.Namespace) -> int:
    """Tag the sentence's words and print each with its likeliest tags."""
    from specc.cli.show import print_tagged
    from specc.train.checkpoint import load_checkpoint
    from specc.train.infer import tag_words

    check_device(args)
    ckpt = load_checkpoint(args.checkpoint)
    if ckpt.task.kind != "tag" or ckpt.vocab is None or ckpt.labels is None:
        raise CheckpointError(
            args.checkpoint, f"is a {ckpt.task.kind} checkpoint; tag needs a tag checkpoint"
        )
    if args.top <= 0:
        raise OptionError(f"--top must be positive, got {args.top}")
    words = _split_words(args.sentence)
    net = ckpt.network(args.backend, args.device)
    print_tagged(tag_words(net, ckpt.vocab, ckpt.labels, words, top=args.top, chars=ckpt.chars))
    return 0


def _split_words(sentence: str) -> list[str]:
    """Whitespace words, with trailing punctuation split off as tokens of its own."""
    words: list[str] = []
    for raw in sentence.split():
        tail = []
        while len(raw) > 1 and raw[-1] in ".,;:!?":
            tail.insert(0, raw[-1])
            raw = raw[:-1]
        words.append(raw)
        words.extend(tail)
    return words
