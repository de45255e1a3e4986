"""`specc run --time-limit`: a run cut short by its deadline ends as a finished one
does (evaluated, the test split too, saved), and resumes to the uninterrupted run."""

from __future__ import annotations

import json

import numpy as np
import pytest

import specc
from specc.train.loop import run_task

from helpers import conllu_text, specc_cli, write_spec_and_data

SPEC = """
model tagger {
    input  words : tokens
    e    = words -> embedding(dim=8)
    output tags = e -> rnn(hidden=8) -> dense(units=labels) -> softmax
}
task pos : tag {
    model     = tagger
    data      = conllu("train.conllu", dev="dev.conllu", test="dev.conllu")
    batch     = 2
    optimizer = adam(lr=1e-2)
    epochs    = 3
}
"""
TRAIN = "the/DET dog/NOUN runs/VERB\na/DET cat/NOUN sleeps/VERB\nthe/DET cat/NOUN runs/VERB\n"
DEV = "a/DET dog/NOUN sleeps/VERB\nthe/DET fox/NOUN runs/VERB\n"


@pytest.fixture
def spec(tmp_path):
    files = {"train.conllu": conllu_text(TRAIN * 3), "dev.conllu": conllu_text(DEV)}
    return write_spec_and_data(tmp_path, SPEC, files)


def test_a_run_out_of_time_is_evaluated_saved_and_resumes_to_the_full_run(spec):
    program = specc.load(spec)
    full = run_task(program, out_dir=spec.parent / "full")
    assert "time_limited" not in full.metrics
    cut = run_task(program, out_dir=spec.parent / "cut", time_limit=1e-9)  # past it at once
    assert cut.steps == 1 < full.steps
    doc = json.loads((spec.parent / "cut" / "pos.json").read_text())
    assert doc["time_limited"] is True and doc["steps"] == 1
    assert [h["step"] for h in doc["history"]] == [1]
    assert "accuracy" in doc["test"]  # evaluated on the test split as at the end
    rest = run_task(program, out_dir=spec.parent / "cut", resume=cut.checkpoint)
    assert rest.steps == full.steps and "time_limited" not in rest.metrics
    for k in full.net.params:
        np.testing.assert_array_equal(full.net.params[k], rest.net.params[k], err_msg=k)


def test_a_time_limit_it_never_reaches_changes_nothing(spec):
    program = specc.load(spec)
    a = run_task(program, out_dir=spec.parent / "a")
    b = run_task(program, out_dir=spec.parent / "b", time_limit=3600)
    assert a.steps == b.steps and "time_limited" not in b.metrics
    for k in a.net.params:
        np.testing.assert_array_equal(a.net.params[k], b.net.params[k], err_msg=k)


def test_specc_run_time_limit_says_where_it_stopped(spec):
    res = specc_cli("run", str(spec), "--time-limit", "1e-9", "--out", str(spec.parent / "r"))
    assert res.returncode == 0, res.stderr
    assert "stopped at the time limit after step 1 of 15" in res.stdout + res.stderr
    assert "--resume continues it" in res.stdout + res.stderr


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_specc_run_refuses_a_time_limit_that_is_not_positive(spec, value):
    res = specc_cli("run", str(spec), f"--time-limit={value}")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "--time-limit must be a positive number of minutes" in res.stderr
