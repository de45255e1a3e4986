"""The fast backend against the reference backend, number for number (float64, 1e-10).

Random graphs mix every op and option: rnn, lstm and gru layers, each rnn
activation and every init, reverse,
return=last, batchnorm with and without its affine parameters, dropout, branches
joined by concat and add, token, sequence and vector inputs, and padded batches.
Both backends start from the same weights (the ops initialise them); each
comparison runs the fast backend's training path (fused, in place, pooled) and
its plain path.
"""

from __future__ import annotations

import random
from typing import ClassVar

import numpy as np
import pytest

import specc
from specc.backend import BACKENDS, build_network, network_class
from specc.backend.graph import Network
from specc.errors import SpecError
from specc.ir.ops import OP_CLASSES

TOL = 1e-10
ACTIVATIONS = ["tanh", "sigmoid", "relu", "leaky_relu(slope=0.2)"]
INITS = ["default", "xavier", "orthogonal", "identity"]


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-based relative difference, so tiny components cannot fail a check."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def _rnn(rng: random.Random, hidden: int, last: bool = False) -> str:
    """A recurrent layer: an rnn half the time, else an lstm or a gru."""
    op = rng.choice(["rnn", "rnn", "lstm", "gru"])
    args = [f"hidden={hidden}"]
    if op == "rnn":
        args += [f"activation={rng.choice(ACTIVATIONS)}", f"init={rng.choice(INITS)}"]
    else:
        args.append(f"init={rng.choice(INITS[:3])}")
    if op == "lstm" and rng.random() < 0.5:
        args.append(f"forget_bias={rng.choice(['0.0', '2.0'])}")
    if rng.random() < 0.5:
        args.append("reverse=true")
    if last:
        args.append("return=last")
    return f"{op}({', '.join(args)})"


def _elementwise(rng: random.Random) -> str:
    return rng.choice(
        ["relu", "tanh", "sigmoid", "gelu", "leaky_relu(slope=0.1)", "dropout(p=0.3)",
         "batchnorm", "batchnorm(affine=false, momentum=0.3)"]
    )  # fmt: skip


def random_model(seed: int) -> tuple[str, str]:
    """(spec text, the kind of output: 'tokens' (B, T, labels) or 'vector' (B, 3))."""
    rng = random.Random(seed)
    source = rng.choice(["tokens", "tokens", "sequence"])
    if source == "tokens":
        head = "input x : tokens\n    e = x -> " + rng.choice(["embedding(dim=5)", "one_hot"])
    else:
        head = "input x : sequence[4]\n    e = x -> dense(units=5)"
    vector = rng.random() < 0.25
    a = f"a = e -> {_rnn(rng, 6)} -> {_elementwise(rng)}"
    b = f"b = e -> {_rnn(rng, 6)}"
    join = rng.choice(["concat", "add"])
    if vector:
        tail = f"output y = (a, b) -> {join} -> {_rnn(rng, 4, last=True)} -> dense(units=3)"
    else:
        mid = _elementwise(rng)
        tail = f"output y = (a, b) -> {join} -> {mid} -> dense(units=labels) -> softmax"
    return f"model m {{\n    {head}\n    {a}\n    {b}\n    {tail}\n}}\n", (
        "vector" if vector else "tokens"
    )


def _batch(np_rng: np.random.Generator, text: str, batch: int = 3, steps: int = 7):
    if "sequence[4]" in text:
        x = np_rng.standard_normal((batch, steps, 4))
    else:
        x = np_rng.integers(0, 9, (batch, steps))
    lengths = np_rng.integers(1, steps + 1, batch)
    lengths[0] = steps  # one full row
    mask = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.float64)
    return x, mask


def pair(text: str, seed: int = 3) -> tuple[Network, Network]:
    program = specc.loads(text)
    sizes = {"vocab": 9, "labels": 4}
    fast = program.build("m", sizes=sizes, seed=seed, dtype="float64")
    ref = program.build("m", sizes=sizes, seed=seed, dtype="float64", backend="reference")
    return fast, ref


def assert_close(a: dict, b: dict, what: str) -> None:
    """Each array within TOL of its size, or of a ten-thousandth of all the arrays' size
    when it is (about) zero: a batchnorm's beta feeding another batchnorm has a
    gradient of exactly zero, which both backends round to different noise."""
    assert a.keys() == b.keys()
    total = sum(np.linalg.norm(v) for v in a.values())
    for k in a:
        diff = np.linalg.norm(np.asarray(a[k]) - np.asarray(b[k]))
        scale = max(np.linalg.norm(a[k]) + np.linalg.norm(b[k]), 1e-4 * total, 1e-300)
        assert diff / scale < TOL, f"{what} {k}: {diff / scale:.2e}"


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_fast_backend_matches_reference_on_random_graphs(seed: int, masked: bool) -> None:
    text, kind = random_model(seed)
    fast, ref = pair(text)
    assert_close(fast.params, ref.params, "initial")
    np_rng = np.random.default_rng(seed)
    x, mask = _batch(np_rng, text)
    mask = mask if masked and kind == "tokens" else None
    if kind == "tokens":
        targets = np_rng.integers(0, 4, x.shape[:2])
    else:
        targets = np_rng.standard_normal((x.shape[0], 3))
    inputs = {"x": x}

    # the training step (the fast backend's fused, in-place path)
    loss_f, grads_f = fast.loss_and_grads(inputs, targets, mask)
    loss_r, grads_r = ref.loss_and_grads(inputs, targets, mask)
    assert abs(loss_f - loss_r) <= TOL * abs(loss_r), (loss_f, loss_r)
    assert_close(grads_f, grads_r, "gradient")
    assert_close(fast.state, ref.state, "running statistics")

    # inference, then a chosen upstream gradient through the plain path
    assert_close(fast.forward(inputs, mask=mask), ref.forward(inputs, mask=mask), "output")
    outs = fast.forward(inputs, train=False, mask=mask)
    upstream = {k: np_rng.standard_normal(v.shape) for k, v in outs.items()}
    fast.rng, ref.rng = np.random.default_rng(7), np.random.default_rng(7)  # same dropout
    assert_close(fast.vjp(inputs, upstream, mask), ref.vjp(inputs, upstream, mask), "vjp output")
    assert_close(fast.grads, ref.grads, "vjp gradient")


@pytest.mark.parametrize("seed", range(8))
def test_both_backends_watch_the_same_hidden_state_gradients(seed: int) -> None:
    text, kind = random_model(seed)
    fast, ref = pair(text)
    np_rng = np.random.default_rng(seed)
    x, mask = _batch(np_rng, text)
    mask = mask if kind == "tokens" else None
    seen: dict[str, dict[str, np.ndarray]] = {"fast": {}, "ref": {}}
    for label, net in (("fast", fast), ("ref", ref)):
        net.rng = np.random.default_rng(1)
        trace = net.trace({"x": x}, mask=mask)
        out = net.model.outputs[0]
        upstream = {out: np.random.default_rng(2).standard_normal(trace.values[out].shape)}
        net.backward(
            trace, upstream, watch=lambda name, dh, got=seen[label]: got.update({name: dh})
        )
    rnns = [n.name for n in fast.model.nodes if n.recurrent]
    assert sorted(seen["fast"]) == sorted(rnns)
    assert_close(seen["fast"], seen["ref"], "dL/dh")


def test_every_backend_covers_every_op() -> None:
    """Each backend has a kernel for every op of the language (or refuses it by name,
    which the next test checks), and its recurrent kernels can be watched."""
    for backend in BACKENDS:
        cls = network_class(backend)
        assert set(cls.KERNELS) == set(OP_CLASSES), backend
        assert set(cls.LOSSES) == {"cross_entropy", "mse"}, backend
        for op, op_cls in OP_CLASSES.items():
            if op_cls.recurrent:
                assert hasattr(cls.KERNELS[op], "watch"), (backend, op)


def test_a_backend_without_a_kernel_refuses_the_op_by_name() -> None:
    class Partial(network_class("reference")):
        backend = "partial"
        KERNELS: ClassVar = {
            k: v for k, v in network_class("reference").KERNELS.items() if k != "rnn"
        }

    model = specc.load("specs/char_rnn.spec").bound_model("char_rnn", {"vocab": 5})
    with pytest.raises(SpecError, match="the partial backend cannot run op 'rnn'"):
        Partial(model)
    assert build_network(model, "reference").param_count > 0


def test_unknown_backend_is_an_option_error() -> None:
    with pytest.raises(SpecError, match="unknown backend 'jax'"):
        network_class("jax")


def test_training_on_the_reference_backend_follows_the_fast_one(tmp_path) -> None:
    """A few training steps of a shipped spec give the same loss on both backends
    (float32 training: equal to rounding)."""
    program = specc.load("specs/adding.spec")
    runs = {
        backend: program.train(steps=3, backend=backend, out_dir=tmp_path / backend)
        for backend in ("numpy", "reference")
    }
    fast, ref = (runs[b].metrics for b in ("numpy", "reference"))
    assert fast["val"]["loss"] == pytest.approx(ref["val"]["loss"], rel=1e-4)


def test_specc_run_takes_the_reference_backend(tmp_path, capsys) -> None:
    """`specc run --backend reference` trains, saves a checkpoint the fast backend
    reads, and the numbers follow the default backend's."""
    from specc.cli import main
    from specc.train.checkpoint import load_checkpoint

    spec = "specs/adding.spec"
    assert (
        main(["run", spec, "--steps", "3", "--backend", "reference", "--out", str(tmp_path / "r")])
        == 0
    )
    assert main(["run", spec, "--steps", "3", "--out", str(tmp_path / "n")]) == 0
    assert "held-out" in capsys.readouterr().out
    ref, fast = (load_checkpoint(tmp_path / d / "adding_150.npz") for d in ("r", "n"))
    for key, value in fast.params.items():
        np.testing.assert_allclose(ref.params[key], value, rtol=1e-4, atol=1e-6, err_msg=key)
