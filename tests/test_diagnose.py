"""Gradient flow through time and covariate shift: the lesson, measured."""

from __future__ import annotations

import json

import numpy as np
import pytest

import specc
from specc.cli import main
from specc.diagnose.flow import GradientFlow, gradient_flow
from specc.train.prepare import prepare

from helpers import BATCHNORM_RNN, FOX_TEXT, write_spec_and_data

ADDER = """
model adder {{
    input  pairs : sequence[2]
    output sum   = pairs -> rnn(hidden=32, activation={act}, init={init}, return=last)
                         -> dense(units=1)
}}
task adding : regress {{
    model = adder
    data  = adding(length={T}, samples=64)
    batch = 16
    steps = 3
}}
"""


def _flow(act: str, init: str, T: int = 100, seed: int = 0) -> GradientFlow:
    program = specc.loads(ADDER.format(act=act, init=init, T=T))
    task = program.task()
    prepared = prepare(task, None)
    net = program.build(task.model, prepared.sizes, seed=seed, dtype="float64")
    return gradient_flow(net, prepared.batch(0, 0), task)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_rnn_gradient_vanishes_over_100_steps(seed):
    flow = _flow("sigmoid", "default", seed=seed)
    assert flow.length == 100
    assert flow.grad_norm[0] / flow.grad_norm[99] < 1e-6


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "leaky_relu(slope=0.1)"])
@pytest.mark.parametrize("seed", [0, 1])
def test_identity_initialised_rectified_rnn_keeps_its_gradient(act, seed):
    flow = _flow(act, "identity", seed=seed)
    assert flow.grad_norm[0] / flow.grad_norm[99] > 1e-2


def test_decay_and_horizon_summaries():
    g = 0.5 ** np.arange(20)[::-1]  # halves per step back in time
    flow = GradientFlow("rnn", g, "x")
    assert flow.decay_per_step == pytest.approx(0.5)
    assert flow.horizon(1e-3) == 10  # 2**-10 < 1e-3 <= 2**-9
    assert GradientFlow("rnn", np.ones(5), "x").horizon() is None


def test_diagnose_json_and_svg(tmp_path, capsys):
    spec = write_spec_and_data(tmp_path, ADDER.format(act="tanh", init="default", T=30))
    svg = tmp_path / "flow.svg"
    assert main(["diagnose", str(spec), "--format", "json", "--svg", str(svg)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["grad_norm"]) == 30 and all(g >= 0 for g in doc["grad_norm"])
    assert doc["rnn"] == "rnn" and doc["activation"] == "tanh"
    assert "<svg" in svg.read_text()  # a chart with specc[plot], else the terminal view


def test_diagnose_text_shows_chart_and_summary(tmp_path, capsys):
    spec = write_spec_and_data(tmp_path, ADDER.format(act="sigmoid", init="default", T=40))
    assert main(["diagnose", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "‖∂L_T/∂h_t‖" in out and "decay per step" in out
    assert "falls below 1e-3" in out


def test_diagnose_after_training_and_from_checkpoint(tmp_path, capsys):
    spec = write_spec_and_data(tmp_path, ADDER.format(act="relu", init="identity", T=20))
    assert (
        main(
            ["diagnose", str(spec), "--train", "--format", "json", "--out", str(tmp_path / "runs")]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["after_training"]["grad_norm"]) == 20
    assert doc["grad_norm"] != doc["after_training"]["grad_norm"]
    assert main(["diagnose", str(tmp_path / "runs" / "adding.npz"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"].startswith("after 3 training steps")


def test_model_without_rnn_is_a_clear_error(tmp_path, capsys):
    spec = write_spec_and_data(
        tmp_path,
        "model m { input c : tokens  output y = c -> embedding(4) -> dense(units=vocab)"
        " -> softmax }\n"
        'task t : next_char { model = m  data = text("c.txt")  seq_len = 8  batch = 4 }\n',
        {"c.txt": "abc " * 200},
    )
    assert main(["diagnose", str(spec)]) == 1
    assert "has no rnn" in capsys.readouterr().err


def test_batchnorm_holds_the_next_layers_input_steady(tmp_path, capsys):
    spec = write_spec_and_data(tmp_path, BATCHNORM_RNN, FOX_TEXT)
    assert main(["diagnose", str(spec), "--shift", "--steps", "40", "--format", "json"]) == 0
    with_bn, without_bn = json.loads(capsys.readouterr().out)["shift"]
    assert with_bn["variant"] == "with batchnorm" and with_bn["layer"] == "leaky_relu"
    assert with_bn["mean_drift"][-1] < without_bn["mean_drift"][-1]
