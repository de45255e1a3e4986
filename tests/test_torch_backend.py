"""The torch backend: the NumPy backend's numbers (float64), its checkpoints, its errors.

GPU checks skip where PyTorch sees no CUDA device.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import specc
from specc.backend import build_network
from specc.errors import SpecError
from specc.ir.spec import Adam
from specc.train.loop import train_step
from specc.train.optim import make_optimizer
from specc.train.prepare import prepare

from helpers import REPO, SPECS, checkout_env, specc_cli, write_spec_and_data

torch = pytest.importorskip("torch")

SHIPPED = sorted([*SPECS.glob("*.spec"), *(SPECS / "study").glob("*.spec")])
STEPS = 20
REL = 1e-9


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def train_steps(path: Path, task_name: str, backend: str, steps: int = STEPS):
    """``steps`` Adam steps of a task in float64 on ``backend``: (losses, network)."""
    program = specc.load(path)
    task = program.task(task_name).model_copy(update={"optimizer": Adam(lr=3e-3)})
    prepared = prepare(task, program.base_dir, program.model(task.model))
    model = program.bound_model(task.model, prepared.sizes)
    net = build_network(model, backend, seed=task.seed, dtype="float64")
    opt = make_optimizer(task.optimizer, net.flat_params.size, net.dtype)
    losses = []
    for step in range(steps):
        batch = prepared.batch(*divmod(step, prepared.steps_per_epoch))
        losses.append(train_step(net, opt, batch, task, step))
    return np.array(losses), net


def shipped_tasks() -> list:
    """Every task of every shipped spec; the char tagger's (the slowest by far, and
    its letters compared across backends in tests/test_spell.py) only in slow runs."""
    return [
        pytest.param(p, t.name, marks=pytest.mark.slow) if p.stem == "char_tagger" else (p, t.name)
        for p in SHIPPED
        for t in specc.load(p).ir.tasks
    ]


@pytest.mark.parametrize(
    "path, task", shipped_tasks(), ids=lambda v: v.stem if isinstance(v, Path) else v
)
def test_twenty_adam_steps_match_the_numpy_backend_in_float64(path: Path, task: str) -> None:
    """Losses, parameters and running statistics after 20 steps of every shipped task
    agree with the NumPy backend to 1e-9 relative (masks and reversed layers included:
    the taggers pad their sentences and run a reversed rnn)."""
    ours_loss, ours = train_steps(path, task, "torch")
    want_loss, want = train_steps(path, task, "numpy")
    assert rel_err(ours_loss, want_loss) < REL
    for key in want.params:
        assert rel_err(ours.params[key], want.params[key]) < REL, key
    for key in want.state:
        assert rel_err(ours.state[key], want.state[key]) < REL, key


DROPOUT_SPEC = """
model m {
    input  chars : tokens
    output next  = chars -> embedding(dim=8) -> dropout(p=0.3)
        -> rnn(hidden=12, activation=relu, reverse=true) -> batchnorm -> dropout(p=0.5)
        -> dense(units=vocab) -> softmax
}
task t : next_char {
    model = m
    data = text("corpus.txt")
    seq_len = 10
    batch = 4
    optimizer = adam(lr=1e-2)
    steps = 5
}
"""


def test_dropout_draws_the_numpy_backends_masks(tmp_path: Path) -> None:
    """With the same seed both backends draw the same dropout masks from the same
    generator, so even p > 0 trains to the same numbers."""
    path = write_spec_and_data(
        tmp_path, DROPOUT_SPEC, {"corpus.txt": "the quick brown fox jumps over " * 20}
    )
    ours_loss, ours = train_steps(path, "t", "torch", steps=5)
    want_loss, want = train_steps(path, "t", "numpy", steps=5)
    assert rel_err(ours_loss, want_loss) < REL
    assert rel_err(ours.flat_params, want.flat_params) < REL
    assert ours.rng.bit_generator.state == want.rng.bit_generator.state


def tagger_batch():
    program = specc.load(SPECS / "tagger.spec")
    task = program.task(None)
    prepared = prepare(task, program.base_dir)
    model = program.bound_model(task.model, prepared.sizes)
    batch = prepared.batch(0, 0)
    assert batch.mask is not None and batch.mask.min() == 0  # padded rows
    return model, batch


def test_watch_sees_the_reference_backends_hidden_state_gradients() -> None:
    """`backward(watch=...)` (what `specc diagnose` reads) gives each recurrent layer's
    dL/dh_t as the reference backend does: original time order, zero at padding."""
    model, batch = tagger_batch()
    seen: dict[str, dict[str, np.ndarray]] = {}
    for backend in ("torch", "reference"):
        net = build_network(model, backend, dtype="float64")
        trace = net.trace({"words": batch.inputs}, True, batch.mask)
        rng = np.random.default_rng(0)
        upstream = {"tags": rng.standard_normal(trace.values["tags"].shape)}
        got: dict[str, np.ndarray] = {}
        net.backward(trace, upstream, watch=lambda name, dh, got=got: got.__setitem__(name, dh))
        seen[backend] = {**got, "grads": net.flat_grads.copy()}
    assert set(seen["torch"]) == {"fwd", "bwd", "grads"}
    for key, want in seen["reference"].items():
        assert rel_err(seen["torch"][key], want) < REL, key
    assert np.all(seen["torch"]["bwd"][batch.mask == 0] == 0)


def test_fused_recurrent_layers_compute_what_the_unrolled_ones_do() -> None:
    """forward (torch's own RNN op for unmasked tanh/relu layers) equals the
    step-by-step trace."""
    program = specc.load(SPECS / "char_rnn.spec")
    net = program.build(sizes={"vocab": 20}, dtype="float64", backend="torch")
    ids = np.random.default_rng(1).integers(0, 20, size=(3, 9))
    fused = net.forward({"chars": ids}, train=False)["next"]
    unrolled = net.trace({"chars": ids}, train=False).values["next"]
    assert rel_err(fused, unrolled) < 1e-12


GATED = {
    # every gated cell forwards, reversed, and as a return=last layer over both
    "lstm": ("lstm(hidden=6, forget_bias=0.0)", "gru(hidden=5, reverse=true)",
             "lstm(hidden=4, return=last)"),
    "gru": ("gru(hidden=6)", "lstm(hidden=5, reverse=true)",
            "gru(hidden=4, reverse=true, return=last)"),
}  # fmt: skip


def gated_pair(cells: tuple[str, str, str]):
    """The same small model of gated layers on the torch and the NumPy backend."""
    first, second, last = cells
    text = f"""
model m {{
    input  x : tokens
    e = x -> embedding(dim=5)
    a = e -> {first}
    b = e -> {second}
    output y = (a, b) -> concat -> {last} -> dense(units=3)
}}
"""
    program = specc.loads(text)
    return [
        program.build("m", sizes={"vocab": 9}, seed=3, dtype="float64", backend=backend)
        for backend in ("torch", "numpy")
    ]


def padded_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (3, 7) and a mask whose rows end at different steps (one full row)."""
    rng = np.random.default_rng(seed)
    lengths = np.array([7, 3, 5])
    return rng.integers(0, 9, (3, 7)), (np.arange(7) < lengths[:, None]).astype(np.float64)


@pytest.mark.parametrize("cell", sorted(GATED))
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "full"])
def test_gated_layers_watch_and_differentiate_as_the_numpy_backend(cell: str, padded: bool) -> None:
    """`backward(watch=...)` through lstm and gru layers (forwards, reversed, return=last)
    gives the NumPy backend's dL/dh_t, zero at padding, and its parameter gradients."""
    ids, mask = padded_batch()
    mask_or_none = mask if padded else None
    seen: list[dict[str, np.ndarray]] = []
    for net in gated_pair(GATED[cell]):
        trace = net.trace({"x": ids}, True, mask_or_none)
        upstream = {"y": np.random.default_rng(2).standard_normal(trace.values["y"].shape)}
        got: dict[str, np.ndarray] = {}
        net.backward(trace, upstream, watch=lambda name, dh, got=got: got.__setitem__(name, dh))
        seen.append({**got, "y": trace.values["y"].copy(), "grads": net.flat_grads.copy()})
    ours, want = seen
    assert set(ours) == set(want) == {"a", "b", cell, "y", "grads"}
    for key in want:
        assert rel_err(ours[key], want[key]) < REL, key
    if padded:
        for key in ("a", "b"):
            assert np.all(ours[key][mask == 0] == 0), key


@pytest.mark.parametrize("cell", sorted(GATED))
def test_fused_gated_layers_compute_what_the_unrolled_ones_do(cell: str) -> None:
    """Unmasked, forward and the training step run lstm and gru as torch.nn.LSTM/GRU;
    they give the step-by-step trace's outputs and the NumPy backend's loss and
    gradients, reversed and return=last layers included."""
    ours, want = gated_pair(GATED[cell])
    ids, _ = padded_batch()
    fused = ours.forward({"x": ids})["y"]
    unrolled = ours.trace({"x": ids}, train=False).values["y"]
    assert rel_err(fused, unrolled) < 1e-12
    targets = np.random.default_rng(4).standard_normal(fused.shape)
    loss, grads = ours.loss_and_grads({"x": ids}, targets, loss="mse")
    want_loss, want_grads = want.loss_and_grads({"x": ids}, targets, loss="mse")
    assert abs(loss - want_loss) < REL * abs(want_loss)
    for key, grad in want_grads.items():
        assert rel_err(grads[key], grad) < REL, key


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = specc_cli(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("first, then", [("torch", "numpy"), ("numpy", "torch")])
def test_a_checkpoint_resumes_on_the_other_backend(tmp_path: Path, first: str, then: str) -> None:
    """3 steps on one backend, resumed to 6 on the other, end where 6 steps on the
    NumPy backend end; the other commands read a torch checkpoint. (The tagger without
    its cosine schedule, which spans each run's own length: a 3-step run's schedule is
    not the first half of a 6-step run's.)"""
    text = (SPECS / "tagger.spec").read_text()
    text = "\n".join(line for line in text.splitlines() if "schedule" not in line)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sample.conllu").write_bytes(
        (SPECS / "data" / "sample.conllu").read_bytes()
    )
    (tmp_path / "tagger.spec").write_text(text)
    spec = str(tmp_path / "tagger.spec")
    common = ("--dtype", "float64")
    run_cli("run", spec, "--backend", first, "--steps", "3", "--out", str(tmp_path / "a"), *common)
    ckpt = tmp_path / "a" / "ud_english.npz"
    run_cli("run", spec, "--backend", then, "--steps", "6", "--resume", str(ckpt),
            "--out", str(tmp_path / "b"), *common)  # fmt: skip
    run_cli("run", spec, "--steps", "6", "--out", str(tmp_path / "c"), *common)
    got, want = (np.load(tmp_path / d / "ud_english.npz") for d in ("b", "c"))
    for key in want.files:
        if not key.startswith("__") or key.startswith("__opt__"):
            assert rel_err(got[key], want[key]) < REL, key
    run_cli("tag", str(tmp_path / "b" / "ud_english.npz"), "the cat sat")
    run_cli("explain", str(tmp_path / "b" / "ud_english.npz"))


def test_float64_training_writes_float64_checkpoints(tmp_path: Path) -> None:
    """--dtype float64 computes in float64 on the NumPy backend too (not only torch)."""
    run_cli("run", str(SPECS / "parity.spec"), "--steps", "2", "--dtype", "float64",
            "--out", str(tmp_path))  # fmt: skip
    assert np.load(tmp_path / "parity_8.npz")["rnn.W_hh"].dtype == np.float64


def test_without_torch_the_torch_backend_says_what_to_install(tmp_path: Path) -> None:
    hide = (
        "import sys; sys.modules['torch'] = None\n"
        "from specc.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide, "run", str(SPECS / "parity.spec"), "--backend", "torch",
         "--steps", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, env=checkout_env(), cwd=REPO, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        'error: the torch backend needs PyTorch: pip install "specc[torch]"'
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--device", "cuda"), "--device cuda needs --backend torch"),
        (("--backend", "torch", "--device", "tpu"), "unknown device 'tpu'"),
        (("--procs", "2"), "--procs 2 needs --backend torch"),
        (("--backend", "torch", "--procs", "0"), "--procs must be a positive whole number"),
    ],
)
def test_bad_device_options_are_one_line_errors(tmp_path, args, message) -> None:
    result = specc_cli("run", str(SPECS / "parity.spec"), "--steps", "1",
                       "--out", str(tmp_path), *args)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_one_line_error(tmp_path: Path) -> None:
    result = specc_cli("run", str(SPECS / "parity.spec"), "--steps", "1", "--backend", "torch",
                       "--device", "cuda", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: --device cuda: this machine's PyTorch sees no CUDA GPU"
    ]


def test_the_torch_backend_cannot_be_built_for_an_unknown_op_silently() -> None:
    """A kernel missing from the table is refused by name, as on every backend."""
    from specc.backend import network_class

    cls = network_class("torch")

    class Partial(cls):
        backend = "partial"
        KERNELS: ClassVar = {k: v for k, v in cls.KERNELS.items() if k != "batchnorm"}

    model = specc.load(SPECS / "char_rnn.spec").bound_model("char_rnn", {"vocab": 5})
    with pytest.raises(SpecError, match="the partial backend cannot run op 'batchnorm'"):
        Partial(model)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_char_models_loss_curve_on_the_gpu_tracks_the_cpu() -> None:
    """float32, 50 steps of the default char model: each loss within 1e-3 relative."""
    program = specc.load(SPECS / "char_rnn.spec")
    curves = {}
    for device in ("cpu", "cuda"):
        result = program.train(steps=50, backend="torch", device=device, save=False)
        curves[device] = np.array([h["train_loss"] for h in result.history] + [
            result.metrics["train"]["loss"]])  # fmt: skip
    assert rel_err(curves["cuda"], curves["cpu"]) < 1e-3


def test_generate_and_tag_run_a_checkpoint_on_either_backend(tmp_path: Path) -> None:
    """`generate` and `tag` take --backend: the torch backend samples the same text and
    tags the same way as the NumPy backend from one checkpoint."""
    run_cli("run", str(SPECS / "char_rnn.spec"), "--steps", "5", "--out", str(tmp_path))
    text = tmp_path / "python_docs.npz"
    common = ("-n", "40", "--prime", "The ", "--seed", "3")
    numpy_text = run_cli("generate", str(text), *common).stdout
    torch_text = run_cli("generate", str(text), *common, "--backend", "torch").stdout
    assert numpy_text == torch_text and numpy_text.strip()
    run_cli("run", str(SPECS / "pos_tagger.spec"), "--steps", "5", "--out", str(tmp_path))
    tags = tmp_path / "corpus_pos.npz"
    numpy_tags = run_cli("tag", str(tags), "the cat sat .").stdout
    assert run_cli("tag", str(tags), "the cat sat .", "--backend", "torch").stdout == numpy_tags
    bad = specc_cli("tag", str(tags), "the cat", "--device", "cuda")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: --device cuda needs --backend torch"
