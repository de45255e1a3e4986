"""How `specc run` and `specc tag` show results: metrics tables, samples, tagged words.

Shared by the run and tag commands, so it lives beside them rather than in
either. `out` is the console both print to (and `run` hands to the progress
reporter), so everything a command prints goes through one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from specc.train.loop import RunResult

out = Console(highlight=False)


def show_metrics(result: RunResult) -> None:
    """The metrics table (train, held-out, test) beside the baselines a model must beat."""
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
    from specc.train.progress import METRIC_WORDS

    labels = {**METRIC_WORDS, "loss": "loss (nats)"}
    for name in names:
        label = labels.get(name, name)
        if name == "loss" and result.task.loss == "mse":
            label = "loss (mse)"
        train = f"{m['train']['loss']:.4f}" if name == "loss" and m.get("train") else ""
        row = [label, train, f"{val[name]:.4f}"]
        if "test" in m:
            v = m["test"].get(name)
            row.append(f"{v:.4f}" if isinstance(v, float) else "")
        table.add_row(*row)
    if "unseen" in val:
        splits = [val, m["test"]] if "test" in m else [val]
        table.add_row("unseen words (not in training)", "", *map(_unseen_cell, splits))
    names = {
        "uniform_bits_per_char": "uniform bits/char",
        "majority_accuracy": "accuracy of the most common tag",
        "per_word_accuracy": "per-word baseline: accuracy",
        "per_word_unseen_accuracy": "per-word baseline: on unseen words",
        "predict_one_mse": "mse of always predicting 1",
    }
    for key, value in m.get("baseline", {}).items():
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


def _unseen_cell(split: dict) -> str:
    """How many evaluated words never occur in training, and their share."""
    unseen = split.get("unseen")
    return f"{unseen['count']:,} ({unseen['fraction']:.1%})" if unseen else ""


def show_demo(result: RunResult) -> None:
    """What the trained model does: sampled text, or held-out sentences tagged."""
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
            tagged = tag_words(
                result.net, prepared.vocab, prepared.labels, words, chars=prepared.chars
            )
            print_tagged(tagged, gold)
            out.print()


def print_tagged(
    tagged: list[tuple[str, list[tuple[str, float]]]], gold: list[str] | None = None
) -> None:
    """Each word with its likeliest tags, and the gold tag where the best one is wrong."""
    width = max(len(w) for w, _ in tagged)
    for i, (word, tops) in enumerate(tagged):
        best = "  ".join(f"{t:<5} {p:.2f}" for t, p in tops)
        mark = ""
        if gold is not None:
            mark = "" if tops[0][0] == gold[i] else f"   (gold {gold[i]})"
        out.print(f"  {word:<{width}}  {best}{mark}", markup=False, highlight=False)
