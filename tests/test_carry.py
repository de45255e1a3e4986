"""Carried recurrent state (issue 24) as a user meets it: stepping a network one
character at a time, truncated BPTT with `state = carry`, its evaluation, resume,
sampling, and the errors for what cannot carry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specc
from specc.backend import build_network
from specc.cli.main import main
from specc.train.checkpoint import load_checkpoint
from specc.train.infer import generate
from specc.train.loop import Interrupted, run_task
from specc.train.metrics import evaluate
from specc.train.prepare import prepare

from helpers import interrupt_at, write_spec_and_data

BACKENDS = ["numpy", "reference", "torch"]

#: Every op that acts on each step alone, around all three recurrent cells.
STACK = """
model m {
    input  chars : tokens
    e = chars -> embedding(dim=5)
    r = e -> rnn(hidden=6, activation=leaky_relu(slope=0.2))
    l = (e, r) -> concat -> lstm(hidden=7)
    g = l -> gru(hidden=6)
    s = (r, g) -> add -> batchnorm -> dropout(p=0.3) -> gelu
    output next = s -> dense(units=vocab) -> softmax
}
"""

TEXT = "the quick brown fox jumps over the lazy dog; pack my box with five dozen jugs. " * 30

TASK = """
model lm {
    input  chars : tokens
    output next  = chars -> embedding(dim=8) -> lstm(hidden=12) -> gru(hidden=10)
        -> batchnorm -> dense(units=vocab) -> softmax
}
task t : next_char {
    model      = lm
    data       = text("corpus.txt")
    seq_len    = 9
    batch      = 4
    optimizer  = adam(lr=1e-2)
    eval_every = 5
    steps      = 24
    generate   = 20
    state      = carry
}
"""


def backend_or_skip(name: str) -> str:
    if name == "torch":
        pytest.importorskip("torch")
    return name


def trained_stack(backend: str, vocab: int = 9):
    """STACK in float64 with batchnorm statistics that are not the initial ones."""
    model = specc.loads(STACK).bound_model("m", {"vocab": vocab})
    net = build_network(model, backend, seed=3, dtype="float64")
    rng = np.random.default_rng(5)
    for key, value in net.state.items():  # running statistics as after some training
        value[...] = (
            rng.uniform(0.5, 1.5, value.shape) if "var" in key else rng.normal(0, 1, value.shape)
        )
    return net


#: The ops STACK leaves out, and an embedding folded into the layer that alone reads it.
OTHERS = """
model m {
    input  chars : tokens
    o = chars -> one_hot -> relu -> rnn(hidden=5, activation=sigmoid)
    f = chars -> embedding(dim=4) -> gru(hidden=3)
    k = (o, f) -> concat -> tanh -> sigmoid -> softmax
    j = k
    output next = j -> batchnorm(affine=false) -> dense(units=vocab, bias=false) -> softmax
}
"""


@pytest.mark.parametrize("spec", [STACK, OTHERS], ids=["stack", "others"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stepper_gives_the_scores_of_the_whole_sequence(backend, spec):
    """`Network.stepper` (on numpy, small step functions per node) one step at a time
    equals `scores` over the whole sequence, and ends in the state `step` ends in."""
    model = specc.loads(spec).bound_model("m", {"vocab": 9})
    net = build_network(model, backend_or_skip(backend), seed=3, dtype="float64")
    for key, value in net.state.items():
        value[...] = np.linspace(0.6, 1.4, value.size) if "var" in key else 0.1
    ids = np.random.default_rng(2).integers(0, 9, size=(3, 8))
    start = {k: v + 0.2 for k, v in net.zero_state(3).items()}
    stepper = net.stepper(start)
    got = np.stack([stepper.scores(ids[:, t]).copy() for t in range(8)], axis=1)
    with net.carrying(start) as carried:
        want = net.scores({"chars": ids})
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    for key, value in carried.state.items():
        np.testing.assert_allclose(stepper.state[key], value, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_returning_its_last_state_steps_to_its_whole_sequence_output(backend):
    model = specc.loads(
        "model m { input x : sequence[3]\n output y = x -> rnn(hidden=4) -> "
        "lstm(hidden=5, return=last) -> dense(units=2) }"
    ).bound_model("m", {})
    net = build_network(model, backend_or_skip(backend), seed=1, dtype="float64")
    x = np.random.default_rng(3).standard_normal((2, 6, 3))
    stepper = net.stepper(batch=2)
    for t in range(6):
        got = stepper.scores(x[:, t]).copy()
    np.testing.assert_allclose(got, net.forward({"x": x})["y"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stepping_one_character_at_a_time_equals_running_the_whole_sequence(backend):
    net = trained_stack(backend_or_skip(backend))
    ids = np.random.default_rng(0).integers(0, 9, size=(3, 11))
    whole = net.forward({"chars": ids})["next"]
    state, steps = None, []
    for t in range(ids.shape[1]):
        out, state = net.step({"chars": ids[:, t : t + 1]}, state)
        steps.append(out["next"])
    np.testing.assert_allclose(np.concatenate(steps, axis=1), whole, rtol=0, atol=1e-12)
    # the state after the last step is the state after the whole sequence
    _, after_whole = net.step({"chars": ids})
    assert set(state) == {"r.h", "l.h", "l.c", "g.h"}
    for key in state:
        np.testing.assert_allclose(state[key], after_whole[key], rtol=0, atol=1e-12)
    # and windows of any length continue one another the same way
    with net.carrying(net.zero_state(3)):
        parts = [net.forward({"chars": ids[:, a:b]})["next"] for a, b in ((0, 4), (4, 5), (5, 11))]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=0, atol=1e-12)


def test_every_backend_steps_to_the_same_numbers():
    pytest.importorskip("torch")
    ids = np.random.default_rng(1).integers(0, 9, size=(2, 6))
    state = {k: v + 0.1 for k, v in trained_stack("numpy").zero_state(2).items()}
    results = [trained_stack(b).step({"chars": ids}, state) for b in BACKENDS]
    for out, after in results[1:]:
        np.testing.assert_allclose(out["next"], results[0][0]["next"], rtol=0, atol=1e-9)
        for key, value in after.items():
            np.testing.assert_allclose(value, results[0][1][key], rtol=0, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_carried_training_is_one_long_sequence_with_gradients_cut_at_the_windows(backend):
    """PyTorch's own truncated BPTT (run a window, detach the state, run the next),
    on the same weights: every window's loss and every gradient agree to 1e-10."""
    torch = pytest.importorskip("torch")
    backend_or_skip(backend)
    vocab, hid = 7, 5
    model = specc.loads(
        """
model m {
    input chars : tokens
    output next = chars -> embedding(dim=4) -> rnn(hidden=5) -> lstm(hidden=5)
        -> gru(hidden=5) -> dense(units=vocab) -> softmax
}"""
    ).bound_model("m", {"vocab": vocab})
    net = build_network(model, backend, seed=2, dtype="float64")
    p = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    rng = np.random.default_rng(4)
    stream = rng.integers(0, vocab, size=(3, 3 * 6 + 1))

    def torch_window(ids, state):
        x = p["embedding.E"][torch.tensor(ids)]
        h_r, h_l, c_l, h_g = state
        outs = []
        for t in range(x.shape[1]):
            h_r = torch.tanh(x[:, t] @ p["rnn.W_xh"] + h_r @ p["rnn.W_hh"] + p["rnn.b"])
            i, f, g, o = (h_r @ p["lstm.W_xh"] + h_l @ p["lstm.W_hh"] + p["lstm.b"]).chunk(4, 1)
            c_l = torch.sigmoid(f) * c_l + torch.sigmoid(i) * torch.tanh(g)
            h_l = torch.sigmoid(o) * torch.tanh(c_l)
            xr, xz, xn = (h_l @ p["gru.W_xh"] + p["gru.b_xh"]).chunk(3, 1)
            hr, hz, hn = (h_g @ p["gru.W_hh"] + p["gru.b_hh"]).chunk(3, 1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            h_g = (1 - z) * torch.tanh(xn + r * hn) + z * h_g
            outs.append(h_g @ p["dense.W"] + p["dense.b"])
        return torch.stack(outs, 1), (h_r, h_l, c_l, h_g)

    state = tuple(torch.zeros(3, hid, dtype=torch.float64) for _ in range(4))
    with net.carrying(net.zero_state(3)):
        for start in range(0, 18, 6):
            x, y = stream[:, start : start + 6], stream[:, start + 1 : start + 7]
            loss = net.backward_flat({"chars": x}, y)
            logits, state = torch_window(x, state)
            state = tuple(s.detach() for s in state)  # the cut at the window's boundary
            want = torch.nn.functional.cross_entropy(
                logits.reshape(-1, vocab), torch.tensor(y).reshape(-1)
            )
            grads = torch.autograd.grad(want, list(p.values()))
            assert abs(loss - want.item()) < 1e-10
            for (key, ours), theirs in zip(net.grads.items(), grads, strict=True):
                np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-10, err_msg=key)


def test_a_carried_state_of_the_wrong_shape_or_names_is_refused():
    net = trained_stack("numpy")
    ids = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(
        ValueError, match=r"carried state r.h has shape \(5, 6\); this batch needs \(2, 6\)"
    ):
        net.step({"chars": ids}, net.zero_state(5))
    with pytest.raises(ValueError, match=r"has g\.h, l\.c, l\.h, r\.h; got r\.h"):
        net.step({"chars": ids}, {"r.h": np.zeros((2, 6))})


def test_a_reversed_layer_cannot_be_stepped():
    model = specc.loads(
        "model m { input x : tokens\n output y = x -> embedding(dim=3) -> "
        "lstm(hidden=4, reverse=true) -> dense(units=vocab) -> softmax }"
    ).bound_model("m", {"vocab": 5})
    net = build_network(model)
    with pytest.raises(ValueError, match="'lstm' of model 'm' is reversed"):
        net.step({"x": np.zeros((1, 1), dtype=np.int64)})


def program(tmp_path: Path, text: str = TASK):
    return specc.load(write_spec_and_data(tmp_path, text, {"corpus.txt": TEXT}))


def test_carried_batches_continue_one_another_row_by_row(tmp_path):
    spec = program(tmp_path)
    prepared = prepare(spec.task("t"), spec.base_dir)
    assert prepared.carried
    for index in range(prepared.steps_per_epoch - 1):
        a, b = prepared.batch(0, index), prepared.batch(0, index + 1)
        np.testing.assert_array_equal(b.inputs[:, 0], a.targets[:, -1])
    # the same windows each epoch, in the same order
    np.testing.assert_array_equal(prepared.batch(3, 2).inputs, prepared.batch(0, 2).inputs)
    windowed = prepare(spec.task("t").model_copy(update={"state": "window"}), spec.base_dir)
    assert not windowed.carried
    firsts = [windowed.batch(0, i).inputs[:, 0].tolist() for i in range(8)]
    assert firsts != [prepared.batch(0, i).inputs[:, 0].tolist() for i in range(8)]  # shuffled


def test_carried_evaluation_reads_each_held_out_row_as_one_stream(tmp_path):
    spec = program(tmp_path)
    task = spec.task("t")
    prepared = prepare(task, spec.base_dir)
    net = spec.build(task.model, prepared.sizes, seed=1, dtype="float64")
    got = evaluate(net, prepared, prepared.val)
    # the same rows run whole, from zero state, in one pass
    x = np.concatenate([b.inputs for b in prepared.val], axis=1)
    y = np.concatenate([b.targets for b in prepared.val], axis=1)
    logp = np.log(net.forward({"chars": x})["next"])
    want = -np.take_along_axis(logp, y[..., None], axis=-1).mean()
    assert abs(got["loss"] - want) < 1e-10
    windowed = evaluate(
        net, prepared.__class__(**{**prepared.__dict__, "carried": False}), prepared.val
    )
    assert abs(windowed["loss"] - want) > 1e-6  # windows from zero state score differently


@pytest.mark.parametrize("at_step", [7, 10])  # mid-epoch, between evaluations and on one
def test_resume_mid_stream_is_bit_exact(tmp_path, at_step):
    spec = program(tmp_path)
    full = run_task(spec, out_dir=tmp_path / "full")
    with pytest.raises(Interrupted):
        run_task(spec, out_dir=tmp_path / "part", reporter=interrupt_at(at_step))
    part = load_checkpoint(tmp_path / "part" / "t.npz")
    assert part.step == at_step and part.task.state == "carry"
    assert set(part.carried) == {"lstm.h", "lstm.c", "gru.h"}
    assert all(np.abs(v).max() > 0 for v in part.carried.values())
    resumed = run_task(spec, out_dir=tmp_path / "part", resume=tmp_path / "part" / "t.npz")
    for k in full.net.params:
        np.testing.assert_array_equal(full.net.params[k], resumed.net.params[k], err_msg=k)
    a, b = (
        load_checkpoint(tmp_path / "full" / "t.npz"),
        load_checkpoint(tmp_path / "part" / "t.npz"),
    )
    for k in a.carried:
        np.testing.assert_array_equal(a.carried[k], b.carried[k], err_msg=k)
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in full.metrics["history"]]
    again = [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.metrics["history"]]
    assert history == again


def test_carried_training_learns_differently_from_windows(tmp_path):
    spec = program(tmp_path)
    carried = run_task(spec, save=False)
    windowed = run_task(spec, spec.task("t").model_copy(update={"state": "window"}), save=False)
    assert carried.metrics["val"]["loss"] != windowed.metrics["val"]["loss"]


def test_stepped_sampling_is_windowed_sampling_with_the_whole_text_as_window(tmp_path):
    spec = program(tmp_path)
    task = spec.task("t")
    prepared = prepare(task, spec.base_dir)
    net = spec.build(task.model, prepared.sizes, seed=1, dtype="float64")
    net.params["dense.W"][...] *= 8  # scores that hang on the context more than at init
    args = (net, prepared.vocab, "the qu", 40, 0.9, 7)
    stepped = generate(*args, context="step")
    assert stepped == generate(*args, window=1000, context="window")
    assert stepped != generate(*args, window=3, context="window")


def test_generate_steps_a_carried_checkpoint_and_refuses_to_step_a_reversed_one(tmp_path, capsys):
    spec = program(tmp_path)
    run_task(spec, out_dir=tmp_path / "o")
    ckpt = str(tmp_path / "o" / "t.npz")
    assert main(["generate", ckpt, "-n", "200", "--prime", "the "]) == 0
    auto = capsys.readouterr().out
    assert main(["generate", ckpt, "-n", "200", "--prime", "the ", "--context", "step"]) == 0
    assert capsys.readouterr().out == auto
    assert main(["generate", ckpt, "-n", "200", "--prime", "the ", "--context", "window"]) == 0
    assert capsys.readouterr().out != auto

    # a model trained on windows steps too unless told (it scores better read carried)
    windowed = TASK.replace("state      = carry\n", "")
    run_task(program(tmp_path / "w", windowed), out_dir=tmp_path / "w" / "o")
    window_ckpt = str(tmp_path / "w" / "o" / "t.npz")
    for context in ("auto", "step", "window"):
        assert (
            main(["generate", window_ckpt, "-n", "200", "--prime", "the ", "--context", context])
            == 0
        )
    auto, step, window = capsys.readouterr().out.splitlines()
    assert auto == step != window

    reversed_spec = TASK.replace("gru(hidden=10)", "gru(hidden=10, reverse=true)")
    reversed_spec = reversed_spec.replace("state      = carry\n", "")
    run_task(program(tmp_path / "r", reversed_spec), out_dir=tmp_path / "r" / "o")
    rev = str(tmp_path / "r" / "o" / "t.npz")
    assert main(["generate", rev, "-n", "5", "--context", "step"]) == 1
    assert "cannot be stepped; use --context window" in capsys.readouterr().err
    assert main(["generate", rev, "-n", "5"]) == 0


def test_state_carry_with_a_reversed_layer_is_refused_where_the_layer_is_written(tmp_path):
    text = TASK.replace("gru(hidden=10)", "gru(hidden=10, reverse=true)")
    path = write_spec_and_data(tmp_path, text, {"corpus.txt": TEXT})
    with pytest.raises(specc.SpecError) as err:
        specc.load(path)
    first = err.value.render().splitlines()[0]
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "reverse=true" in t)
    assert first.startswith(f"{path}:{line}:") and "state = carry cannot carry the state" in first


@pytest.mark.parametrize(
    "setting, words",
    [
        ("state = carried", "'state' must be 'window' or 'carry'"),
        ("state = 3", "'state' must be 'window' or 'carry'"),
    ],
)
def test_state_values_are_checked(tmp_path, setting, words):
    path = write_spec_and_data(
        tmp_path, TASK.replace("state      = carry", setting), {"corpus.txt": TEXT}
    )
    with pytest.raises(specc.SpecError) as err:
        specc.load(path)
    assert words in err.value.render()


def test_state_is_a_next_char_setting_only(tmp_path):
    spec = """
model m { input x : tokens
  output y = x -> embedding(dim=3) -> rnn(hidden=4) -> dense(units=labels) -> softmax }
task t : tag {
    model = m
    data  = tagged("train.txt")
    state = carry
}
"""
    path = write_spec_and_data(tmp_path, spec, {"train.txt": "a/X b/Y\n\nc/X\n"})
    with pytest.raises(specc.SpecError) as err:
        specc.load(path)
    assert "'state' does not apply to tag tasks" in err.value.render()
