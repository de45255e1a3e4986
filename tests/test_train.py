"""Training end to end: determinism, resume, overfitting, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.train.checkpoint import load_checkpoint
from specc.train.loop import run_task

from helpers import SPECS, write_spec_and_data

TEXT = "the quick brown fox jumps over the lazy dog. " * 40

CHAR_SPEC = """
model lm {
    input  chars : tokens
    output next  = chars -> embedding(dim=8) -> rnn(hidden=16) -> batchnorm
        -> dropout(p=0.1) -> dense(units=vocab) -> softmax
}
task lm_task : next_char {
    model     = lm
    data      = text("corpus.txt")
    seq_len   = 12
    batch     = 4
    optimizer = adam(lr=1e-2)
    clip      = 1.0
    epochs    = 2
    generate  = 20
}
"""


def _program(tmp_path: Path, spec: str, files: dict[str, str] | None = None):
    return specc.load(write_spec_and_data(tmp_path, spec, files))


def test_same_seed_gives_identical_runs(tmp_path):
    program = _program(tmp_path, CHAR_SPEC, {"corpus.txt": TEXT})
    a = run_task(program, out_dir=tmp_path / "a")
    b = run_task(program, out_dir=tmp_path / "b")
    for k in a.net.params:
        np.testing.assert_array_equal(a.net.params[k], b.net.params[k])
    assert a.metrics["val"] == b.metrics["val"]
    c = run_task(program, out_dir=tmp_path / "c", seed=1)
    assert not np.array_equal(a.net.params["rnn.W_hh"], c.net.params["rnn.W_hh"])


@pytest.mark.parametrize("stop", [1, 7, 13])  # mid-epoch and at an epoch boundary (13 = 1 epoch)
def test_resume_equals_uninterrupted_run_bit_for_bit(tmp_path, stop):
    program = _program(tmp_path, CHAR_SPEC, {"corpus.txt": TEXT})
    full = run_task(program, out_dir=tmp_path / "full")
    first = run_task(program, out_dir=tmp_path / "part", steps=stop)
    assert first.steps == stop
    rest = run_task(program, out_dir=tmp_path / "part", resume=first.checkpoint)
    assert rest.steps == full.steps
    for k in full.net.params:
        np.testing.assert_array_equal(full.net.params[k], rest.net.params[k], err_msg=k)
    for k in full.net.state:
        np.testing.assert_array_equal(full.net.state[k], rest.net.state[k], err_msg=k)


def test_checkpoint_round_trips_and_metrics_file_matches_contract(tmp_path):
    program = _program(tmp_path, CHAR_SPEC, {"corpus.txt": TEXT})
    result = run_task(program, out_dir=tmp_path / "out")
    ckpt_path = tmp_path / "out" / "lm_task.npz"
    assert result.checkpoint == ckpt_path
    raw = np.load(ckpt_path, allow_pickle=False)
    assert "rnn.W_hh" in raw.files and "batchnorm.running_var" in raw.files
    ckpt = load_checkpoint(ckpt_path)
    net = ckpt.network()
    for k in result.net.params:
        np.testing.assert_array_equal(net.params[k], result.net.params[k])
    ids = np.array([[1, 2, 3, 4]])
    np.testing.assert_array_equal(
        net.forward({"chars": ids})["next"], result.net.forward({"chars": ids})["next"]
    )
    doc = json.loads((tmp_path / "out" / "lm_task.json").read_text())
    assert doc["task"] == "lm_task" and doc["kind"] == "next_char"
    assert doc["steps"] == result.steps and doc["seconds"] > 0
    assert set(doc["val"]) == {"loss", "bits_per_char", "accuracy"}
    assert doc["val"]["bits_per_char"] == pytest.approx(doc["val"]["loss"] / np.log(2))
    assert "loss" in doc["train"]


def test_char_model_learns_far_below_uniform(tmp_path):
    program = _program(
        tmp_path, CHAR_SPEC.replace("epochs    = 2", "epochs    = 6"), {"corpus.txt": TEXT}
    )
    result = run_task(program, out_dir=tmp_path)
    uniform = np.log2(len(result.prepared.vocab))
    assert result.metrics["val"]["bits_per_char"] < 0.5 * uniform


OVERFIT = {
    "next_char": (
        CHAR_SPEC.replace("dropout(p=0.1) -> ", "").replace("epochs    = 2", "steps = 1"),
        {"corpus.txt": TEXT},
    ),
    "tag": (
        """
        model t {
            input w : tokens
            output y = w -> embedding(dim=16) -> rnn(hidden=32) -> dense(units=labels)
                -> softmax
        }
        task k : tag { model = t  data = tagged("c.txt")  batch = 8  optimizer = adam(lr=3e-2) }
        """,
        {
            "c.txt": "the/DET cat/NOUN sat/VERB ./PUNCT\nbig/ADJ dogs/NOUN run/VERB\n"
            "a/DET bird/NOUN sings/VERB loudly/ADV ./PUNCT\nwe/PRON ran/VERB\n" * 3
        },
    ),
    "classify": (
        """
        model c {
            input b : tokens
            output y = b -> one_hot -> rnn(hidden=16, return=last) -> dense(units=labels)
                -> softmax
        }
        task k : classify { model = c  data = parity(length=3, samples=40)  batch = 8
                            optimizer = adam(lr=3e-2) }
        """,
        {},
    ),
    "regress": (
        """
        model a {
            input p : sequence[2]
            output s = p -> rnn(hidden=32, activation=tanh, return=last)
                -> dense(units=1)
        }
        task k : regress { model = a  data = adding(length=4, samples=40)  batch = 8
                           optimizer = adam(lr=1e-2) }
        """,
        {},
    ),
}


@pytest.mark.parametrize("kind", list(OVERFIT))
def test_overfit_one_batch_drives_loss_near_zero(tmp_path, kind):
    spec, files = OVERFIT[kind]
    program = _program(tmp_path, spec, files)
    from specc.train.optim import make_optimizer
    from specc.train.prepare import prepare

    task = program.task()
    prepared = prepare(task, program.base_dir)
    net = program.build(task.model, prepared.sizes, seed=0)
    batch = prepared.batch(0, 0)
    opt = make_optimizer(task.optimizer, net.flat_params.size, net.dtype)
    name = net.model.inputs[0].name
    first = None
    for _ in range(300):
        loss = net.backward_flat({name: batch.inputs}, batch.targets, batch.mask, loss=task.loss)
        first = first if first is not None else loss
        opt.step(net.flat_params, net.flat_grads)
    assert loss < 0.02 * first and loss < 0.05


def test_tagging_example_beats_majority_tag(tmp_path):
    program = specc.load(SPECS / "tagger.spec")
    result = run_task(program, out_dir=tmp_path)
    from specc.train.metrics import baseline

    majority = baseline(result.prepared)["majority_accuracy"]
    assert result.metrics["val"]["accuracy"] > majority + 0.2
    assert result.metrics["val"]["per_tag"]


def test_parity_data_labels_are_the_parity_of_the_bits():
    from specc.data.synthetic import parity

    x, y = parity(length=9, samples=200, seed=3)
    assert x.shape == (200, 9) and set(np.unique(x)) <= {0, 1}
    np.testing.assert_array_equal(y, x.sum(axis=1) % 2)
    again, _ = parity(length=9, samples=200, seed=3)
    np.testing.assert_array_equal(x, again)


def test_parity_example_is_solved(tmp_path):
    result = run_task(specc.load(SPECS / "parity.spec"), out_dir=tmp_path)
    assert result.metrics["val"]["accuracy"] > 0.95  # chance is 0.5


@pytest.mark.parametrize(
    "spec, words",
    [
        (
            "model r { input x : sequence[2] output y = x -> rnn(hidden=8) -> dense(units=1) }\n"
            "task t : regress { model = r  data = adding(length=5, samples=20) }",
            "adding data has one target per sequence",
        ),
        (
            "model r { input x : sequence[2] output y = x -> rnn(hidden=8, return=last)"
            " -> dense(units=vocab) -> dense(units=1) }\n"
            "task t : regress { model = r  data = adding(length=5, samples=20) }",
            "uses 'vocab', but adding data binds no sizes",
        ),
    ],
)
def test_task_and_model_mismatches_are_check_time_errors(spec, words):
    with pytest.raises(specc.SpecError, match=words):
        specc.loads(spec)


def test_a_prime_outside_the_vocabulary_fails_before_training(tmp_path):
    spec = CHAR_SPEC.replace("generate  = 20", 'generate  = 20\n    prime = "XYZ"')
    program = _program(tmp_path, spec, {"corpus.txt": TEXT})
    with pytest.raises(specc.SpecError, match="prime"):
        run_task(program, out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing trained, nothing written


def test_program_train_is_the_python_face_of_specc_run(tmp_path):
    program = _program(tmp_path, CHAR_SPEC, {"corpus.txt": TEXT})
    result = program.train(steps=3, out_dir=tmp_path / "o")
    assert result.steps == 3 and result.checkpoint.exists()
    assert set(result.metrics["val"]) == {"loss", "bits_per_char", "accuracy"}
