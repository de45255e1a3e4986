"""How well do the tagging specs tag real treebanks, against a lookup table?

Trains a tag spec (default: `specs/bilstm_tagger.spec`) on the training file
of each Universal Dependencies treebank given and evaluates it on that
treebank's dev file, within a wall-clock budget per run (`specc run
--time-limit`: training stops at the first step boundary past it, then the
last evaluation is made). The spec's own model and settings are used; only its
data source is replaced by `conllu(TRAIN, column=..., dev=DEV)`, keeping the
spec's column (UPOS unless it says xpos).

Printed for each treebank and spec: dev accuracy at the last evaluation and
the best one, accuracy on the dev words whose string never occurs in the
training file and their share, the per-word baseline (each word's most frequent
training tag, the most common tag for unseen words) on all words and on the
unseen ones, epochs and steps done, training wall time (evaluations included)
and the machine. Not a test: a measurement, and on a shared machine the
times are noisy.

No data ships with specc and nothing is downloaded: give the files.

Usage:
    python benchmarks/bench_ud.py \\
        --treebank en_gum UD/en_gum-ud-train.conllu UD/en_gum-ud-dev.conllu \\
        --treebank ko_kaist UD/ko_kaist-ud-test.conllu UD/ko_kaist-ud-dev.conllu
    python benchmarks/bench_ud.py --train T.conllu --dev D.conllu --spec specs/tagger.spec \\
        --minutes 2 --epochs 30
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO / "specs" / "bilstm_tagger.spec"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--treebank",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "TRAIN", "DEV"),
        help="a treebank: its name in the table, its training and its dev CoNLL-U file "
        "(repeatable)",
    )
    ap.add_argument("--train", type=Path, help="one training file (with --dev)")
    ap.add_argument("--dev", type=Path, help="its dev file (with --train)")
    ap.add_argument(
        "--spec",
        type=Path,
        action="append",
        help=f"a spec with a tag task (repeatable; default {DEFAULT_SPEC.relative_to(REPO)})",
    )
    ap.add_argument("--task", help="which task of each spec (default: its first)")
    ap.add_argument(
        "--minutes", type=float, default=10.0, help="training time per run (default 10)"
    )
    ap.add_argument("--epochs", type=int, help="train up to N epochs instead of the spec's")
    ap.add_argument("--seed", type=int, help="override the task's seed")
    ap.add_argument("--backend", default="numpy", help="numpy (default), reference or torch")
    ap.add_argument("--out", type=Path, help="keep the checkpoints here (default: thrown away)")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    if (args.train is None) != (args.dev is None):
        ap.error("--train and --dev go together")
    if args.train is not None:
        args.treebank.append([args.train.stem, str(args.train), str(args.dev)])
    if not args.treebank:
        ap.error("give --treebank NAME TRAIN DEV (or --train and --dev)")
    for _, *files in args.treebank:
        for f in files:
            if not Path(f).is_file():
                ap.error(f"no such file: {f}")
    if not args.minutes > 0:
        ap.error(f"--minutes must be positive, got {args.minutes:g}")
    args.spec = args.spec or [DEFAULT_SPEC]
    return args


def on_treebank(task, train: str, dev: str):
    """The task reading `train` and evaluating on `dev`, everything else as written."""
    from specc.ir.spec import ConlluData

    if task.kind != "tag":
        raise SystemExit(f"task '{task.name}' is a {task.kind} task; a tag task is needed")
    column = getattr(task.data, "column", "upos")
    data = ConlluData(path=str(Path(train).resolve()), dev=str(Path(dev).resolve()), column=column)
    return task.model_copy(update={"data": data})


def run_one(args: argparse.Namespace, spec: Path, name: str, train: str, dev: str, out: Path):
    import specc
    from specc.train.loop import run_task
    from specc.train.progress import PlainReporter

    # no base folder: the spec's own data file need not exist, its source is replaced
    program = specc.loads(spec.read_text(encoding="utf-8"), str(spec))
    task = on_treebank(program.task(args.task), train, dev)
    sys.stderr.write(f"== {name} with {spec.name} (task {task.name}), {args.minutes:g} min\n")
    started = time.perf_counter()
    result = run_task(
        program,
        task,
        epochs=args.epochs,
        seed=args.seed,
        out_dir=out / f"{name}-{spec.stem}",
        reporter=PlainReporter(sys.stderr, every=30.0),
        backend=args.backend,
        time_limit=args.minutes * 60,
    )
    m = result.metrics
    val, base = m["val"], m.get("baseline", {})
    spe = result.prepared.steps_per_epoch
    return {
        "treebank": name,
        "spec": spec.name,
        "dev_accuracy": val["accuracy"],
        "best_dev_accuracy": m["best"]["value"]
        if m.get("best", {}).get("metric") == "accuracy"
        else None,
        "unseen_accuracy": val.get("unseen_accuracy"),
        "unseen_fraction": val["unseen"]["fraction"],
        "per_word_accuracy": base.get("per_word_accuracy"),
        "per_word_unseen_accuracy": base.get("per_word_unseen_accuracy"),
        "epochs": result.steps / spe,
        "steps": result.steps,
        "train_seconds": m["seconds"],
        "wall_seconds": time.perf_counter() - started,
        "time_limited": bool(m.get("time_limited")),
    }


def _f(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def table(rows: list[dict[str, Any]], machine: str) -> str:
    head = (
        "| treebank | spec | dev UPOS (last / best) | unseen words: accuracy | unseen share "
        "| per-word baseline (all / unseen) | epochs | train time |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['treebank']} | {r['spec']} | failed: {r['error']} |" + " |" * 5)
            continue
        cut = " (time limit)" if r["time_limited"] else ""
        lines.append(
            f"| {r['treebank']} | {r['spec']} | {_f(r['dev_accuracy'])} / "
            f"{_f(r['best_dev_accuracy'])} | {_f(r['unseen_accuracy'])} | "
            f"{_f(r['unseen_fraction'], '.1%')} | {_f(r['per_word_accuracy'])} / "
            f"{_f(r['per_word_unseen_accuracy'])} | {r['epochs']:.1f} | "
            f"{_duration(r['train_seconds'])}{cut} |"
        )
    return "\n".join(lines) + f"\n\nmachine: {machine}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from specc.errors import SpecError
    from specc.study.machine import describe

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        for name, train, dev in args.treebank:
            for spec in args.spec:
                try:
                    rows.append(run_one(args, spec, name, train, dev, out))
                except SpecError as err:  # diverged, say: the other runs still count
                    err.path = err.path or str(spec)
                    sys.stderr.write(err.render() + "\n")
                    reason = str(err.args[0]).split(";")[0]
                    rows.append({"treebank": name, "spec": spec.name, "error": reason})
    machine = describe()
    print(table(rows, machine))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
