"""ONNX export, numerically: onnxruntime runs the exported graph and must give
specc's own inference outputs (the numpy backend, evaluation mode) for every op
and option, every shipped spec, padded batches of mixed lengths, in float32
(RNN operator, and Scan) and float64 (Scan).

Needs the onnx extra; skipped where it is not installed.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import specc
from specc.ir.ops import OP_CLASSES, spelling_feed

from helpers import SPECS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from specc.export import ExportError  # noqa: E402
from specc.export.onnx import EMITTERS, OnnxOptions, to_onnx  # noqa: E402
from specc.export.onnx.emitters import emitter_for  # noqa: E402

#: The largest absolute difference allowed from specc's outputs, per dtype.
TOL = {"float32": 1e-5, "float64": 1e-10}
#: (dtype, recurrence): the RNN operator, a Scan in float32, and float64 (always a Scan).
CONFIGS = [("float32", "rnn"), ("float32", "scan"), ("float64", "auto")]
#: Mixed lengths: a full row, a one-token row, and two in between.
LENGTHS = np.array([7, 1, 4, 6])
SIZES = {"vocab": 9, "labels": 4, "chars": 6}

#: Every op and option: each rnn activation (leaky_relu with a slope), reversed or
#: not, return=last; batchnorm with and without affine, on (B, T, N) and (B, N);
#: dense with and without bias, on sequences and vectors; add of three; a = b; lstm and
#: gru forward and reversed, stacked, return=last, their states compared directly.
EVERY_OP = """
model acts {
    input x : sequence[3]
    a = x -> rnn(hidden=4, activation=tanh)
    b = x -> rnn(hidden=4, activation=sigmoid, reverse=true)
    c = x -> rnn(hidden=4, activation=relu, init=identity)
    d = x -> rnn(hidden=4, activation=leaky_relu(slope=0.3), reverse=true)
    output y = (a, b, c, d) -> concat -> batchnorm -> leaky_relu(slope=0.2) -> gelu
        -> dense(units=5) -> softmax
}
model lasts {
    input x : sequence[3]
    f = x -> rnn(hidden=4, activation=relu, return=last)
    r = x -> rnn(hidden=4, activation=leaky_relu, reverse=true, return=last)
    s = x -> rnn(hidden=4, activation=sigmoid, return=last)
    output y = (f, r, s) -> add -> batchnorm(affine=false) -> tanh -> dense(units=2, bias=false)
        -> sigmoid
}
model words {
    input w : tokens
    e = w -> embedding(dim=5)
    o = w -> one_hot
    h = (e, o) -> concat -> dropout(p=0.5) -> relu
    k = h
    output y = k -> rnn(hidden=6) -> batchnorm(affine=false) -> dense(units=labels) -> softmax
}
model gated {
    input x : sequence[3]
    a = x -> lstm(hidden=4)
    b = x -> lstm(hidden=3, reverse=true, forget_bias=-1)
    c = x -> gru(hidden=4)
    d = x -> gru(hidden=2, reverse=true)
    e = a -> gru(hidden=3, reverse=true)
    output y = (a, b, c, d, e) -> concat
}
model gated_lasts {
    input x : sequence[3]
    f = x -> lstm(hidden=4, return=last)
    r = x -> lstm(hidden=4, reverse=true, return=last)
    g = x -> gru(hidden=4, return=last)
    s = x -> gru(hidden=4, reverse=true, return=last)
    output y = (f, r, g, s) -> concat
}
model letters {
    input w : tokens
    c = w -> spell -> embedding(dim=4)
    f = c -> lstm(hidden=3, return=last)
    r = c -> gru(hidden=3, reverse=true, return=last)
    s = c -> rnn(hidden=2, reverse=true) -> rnn(hidden=2, activation=relu, return=last)
    g = c -> gru(hidden=2) -> lstm(hidden=2, reverse=true, return=last)
    e = w -> embedding(dim=3)
    output y = (e, f, r, s, g) -> concat -> lstm(hidden=3)
}
model flat {
    input v : vector[3]
    output y = v -> dense(units=4) -> batchnorm -> relu -> dense(units=labels) -> softmax
}
"""


def session(proto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the test machine's cores are shared
    return ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def perturbed(net, seed: int = 1):
    """Every parameter moved off its initial value (biases start at zero, γ at one)
    and running statistics that are not 0 and 1, so a dropped or swapped term shows."""
    rng = np.random.default_rng(seed)
    for value in net.params.values():
        value += 0.3 * rng.standard_normal(value.shape).astype(value.dtype)
    for key, value in net.state.items():
        fresh = rng.standard_normal(value.shape)
        value[...] = np.abs(fresh) + 0.5 if key.endswith("running_var") else fresh
    return net


def inputs_for(model, dtype: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    b, t = len(LENGTHS), int(LENGTHS.max())
    feeds = {}
    for inp in model.inputs:
        if inp.type == "tokens":
            feeds[inp.name] = rng.integers(0, model.sizes["vocab"], (b, t)).astype(np.int64)
            if any(n.op == "spell" for n in model.nodes):  # letters: words of 0 to 5
                ids = rng.integers(1, model.sizes["chars"], (b, t, 5))
                ids[0, 1] = ids[2, 3] = ids[3, 0]  # a word three times
                word = rng.integers(0, 6, (b, t, 1))
                feeds[spelling_feed(inp.name)] = np.where(np.arange(5) < word, ids, 0)
        elif inp.type == "sequence":
            feeds[inp.name] = rng.standard_normal((b, t, inp.size)).astype(dtype)
        else:
            feeds[inp.name] = rng.standard_normal((b, inp.size)).astype(dtype)
    return feeds


def assert_matches_specc(net, dtype: str, recurrence: str, lengths: bool) -> None:
    """onnxruntime's outputs equal specc's to TOL[dtype], padded or not."""
    proto = to_onnx(net, OnnxOptions(dtype=dtype, lengths=lengths, recurrence=recurrence))
    ref = net if dtype == "float32" else net.astype(dtype)
    feeds = inputs_for(net.model, dtype)
    mask = None
    if lengths:
        mask = (np.arange(LENGTHS.max())[None] < LENGTHS[:, None]).astype(dtype)
        feeds["lengths"] = LENGTHS.astype(np.int64)
    want = ref.forward({k: v for k, v in feeds.items() if k != "lengths"}, mask=mask)
    outs = session(proto).run(list(net.model.outputs), feeds)
    got = dict(zip(net.model.outputs, outs, strict=True))
    for name in net.model.outputs:
        assert got[name].dtype == np.dtype(dtype)
        assert got[name].shape == want[name].shape
        err = float(np.abs(got[name] - want[name]).max())
        assert err <= TOL[dtype], (net.model.name, name, dtype, recurrence, lengths, err)


@pytest.mark.parametrize(("dtype", "recurrence"), CONFIGS)
@pytest.mark.parametrize(
    "model", ["acts", "lasts", "words", "gated", "gated_lasts", "letters", "flat"]
)
def test_every_op_and_option_matches_specc(model, dtype, recurrence) -> None:
    net = perturbed(specc.loads(EVERY_OP).build(model, SIZES, seed=3))
    for lengths in [False] if model == "flat" else [False, True]:
        assert_matches_specc(net, dtype, recurrence, lengths)


def shipped_models() -> list[tuple[Path, str]]:
    specs = sorted(SPECS.glob("*.spec")) + sorted((SPECS / "study").glob("*.spec"))
    return [(path, name) for path in specs for name in specc.load(path).models]


@pytest.mark.parametrize(
    ("path", "model"), shipped_models(), ids=lambda v: v.stem if isinstance(v, Path) else v
)
def test_every_shipped_spec_matches_specc(path, model) -> None:
    net = specc.load(path).build(model, SIZES, seed=0)
    padded = net.model.inputs[0].type == "tokens"  # tag-like models take lengths
    assert_matches_specc(net, "float32", "auto", lengths=padded)
    assert_matches_specc(net, "float64", "auto", lengths=padded)


def test_every_op_of_the_registry_is_exported_or_refused_by_name() -> None:
    """An op gets an emitter, or export refuses it by its name (never a KeyError or a
    silently wrong graph); the models above use every emitter there is."""
    assert set(EMITTERS) <= set(OP_CLASSES), "an emitter for an op the language lacks"
    for op in OP_CLASSES:
        if op in EMITTERS:
            continue
        with pytest.raises(ExportError, match=f"cannot export op '{op}'"):
            emitter_for(SimpleNamespace(op=op, name="n"), "m", EMITTERS)  # type: ignore[arg-type]
    used = {node.op for model in specc.loads(EVERY_OP).ir.models for node in model.nodes}
    assert used >= set(EMITTERS), f"emitters no test runs: {set(EMITTERS) - used}"


def test_a_model_with_an_op_lacking_an_emitter_is_refused_by_name() -> None:
    net = specc.load(SPECS / "parity.spec").build("parity_rnn", {"vocab": 2, "labels": 2})
    partial = {op: emit for op, emit in EMITTERS.items() if op != "rnn"}
    with pytest.raises(ExportError, match="cannot export op 'rnn' to ONNX \\(node 'rnn'"):
        to_onnx(net, emitters=partial)


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_versions_are_stated_and_the_checker_passes(opset) -> None:
    net = specc.load(SPECS / "tagger.spec").build("tagger", SIZES)
    proto = to_onnx(net, OnnxOptions(opset=opset, lengths=True))
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", opset)]
    assert proto.ir_version == {13: 7, 17: 8, 21: 10}[opset]  # not onnx's newest
    onnx.checker.check_model(proto, full_check=True)
    feeds = inputs_for(net.model, "float32") | {"lengths": LENGTHS}
    assert session(proto).run(None, feeds)[0].shape == (4, 7, 4)


def test_batch_and_time_axes_are_dynamic() -> None:
    net = specc.load(SPECS / "char_rnn.spec").build("char_rnn", SIZES)
    sess = session(to_onnx(net))
    assert [d for d in sess.get_inputs()[0].shape] == ["batch", "time"]
    for b, t in [(1, 1), (5, 3), (2, 40)]:
        ids = np.random.default_rng(b).integers(0, 9, (b, t))
        got = sess.run(None, {"chars": ids})[0]
        np.testing.assert_allclose(got, net.forward({"chars": ids})["next"], atol=1e-5, rtol=0)


def test_an_export_is_deterministic() -> None:
    net = specc.load(SPECS / "pos_tagger.spec").build("tagger", SIZES)
    options = OnnxOptions(lengths=True)
    assert to_onnx(net, options).SerializeToString() == to_onnx(net, options).SerializeToString()


def test_the_rnn_operator_is_refused_in_float64_by_name() -> None:
    net = specc.load(SPECS / "adding.spec").build("adder")
    with pytest.raises(ExportError, match="RNN operator in float32 only"):
        to_onnx(net, OnnxOptions(dtype="float64", recurrence="rnn"))
    ops = {n.op_type for n in to_onnx(net).graph.node}
    assert "RNN" in ops and "Scan" not in ops  # float32 uses onnxruntime's RNN
    ops = {n.op_type for n in to_onnx(net, OnnxOptions(dtype="float64")).graph.node}
    assert "Scan" in ops and "RNN" not in ops


@pytest.mark.parametrize(("dtype", "recurrence"), CONFIGS)
@pytest.mark.parametrize("model", ["gated", "gated_lasts"])
def test_a_padded_row_of_a_gated_layer_is_the_row_alone(model, dtype, recurrence) -> None:
    """Without specc as the judge: each row of a padded batch (garbage in its padding)
    gives what it gives alone, unpadded, so a reversed lstm or gru starts at the row's
    last real token, a forward one returns its state there, and padded steps are zero."""
    net = perturbed(specc.loads(EVERY_OP).build(model, SIZES, seed=5))
    sess = session(to_onnx(net, OnnxOptions(dtype=dtype, lengths=True, recurrence=recurrence)))
    x = inputs_for(net.model, dtype, seed=2)["x"]
    (batch,) = sess.run(None, {"x": x, "lengths": LENGTHS})
    for row, n in enumerate(LENGTHS):
        (alone,) = sess.run(None, {"x": x[row : row + 1, :n], "lengths": np.array([n])})
        got = batch[row, :n] if batch.ndim == 3 else batch[row]
        np.testing.assert_allclose(got, alone[0], atol=TOL[dtype], rtol=0)
        if batch.ndim == 3:
            assert not batch[row, n:].any()  # a padded step writes zero state


def test_lstm_and_gru_use_onnxruntimes_operators_in_float32_and_a_scan_in_float64() -> None:
    net = specc.loads(EVERY_OP).build("gated", SIZES)
    ops = {n.op_type for n in to_onnx(net, OnnxOptions(lengths=True)).graph.node}
    assert {"LSTM", "GRU"} <= ops and "Scan" not in ops
    ops = {n.op_type for n in to_onnx(net, OnnxOptions(dtype="float64")).graph.node}
    assert "Scan" in ops and not {"LSTM", "GRU"} & ops
    with pytest.raises(ExportError, match="RNN operator in float32 only"):
        to_onnx(net, OnnxOptions(dtype="float64", recurrence="rnn"))


#: Forward layers of every kind, stacked, one returning its last state: what a graph
#: exported with its state (OnnxOptions.state) carries from call to call.
CARRIED = """
model carried {
    input x : sequence[3]
    a = x -> rnn(hidden=4, activation=leaky_relu(slope=0.3))
    b = a -> lstm(hidden=3)
    c = (a, b) -> concat -> gru(hidden=4)
    output y = c -> batchnorm -> dense(units=5) -> softmax
    output z = b -> lstm(hidden=2, return=last)
}
"""


@pytest.mark.parametrize(("dtype", "recurrence"), CONFIGS)
def test_a_graph_exported_with_its_state_continues_where_the_last_call_ended(dtype, recurrence):
    """Windows of 3, 1 and 4 steps, each call fed the states the last one returned,
    give specc's outputs and states for the whole sequence run in one piece."""
    net = perturbed(specc.loads(CARRIED).build("carried", SIZES, seed=2))
    proto = to_onnx(net, OnnxOptions(dtype=dtype, recurrence=recurrence, state=True))
    names = ["a.h", "b.h", "b.c", "c.h", "z.h", "z.c"]
    assert [i.name for i in proto.graph.input] == ["x"] + [f"{n}0" for n in names]
    assert [o.name for o in proto.graph.output] == ["y", "z"] + [f"{n}n" for n in names]
    ref = net if dtype == "float32" else net.astype(dtype)
    x = np.random.default_rng(5).standard_normal((2, 8, 3)).astype(dtype)
    start = {k: (0.5 * np.random.default_rng(6).standard_normal(v.shape)).astype(dtype)
             for k, v in ref.zero_state(2).items()}  # fmt: skip
    want, want_state = ref.step({"x": x}, start)
    sess, state, ys = session(proto), dict(start), []
    for a, b in ((0, 3), (3, 4), (4, 8)):
        feeds = {"x": x[:, a:b]} | {f"{k}0": v for k, v in state.items()}
        out = dict(zip([o.name for o in proto.graph.output], sess.run(None, feeds), strict=True))
        ys.append(out["y"])
        state = {k: out[f"{k}n"] for k in names}
    assert float(np.abs(np.concatenate(ys, axis=1) - want["y"]).max()) <= TOL[dtype]
    assert float(np.abs(out["z"] - want["z"]).max()) <= TOL[dtype]
    for k in names:
        assert float(np.abs(state[k] - want_state[k]).max()) <= TOL[dtype], k


def test_a_graph_with_its_state_refuses_reversed_layers_and_lengths():
    gated = specc.loads(EVERY_OP).build("gated", SIZES)
    with pytest.raises(ExportError, match="'b' of model 'gated' is reversed"):
        to_onnx(gated, OnnxOptions(state=True))
    net = specc.loads(CARRIED).build("carried", SIZES)
    with pytest.raises(ExportError, match="export it without --lengths"):
        to_onnx(net, OnnxOptions(state=True, lengths=True))
