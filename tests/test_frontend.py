"""The front end on the normative examples: parse, lower, resolve, validate, shapes."""

from __future__ import annotations

import json

import pytest

import specc
from specc.ir.spec import Spec

from helpers import SPECS


def test_char_rnn_nodes_are_auto_named_and_shaped():
    program = specc.load(SPECS / "char_rnn.spec")
    model = program.model("char_rnn")
    got = [(n.name, n.op, n.inputs, n.shape.dims) for n in model.nodes]
    assert got == [
        ("embedding", "embedding", ["chars"], ("B", "T", 32)),
        ("rnn", "rnn", ["embedding"], ("B", "T", 128)),
        ("batchnorm", "batchnorm", ["rnn"], ("B", "T", 128)),
        ("leaky_relu", "leaky_relu", ["batchnorm"], ("B", "T", 128)),
        ("dense", "dense", ["leaky_relu"], ("B", "T", "vocab")),
        ("next", "softmax", ["dense"], ("B", "T", "vocab")),
    ]
    assert model.outputs == ["next"]


def test_task_settings_are_typed_with_defaults():
    task = specc.load(SPECS / "char_rnn.spec").task("python_docs")
    assert task.kind == "next_char"
    assert task.optimizer.name == "adam" and task.optimizer.lr == pytest.approx(3e-3)
    assert task.optimizer.beta1 == 0.9
    assert (task.seq_len, task.batch, task.epochs, task.steps) == (64, 32, 1, None)
    assert task.loss == "cross_entropy"
    assert task.data.builtin == "python-docs" and task.generate == 300


def test_ops_numbered_when_an_op_names_several_steps():
    program = specc.loads(
        """
        model m {
            input x : sequence[3]
            output y = x -> rnn(4) -> rnn(5) -> relu -> dense(2)
            z = x -> relu -> tanh
        }
        """
    )
    names = [n.name for n in program.model("m").nodes]
    assert names == ["rnn_1", "rnn_2", "relu_1", "y", "relu_2", "z"]


def test_forward_references_are_ordered_by_dataflow():
    program = specc.loads(
        """
        model m {
            output y = h -> dense(units=2)
            h = x -> rnn(hidden=3, return=last)
            input x : sequence[4]
        }
        """
    )
    assert [n.name for n in program.model("m").nodes] == ["h", "y"]


def test_binding_sizes_reinfers_shapes():
    program = specc.load(SPECS / "char_rnn.spec")
    model = program.bound_model("char_rnn", {"vocab": 65})
    assert model.node("next").shape.dims == ("B", "T", 65)
    assert model.node("embedding").param_shapes([model.inputs[0].shape()]) == {"E": ("vocab", 32)}


def test_ir_round_trips_through_json():
    for path in SPECS.glob("*.spec"):
        try:
            ir = specc.load(path).ir
        except specc.SpecError:
            continue  # data files of some specs are shipped separately
        text = ir.model_dump_json(by_alias=True)
        again = Spec.model_validate_json(text)
        assert again == ir
        assert json.loads(again.model_dump_json(by_alias=True)) == json.loads(text)


def test_positional_arguments_follow_field_order():
    program = specc.loads(
        """
        model m {
            input x : tokens
            output y = x -> embedding(8) -> rnn(16, leaky_relu(0.2), identity, true)
                -> dense(3, false) -> softmax
        }
        """
    )
    rnn = program.model("m").node("rnn")
    assert (rnn.hidden, rnn.activation.leak, rnn.init, rnn.reverse) == (16, 0.2, "identity", True)
    assert program.model("m").node("dense").bias is False


def test_every_syntax_error_in_a_file_is_reported():
    text = """model m {
    input x : sequence[2]
    h = x -> rnn(hidden=8
    y = h -> relu
    output z = y -> dense(units=1) ]
}

task t : regress {
    model = m
    data = adding(length=5 samples=20)
}
"""
    with pytest.raises(specc.SpecError) as err:
        specc.loads(text, "multi.spec")
    places = [(d.span.line, d.span.column) for d in err.value.diagnostics]
    assert places == [(4, 5), (5, 36), (10, 28)]
    assert "expected ',' or ')' after '8'" in err.value.diagnostics[0].message
