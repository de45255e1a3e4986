"""The training settings of issue 21 as a user meets them: the best checkpoint,
early stopping, evaluation every N steps, the history in the metrics file, the
learning rate each step used, and resume staying bit-exact with all of them.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.cli.main import main
from specc.train.checkpoint import load_checkpoint
from specc.train.loop import Interrupted, run_task
from specc.train.metrics import evaluate
from specc.train.prepare import prepare
from specc.train.schedule import LearningRate

from helpers import interrupt_at, write_spec_and_data

TEXT = "the quick brown fox jumps over the lazy dog. " * 40

SPEC = """
model lm {
    input  chars : tokens
    output next  = chars -> embedding(dim=8) -> rnn(hidden=16) -> batchnorm
        -> dropout(p=0.1) -> dense(units=vocab) -> softmax
}
task t : next_char {
    model      = lm
    data       = text("corpus.txt")
    seq_len    = 12
    batch      = 4
    optimizer  = OPTIMIZER
    schedule   = SCHEDULE
    monitor    = accuracy
    eval_every = 7
    steps      = 60
    generate   = 5
}
"""


def program(
    tmp_path: Path,
    optimizer="adamw(lr=2e-2, weight_decay=0.05)",
    schedule="cosine(warmup=10)",
    extra="",
):
    text = SPEC.replace("OPTIMIZER", optimizer).replace("SCHEDULE", schedule)
    text = text.replace("    generate   = 5\n", f"    generate   = 5\n{extra}")
    return specc.load(write_spec_and_data(tmp_path, text, {"corpus.txt": TEXT}))


def test_history_has_every_evaluation_with_the_rate_the_schedule_gave(tmp_path):
    result = run_task(program(tmp_path), out_dir=tmp_path / "o")
    doc = json.loads((tmp_path / "o" / "t.json").read_text())
    steps = [h["step"] for h in doc["history"]]
    assert steps == [7, 14, 21, 28, 35, 42, 49, 56, 60]  # every 7 steps, and the last
    schedule = LearningRate(result.task.schedule, 2e-2, 60)
    assert [h["lr"] for h in doc["history"]] == [schedule.at(s - 1) for s in steps]
    assert all(h["seconds"] >= 0 and h["train_loss"] > 0 for h in doc["history"])
    assert all(set(h["val"]) == {"loss", "bits_per_char", "accuracy"} for h in doc["history"])


def test_the_best_checkpoint_is_the_evaluation_with_the_best_metric(tmp_path):
    result = run_task(program(tmp_path), out_dir=tmp_path / "o")
    doc = result.metrics
    accuracies = [h["val"]["accuracy"] for h in doc["history"]]
    best = doc["best"]
    assert best["metric"] == "accuracy" and best["value"] == max(accuracies)
    assert best["step"] == doc["history"][accuracies.index(max(accuracies))]["step"]
    kept = load_checkpoint(tmp_path / "o" / "t.best.npz")
    assert kept.step == best["step"] and result.best_checkpoint == tmp_path / "o" / "t.best.npz"
    # the kept weights score what the history says
    prepared = prepare(kept.task, tmp_path)
    again = evaluate(kept.network(), prepared, prepared.val)["accuracy"]
    assert again == pytest.approx(best["value"], rel=1e-9)


def test_a_loss_is_monitored_downwards_by_default(tmp_path):
    spec = program(tmp_path)
    task = spec.task("t").model_copy(update={"monitor": None})
    result = run_task(spec, task, out_dir=tmp_path / "o")
    losses = [h["val"]["loss"] for h in result.metrics["history"]]
    assert result.metrics["best"]["metric"] == "loss"
    assert result.metrics["best"]["value"] == min(losses)


def test_early_stop_ends_the_run_after_patience_evaluations_without_improvement(tmp_path):
    # min_delta larger than any change: only the first evaluation counts as an improvement
    spec = program(tmp_path, extra="    early_stop = patience(2, min_delta=100)\n")
    result = run_task(spec, out_dir=tmp_path / "o")
    assert result.steps == 21 and result.metrics["stopped_early"] is True
    assert [h["step"] for h in result.metrics["history"]] == [7, 14, 21]
    accuracies = [h["val"]["accuracy"] for h in result.metrics["history"]]
    assert result.metrics["best"]["value"] == max(accuracies)  # the best is still the best
    assert load_checkpoint(tmp_path / "o" / "t.npz").step == 21


def test_until_ends_the_run_at_the_first_evaluation_that_reaches_the_goal(tmp_path):
    seen = []

    def goal(val):  # reached at the third evaluation, whatever the figures
        seen.append(val)
        return len(seen) == 3

    result = run_task(program(tmp_path), out_dir=tmp_path / "o", until=goal)
    assert result.steps == 21 and result.metrics["stopped_early"] is True
    assert [h["step"] for h in result.metrics["history"]] == [7, 14, 21]
    assert seen[-1] == result.metrics["history"][-1]["val"]  # it judged the held-out figures
    assert load_checkpoint(tmp_path / "o" / "t.npz").step == 21


def test_early_stop_is_said_in_the_summary(tmp_path, capsys):
    spec = program(tmp_path, extra="    early_stop = patience(2, min_delta=100)\n")
    assert main(["run", str(spec.path), "--out", str(tmp_path / "o")]) == 0
    out = " ".join(capsys.readouterr().out.split())  # as read, whatever the terminal's width
    assert "stopped early: held-out accuracy has not improved by more than 100 for 2" in out
    # the sparkline of the three evaluations, rising
    assert re.search(r"held-out accuracy ▁[▁-█]█ 0\.\d{4} → 0\.\d{4}, best", out), out
    assert "at epoch 1 (step 21), stopped early" in out
    assert f"best: {tmp_path / 'o' / 't.best.npz'} (epoch 1, step 21: held-out accuracy" in out


def test_generate_explain_and_diagnose_take_the_best_checkpoint(tmp_path, capsys):
    spec = program(tmp_path)
    run_task(spec, out_dir=tmp_path / "o")
    best = str(tmp_path / "o" / "t.best.npz")
    assert main(["generate", best, "-n", "10", "--prime", "the "]) == 0
    assert capsys.readouterr().out.startswith("the ")
    assert main(["explain", best]) == 0
    assert "checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize(
    "optimizer, schedule, extra",
    [
        (
            "adamw(lr=2e-2, weight_decay=0.05)",
            "cosine(warmup=10)",
            "    early_stop = patience(3)\n",
        ),
        ("sgd(lr=0.5, momentum=0.9, weight_decay=1e-3)", "plateau(patience=1, factor=0.5)", ""),
        (
            "adam(lr=2e-2)",
            "step(every=20, factor=0.5)",
            "    early_stop = patience(2, min_delta=0.01)\n",
        ),
        # stops at step 28 only if the resumed run remembers what it saw before step 14
        ("adam(lr=2e-2)", "constant", "    early_stop = patience(3, min_delta=100)\n"),
    ],
)
@pytest.mark.parametrize("at_step", [10, 14])  # between evaluations, and right on one
def test_resume_is_bit_exact_with_every_setting_in_play(
    tmp_path, optimizer, schedule, extra, at_step
):
    spec = program(tmp_path, optimizer, schedule, extra)
    full = run_task(spec, out_dir=tmp_path / "full")
    with pytest.raises(Interrupted):
        run_task(spec, out_dir=tmp_path / "part", reporter=interrupt_at(at_step))
    assert load_checkpoint(tmp_path / "part" / "t.npz").step == at_step
    resumed = run_task(spec, out_dir=tmp_path / "part", resume=tmp_path / "part" / "t.npz")
    assert resumed.steps == full.steps
    for k in full.net.params:
        np.testing.assert_array_equal(full.net.params[k], resumed.net.params[k], err_msg=k)

    def without_seconds(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert without_seconds(resumed.metrics["history"]) == without_seconds(full.metrics["history"])
    assert resumed.metrics["best"] == full.metrics["best"]
    assert resumed.metrics.get("stopped_early") == full.metrics.get("stopped_early")
    a = load_checkpoint(tmp_path / "full" / "t.best.npz")
    b = load_checkpoint(tmp_path / "part" / "t.best.npz")
    assert a.step == b.step
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k)


def test_plateau_cuts_the_rate_the_history_shows(tmp_path):
    spec = program(tmp_path, "adam(lr=2e-2)", "plateau(patience=0, factor=0.5)")
    history = run_task(spec, out_dir=tmp_path / "o").metrics["history"]
    rates = [h["lr"] for h in history]
    assert rates[0] == 2e-2 and min(rates) < 2e-2  # cut at least once
    assert all(b in (a, a * 0.5) for a, b in itertools.pairwise(rates))


def test_a_warmup_longer_than_a_run_in_epochs_is_refused_before_training(tmp_path, capsys):
    text = SPEC.replace("OPTIMIZER", "adam").replace("SCHEDULE", "cosine(warmup=100000)")
    text = text.replace("steps      = 60", "epochs     = 1")  # known only from the data
    path = str(write_spec_and_data(tmp_path, text, {"corpus.txt": TEXT}))
    assert main(["run", path, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "a warmup of 100000 steps does not end before the run's" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "setting, token, words",
    [
        (
            "schedule = cosine(warmup=60)",
            "60",
            "warmup of 60 steps does not end before the run's 60",
        ),
        ("schedule = linear", "linear", "unknown schedule 'linear'"),
        ("schedule = step(factor=0.5)", "step", "step needs argument 'every'"),
        ("monitor = bits", "bits", "next_char tasks have no held-out metric bits"),
        ("early_stop = patience(0)", "0", "'evals' of patience must be greater than 0"),
        ("eval_every = -3", "-3", "'eval_every' must be greater than 0"),
        ("optimizer = adamw(weight_decay=-1)", "-1", "'weight_decay' of adamw must be at least 0"),
        ("optimizer = sgd(decay=biases)", "biases", "'decay' of sgd must be 'weights' or 'all'"),
    ],
)
def test_new_settings_are_checked_where_they_are_written(tmp_path, setting, token, words):
    key = setting.split()[0]
    lines = SPEC.replace("OPTIMIZER", "adam").replace("SCHEDULE", "constant").splitlines()
    lines = [line for line in lines if line.split()[:1] != [key]]  # the new one replaces it
    lines.insert(lines.index("    generate   = 5") + 1, f"    {setting}")
    path = write_spec_and_data(tmp_path, "\n".join(lines) + "\n", {"corpus.txt": TEXT})
    line = next(i for i, text in enumerate(lines, 1) if setting in text)
    column = lines[line - 1].index(token, len(f"    {key}")) + 1
    with pytest.raises(specc.SpecError) as err:
        specc.load(path)
    first = err.value.render().splitlines()[0]
    assert first.startswith(f"{path}:{line}:{column}: error: ") and words in first, first


def test_a_run_shortened_on_the_command_line_may_end_inside_its_warmup(tmp_path, capsys):
    """--steps for a quick try of a spec is not refused for its warmup: it is said."""
    text = SPEC.replace("OPTIMIZER", "adam").replace("SCHEDULE", "cosine(warmup=40)")
    path = str(write_spec_and_data(tmp_path, text, {"corpus.txt": TEXT}))
    assert main(["run", path, "--steps", "3", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "end inside the warmup of 40 steps" in out
    assert (tmp_path / "o").is_dir()
