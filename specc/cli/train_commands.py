"""The training and inference commands: run, generate, tag."""

from __future__ import annotations

import argparse
import math
import sys

from rich.console import Console
from rich.table import Table

from specc.errors import OptionError

out = Console(highlight=False)


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="train a task, evaluate it and show what the model does",
        description="Train a task of a spec file, evaluate it on held-out data after every "
        "epoch, and show inference (sampled text for next_char, tagged sentences for tag). "
        "Writes DIR/<task>.npz (checkpoint) and DIR/<task>.json (metrics).",
    )
    p.add_argument("file", metavar="FILE", help="the spec file")
    p.add_argument("--task", metavar="T", help="which task to run (default: the first)")
    p.add_argument("--epochs", type=int, metavar="N", help="train for N epochs instead")
    p.add_argument("--steps", type=int, metavar="N", help="train for N steps instead")
    p.add_argument("--seed", type=int, metavar="S", help="override the task's seed")
    p.add_argument("--out", metavar="DIR", help="where to write (default: runs/ beside the spec)")
    p.add_argument(
        "--resume",
        metavar="CKPT",
        help="continue a checkpoint of this task up to the task's total length",
    )


def _positive(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise OptionError(f"--{name} must be a positive whole number, got {value}")


def run_command(args: argparse.Namespace) -> int:
    from specc.api import load
    from specc.errors import SpecError
    from specc.train.loop import Diverged, Interrupted, run_task
    from specc.train.progress import reporter_for

    _positive("epochs", args.epochs)
    _positive("steps", args.steps)
    if args.epochs is not None and args.steps is not None:
        raise OptionError("give --epochs or --steps, not both")
    if args.seed is not None and args.seed < 0:
        raise OptionError(f"--seed must be 0 or more, got {args.seed}")
    program = load(args.file)
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
        )
    except SpecError as err:
        if err.path is None and type(err) in (SpecError, Diverged):
            err.path = args.file  # found after reading the data: say which spec
        raise
    except Interrupted as stop:
        where = f"; checkpoint saved to {stop.checkpoint}" if stop.checkpoint else ""
        sys.stderr.write(f"interrupted at a step boundary{where}\n")
        return stop.exit_status
    show_metrics(result)
    show_demo(result)
    out.print(f"checkpoint: {result.checkpoint}\nmetrics:    {result.metrics_path}")
    return 0


def show_metrics(result) -> None:
    from specc.train.metrics import baseline

    m = result.metrics
    out.print(
        f"[bold]{result.task.name}[/] ({result.task.kind}): {result.steps} steps in "
        f"{m['seconds']:.1f} s"
    )
    table = Table()
    table.add_column("metric")
    table.add_column("train", justify="right")
    table.add_column("held-out", justify="right")
    if "test" in m:
        table.add_column("test", justify="right")
    val = m.get("val", {})
    names = [k for k, v in val.items() if isinstance(v, float)]
    for name in names:
        label = {"loss": "loss (nats)", "bits_per_char": "bits/char"}.get(name, name)
        if name == "loss" and result.task.loss == "mse":
            label = "loss (mse)"
        train = f"{m['train']['loss']:.4f}" if name == "loss" and m.get("train") else ""
        row = [label, train, f"{val[name]:.4f}"]
        if "test" in m:
            v = m["test"].get(name)
            row.append(f"{v:.4f}" if isinstance(v, float) else "")
        table.add_row(*row)
    prepared = result.prepared
    names = {
        "uniform_bits_per_char": "uniform bits/char",
        "majority_accuracy": "accuracy of the most common tag",
        "predict_one_mse": "mse of always predicting 1",
    }
    for key, value in baseline(prepared).items():
        table.add_row(names[key], "", f"{value:.4f}")
    out.print(table)
    per_tag = val.get("per_tag")
    if per_tag:
        tags = Table(title="held-out accuracy per tag", title_justify="left")
        tags.add_column("tag")
        tags.add_column("accuracy", justify="right")
        tags.add_column("words", justify="right")
        for tag, row in sorted(per_tag.items(), key=lambda kv: -kv[1]["count"]):
            tags.add_row(tag, f"{row['accuracy']:.3f}", str(row["count"]))
        out.print(tags)


def show_demo(result) -> None:
    from specc.train.infer import generate, tag_words

    task, prepared = result.task, result.prepared
    if task.kind == "next_char" and task.generate > 0 and prepared.vocab is not None:
        text = generate(
            result.net,
            prepared.vocab,
            task.prime,
            task.generate,
            task.temperature,
            task.seed,
            window=task.seq_len,
        )
        out.rule(f"{task.generate} characters sampled at temperature {task.temperature:g}")
        out.print(task.prime + text, markup=False, highlight=False)
        out.rule()
    elif task.kind == "tag" and prepared.val_sentences and prepared.labels is not None:
        out.rule("held-out sentences, each word with its most likely tags")
        for sentence in prepared.val_sentences[:3]:
            words = [w for w, _ in sentence]
            gold = [t for _, t in sentence]
            print_tagged(tag_words(result.net, prepared.vocab, prepared.labels, words), gold)
            out.print()


def print_tagged(tagged, gold=None) -> None:
    width = max(len(w) for w, _ in tagged)
    for i, (word, tops) in enumerate(tagged):
        best = "  ".join(f"{t:<5} {p:.2f}" for t, p in tops)
        mark = ""
        if gold is not None:
            mark = "" if tops[0][0] == gold[i] else f"   (gold {gold[i]})"
        out.print(f"  {word:<{width}}  {best}{mark}", markup=False, highlight=False)


# ----- generate ------------------------------------------------------------------------


def add_generate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
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


def generate_command(args: argparse.Namespace) -> int:
    from specc.errors import CheckpointError
    from specc.train.checkpoint import load_checkpoint
    from specc.train.infer import generate

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
    text = generate(
        ckpt.network(), ckpt.vocab, prime, n, temperature, args.seed, window=ckpt.task.seq_len
    )
    sys.stdout.write(prime + text + "\n")
    return 0


# ----- tag -----------------------------------------------------------------------------


def add_tag_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tag",
        help="tag a sentence with a tag checkpoint",
        description="Tag each word of a sentence; shows each word's most likely tags "
        "with their probabilities.",
    )
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("sentence", help="the words to tag, separated by spaces")
    p.add_argument("--top", type=int, default=3, metavar="K", help="tags shown per word")


def tag_command(args: argparse.Namespace) -> int:
    from specc.errors import CheckpointError
    from specc.train.checkpoint import load_checkpoint
    from specc.train.infer import tag_words

    ckpt = load_checkpoint(args.checkpoint)
    if ckpt.task.kind != "tag" or ckpt.vocab is None or ckpt.labels is None:
        raise CheckpointError(
            args.checkpoint, f"is a {ckpt.task.kind} checkpoint; tag needs a tag checkpoint"
        )
    if args.top <= 0:
        raise OptionError(f"--top must be positive, got {args.top}")
    words = _split_words(args.sentence)
    print_tagged(tag_words(ckpt.network(), ckpt.vocab, ckpt.labels, words, top=args.top))
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
