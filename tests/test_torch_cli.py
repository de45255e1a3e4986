"""`diagnose` and `explain` with --backend torch: the same measurements, the same refusals.

diagnose measures on whichever backend --backend names, in float64, so its
numbers are the NumPy backend's to rounding; explain's figures come from the
spec, and --backend makes it check that the backend can run the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specc.cli import main

from helpers import BATCHNORM_RNN, FOX_TEXT, REPO, SPECS, checkout_env, write_spec_and_data

torch = pytest.importorskip("torch")

REL = 1e-9


@pytest.fixture
def torch_passes(monkeypatch) -> list[bool]:
    """One entry per forward pass the torch backend runs: proof that --backend reached it."""
    from specc.backend.torch.network import Network

    passes: list[bool] = []
    run = Network._run

    def counted(self, *args, **kwargs):
        passes.append(True)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(Network, "_run", counted)
    return passes


def diagnose_json(capsys, *args: str) -> dict:
    assert main(["diagnose", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def close(got: list[float], want: list[float]) -> bool:
    a, b = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= REL * np.abs(b).max() + 1e-300))


GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=GPU, id="gpu")])
@pytest.mark.parametrize(
    "spec, rnn",
    [
        (SPECS / "adding.spec", None),  # regress, return=last, relu with identity init
        (SPECS / "bilstm_tagger.spec", "bwd"),  # padded sentences, dropout, a reversed lstm
        (SPECS / "char_lstm.spec", None),
    ],
    ids=["adding", "bilstm_tagger", "char_lstm"],
)
def test_diagnose_on_torch_measures_the_numpy_backends_gradient_flow(
    capsys, torch_passes, spec, rnn, device
):
    """‖∂L_T/∂h_t‖ at every t, and the summaries drawn from it, to 1e-9 (float64)."""
    pick = ["--rnn", rnn] if rnn else []
    want = diagnose_json(capsys, str(spec), *pick)
    assert not torch_passes
    got = diagnose_json(capsys, str(spec), *pick, "--backend", "torch", "--device", device)
    assert torch_passes
    assert close(got.pop("grad_norm"), want.pop("grad_norm"))
    for key in ("ratio_first_to_last", "decay_per_step"):
        g, w = got.pop(key), want.pop(key)  # None where the gradient vanished to 0
        assert g is w is None or g == pytest.approx(w, rel=REL)
    assert got == want  # the node, its activation, the horizon, the batch...


def test_diagnose_of_a_checkpoint_on_torch_measures_what_numpy_does(tmp_path, capsys, torch_passes):
    spec = write_spec_and_data(tmp_path, BATCHNORM_RNN, FOX_TEXT)
    out = tmp_path / "runs"
    assert main(["run", str(spec), "--steps", "3", "--dtype", "float64", "--out", str(out)]) == 0
    capsys.readouterr()
    ckpt = str(out / "t.npz")
    want = diagnose_json(capsys, ckpt)
    assert not torch_passes
    got = diagnose_json(capsys, ckpt, "--backend", "torch", "--device", "cpu")
    assert torch_passes
    assert got["label"] == want["label"] == "after 3 training steps (checkpoint)"
    assert close(got["grad_norm"], want["grad_norm"])


def test_covariate_shift_on_torch_is_the_numpy_backends(tmp_path, capsys, torch_passes):
    """--shift trains both variants on the chosen backend: the same drifts and losses."""
    spec = write_spec_and_data(tmp_path, BATCHNORM_RNN, FOX_TEXT)
    args = (str(spec), "--shift", "--steps", "20")
    want = diagnose_json(capsys, *args)["shift"]
    assert not torch_passes
    got = diagnose_json(capsys, *args, "--backend", "torch")["shift"]
    assert len(torch_passes) > 40  # both variants trained on torch
    assert [t["variant"] for t in got] == ["with batchnorm", "without batchnorm"]
    for g, w in zip(got, want, strict=True):
        assert g["steps"] == w["steps"]
        for key in ("mean_drift", "var_drift", "train_loss"):
            assert close(g[key], w[key]), key


def test_diagnose_refuses_a_device_without_the_torch_backend(capsys):
    assert main(["diagnose", str(SPECS / "adding.spec"), "--device", "cuda"]) == 1
    assert capsys.readouterr().err.strip() == "error: --device cuda needs --backend torch"


def test_explain_with_a_backend_says_it_runs_the_model_and_keeps_the_figures(capsys):
    spec = str(SPECS / "char_rnn.spec")
    assert main(["explain", spec]) == 0
    plain = capsys.readouterr().out
    assert "backend" not in plain
    assert main(["explain", spec, "--backend", "torch"]) == 0
    with_backend = capsys.readouterr().out
    assert "the torch backend runs every op of this model, on cpu" in with_backend
    # the same table and figures, one note more
    assert [line for line in with_backend.splitlines() if "backend" not in line] == [
        line for line in plain.splitlines()
    ]


def test_explain_refuses_by_name_an_op_the_backend_cannot_run(capsys, monkeypatch):
    from specc.backend.torch.network import KERNELS

    monkeypatch.delitem(KERNELS, "batchnorm")
    spec = str(SPECS / "char_rnn.spec")
    assert main(["explain", spec]) == 0  # without --backend, nothing is checked
    capsys.readouterr()
    assert main(["explain", spec, "--backend", "torch"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"{spec}: error: the torch backend cannot run op 'batchnorm' (node 'batchnorm' of model "
        "'char_rnn'); use --backend numpy"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "torch", "--device", "cuda"], "--device cuda: this machine's PyTorch "
         "sees no CUDA GPU"),
        (["--device", "cuda"], "--device cuda needs --backend torch"),
        (["--backend", "torch", "--device", "tpu"], "--device: unknown device 'tpu' (use cpu, "
         "cuda or cuda:N)"),
    ],
)  # fmt: skip
def test_explain_checks_the_device(capsys, args: list[str], message: str):
    assert main(["explain", str(SPECS / "char_rnn.spec"), *args]) == 1
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_explain_of_a_checkpoint_checks_the_backend(tmp_path: Path, capsys):
    spec = write_spec_and_data(tmp_path, BATCHNORM_RNN, FOX_TEXT)
    assert main(["run", str(spec), "--steps", "1", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["explain", str(tmp_path / "t.npz"), "--backend", "reference"]) == 0
    assert "the reference backend runs every op of this model, on cpu" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["explain", "diagnose"])
def test_without_torch_explain_and_diagnose_say_what_to_install(command: str) -> None:
    hide = (
        "import sys; sys.modules['torch'] = None\n"
        "from specc.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide, command, str(SPECS / "adding.spec"), "--backend", "torch"],
        capture_output=True,
        text=True,
        env=checkout_env(),
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        'error: the torch backend needs PyTorch: pip install "specc[torch]"'
    ]
