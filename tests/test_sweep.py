"""`specc sweep` on a local Ray with 2 CPUs and tiny tasks, run as a user runs it.

Each test starts its own Ray (a few seconds); the one in the default suite runs
a 2-point grid, the longer searches are marked slow."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from helpers import SPECS, specc_cli, start_specc, write_spec_and_data

pytest.importorskip("ray.tune", reason="specc sweep needs the sweep extra (ray[tune])")

TAGGER = """\
param hidden = 8
param lr = 0.1

model tagger {
    input  words : tokens
    e    = words -> embedding(dim=8)
    h    = e -> rnn(hidden=hidden)
    output tags = h -> dense(units=labels) -> softmax
}

task tagging : tag {
    model     = tagger
    data      = conllu("sample.conllu", column=upos)
    batch     = 16
    optimizer = sgd(lr=lr, momentum=0.9)
    epochs    = EPOCHS
}
"""


#: Training steps per epoch of the tagger at batch 4 on specs/data/sample.conllu.
STEPS_PER_EPOCH_AT_4 = 20


def tagger(folder: Path, sweep: str, epochs: int = 2) -> Path:
    conllu = (SPECS / "data" / "sample.conllu").read_text()
    text = TAGGER.replace("EPOCHS", str(epochs)) + sweep
    return write_spec_and_data(folder, text, {"sample.conllu": conllu})


def summary_of(folder: Path, sweep: str) -> dict:
    return json.loads((folder / "runs" / sweep / "summary.json").read_text())


def test_a_grid_runs_every_point_once_and_reports_the_best(tmp_path: Path) -> None:
    spec = tagger(tmp_path, "sweep sizes : tagging {\n    hidden = grid(1, 16)\n}\n")
    done = specc_cli("sweep", str(spec), "--cpus", "2", timeout=240)
    assert done.returncode == 0, done.stderr
    summary = summary_of(tmp_path, "sizes")
    assert sorted(t["params"]["hidden"] for t in summary["trials"]) == ["1", "16"]
    assert all(t["status"] == "done" and t["epochs"] == 2 for t in summary["trials"])
    scores = {t["params"]["hidden"]: t["metric"] for t in summary["trials"]}
    assert summary["metric"] == "val.accuracy" and summary["mode"] == "max"
    assert summary["best"]["params"]["hidden"] == max(scores, key=scores.get)
    assert summary["trials"][0] == summary["best"]  # sorted best first
    # each trial is an ordinary run: its own checkpoint and metrics
    for t in summary["trials"]:
        metrics = json.loads((Path(t["folder"]) / "tagging.json").read_text())
        assert metrics["params"]["hidden"] == t["params"]["hidden"]
        assert metrics["val"]["accuracy"] == pytest.approx(t["metric"])
        assert (Path(t["folder"]) / "tagging.npz").is_file()
    best = summary["best"]["params"]["hidden"]
    assert f"best:      hidden = {best}" in done.stdout
    assert f"reproduce: specc run {spec} --task tagging --set hidden={best}" in done.stdout
    assert summary["command"] == f"specc run {spec} --task tagging --set hidden={best}"


@pytest.mark.slow
def test_the_best_command_reproduces_the_best_trial(tmp_path: Path) -> None:
    spec = tagger(
        tmp_path, "sweep rates : tagging {\n    lr = loguniform(0.01, 0.5)\n    trials = 2\n}\n"
    )
    assert specc_cli("sweep", str(spec), "--cpus", "2", timeout=240).returncode == 0
    best = summary_of(tmp_path, "rates")["best"]
    sets = [a for k, v in best["params"].items() for a in ("--set", f"{k}={v}")]
    done = specc_cli("run", str(spec), *sets, "--out", str(tmp_path / "again"))
    assert done.returncode == 0, done.stderr
    again = json.loads((tmp_path / "again" / "tagging.json").read_text())
    assert again["val"]["accuracy"] == best["metric"]


@pytest.mark.slow
def test_asha_stops_a_poor_trial_early(tmp_path: Path) -> None:
    sweep = (
        "sweep rates : tagging {\n"
        "    lr = grid(0.3, 0.2, 0.00001, 0.000001)\n"
        "    max_concurrent = 1\n"
        "    scheduler = asha(grace=1, reduction=2)\n"
        "}\n"
    )
    spec = tagger(tmp_path, sweep, epochs=6)
    done = specc_cli("sweep", str(spec), "--cpus", "2", timeout=400)
    assert done.returncode == 0, done.stderr
    trials = summary_of(tmp_path, "rates")["trials"]
    stopped = [t for t in trials if t["status"] == "stopped early"]
    assert stopped and all(t["epochs"] < 6 for t in stopped)
    assert {t["params"]["lr"] for t in stopped} & {"0.00001", "0.000001"}  # a hopeless one
    assert trials[0]["status"] == "done" and trials[0]["epochs"] == 6  # the best ran to the end
    assert "stopped early" in done.stdout


@pytest.mark.slow
def test_a_diverging_trial_is_reported_and_the_sweep_goes_on(tmp_path: Path) -> None:
    sweep = "sweep rates : adding_50 {\n    lr = grid(0.01, 1e8)\n}\n"
    text = ADDING.split("sweep")[0].replace("adam(lr=1e-3)", "sgd(lr=lr)")
    text = "param lr = 0.01\n" + text.replace("clip      = 1.0\n", "").replace(
        "epochs    = 6", "epochs    = 1"
    )
    spec = write_spec_and_data(tmp_path, text + sweep)
    done = specc_cli("sweep", str(spec), "--cpus", "2", timeout=240)
    assert done.returncode == 0, done.stderr
    trials = {t["params"]["lr"]: t for t in summary_of(tmp_path, "rates")["trials"]}
    assert trials["1e8"]["status"] == "failed"
    assert trials["1e8"]["error"].startswith("training diverged at step")
    assert trials["0.01"]["status"] == "done"
    assert "failed: training diverged" in done.stdout


ADDING = """\
param act = sigmoid
param init = xavier

model adder {
    input  pairs : sequence[2]
    output sum   = pairs -> rnn(hidden=32, activation=act, init=init, return=last)
                         -> dense(units=1)
}

task adding_50 : regress {
    model     = adder
    data      = adding(length=50, samples=8000)
    batch     = 32
    optimizer = adam(lr=1e-3)
    clip      = 1.0
    epochs    = 6
}

sweep cells : adding_50 {
    act  = grid(leaky_relu(slope=0.01), sigmoid)
    init = grid(identity, xavier)
}
"""


@pytest.mark.slow
def test_identity_leaky_relu_beats_sigmoid_on_the_adding_problem(tmp_path: Path) -> None:
    spec = write_spec_and_data(tmp_path, ADDING)
    done = specc_cli("sweep", str(spec), "--cpus", "2", timeout=580)
    assert done.returncode == 0, done.stderr
    summary = summary_of(tmp_path, "cells")
    assert summary["metric"] == "val.mse" and summary["mode"] == "min"
    scores = {(t["params"]["act"], t["params"]["init"]): t["metric"] for t in summary["trials"]}
    assert len(scores) == 4
    assert summary["best"]["params"]["act"] == "leaky_relu(slope=0.01)"
    identity_leaky = scores[("leaky_relu(slope=0.01)", "identity")]
    sigmoid = [v for (act, _), v in scores.items() if act == "sigmoid"]
    assert identity_leaky < 0.5 * min(sigmoid)  # learned; sigmoid stays near the baseline


@pytest.mark.slow
def test_ctrl_c_then_resume_finishes_without_rerunning_finished_trials(tmp_path: Path) -> None:
    sweep = "sweep sizes : tagging {\n    hidden = grid(4, 8, 12, 16)\n    max_concurrent = 1\n}\n"
    spec = tagger(tmp_path, sweep, epochs=30)
    spec.write_text(spec.read_text().replace("batch     = 16", "batch     = 4"))
    folder = tmp_path / "runs" / "sizes"

    def finished() -> dict[str, int]:
        """Trials whose metrics file says they ran every epoch, with its mtime."""
        out = {}
        for p in folder.glob("trial_*/tagging.json"):
            try:
                history = json.loads(p.read_text())
            except ValueError:
                continue  # being written
            if history["steps"] >= 30 * STEPS_PER_EPOCH_AT_4:
                out[p.parent.name] = p.stat().st_mtime_ns
        return out

    proc = start_specc("sweep", str(spec), "--cpus", "2")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not finished():
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"--resume {folder}" in err
    before = finished()
    assert 1 <= len(before) < 4
    done = specc_cli("sweep", str(spec), "--resume", str(folder), "--cpus", "2", timeout=400)
    assert done.returncode == 0, done.stderr
    summary = json.loads((folder / "summary.json").read_text())
    assert len(summary["trials"]) == 4 and all(t["status"] == "done" for t in summary["trials"])
    after = {p.parent.name: p.stat().st_mtime_ns for p in folder.glob("trial_*/tagging.json")}
    assert all(after[name] == mtime for name, mtime in before.items())  # not run again


def test_an_address_where_nothing_listens_is_one_line(tmp_path: Path) -> None:
    spec = tagger(tmp_path, "sweep sizes : tagging {\n    hidden = grid(4, 8)\n}\n")
    done = specc_cli("sweep", str(spec), "--address", "127.0.0.1:1", timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: --address 127.0.0.1:1: nothing answers there")
    assert done.stderr.count("\n") == 1


@pytest.mark.slow
def test_optuna_searches_the_range(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    sweep = (
        "sweep rates : tagging {\n    lr = loguniform(0.01, 0.5)\n"
        "    search = optuna\n    trials = 3\n}\n"
    )
    spec = tagger(tmp_path, sweep)
    done = specc_cli("sweep", str(spec), "--cpus", "2", timeout=240)
    assert done.returncode == 0, done.stderr
    trials = summary_of(tmp_path, "rates")["trials"]
    assert len(trials) == 3 and all(t["status"] == "done" for t in trials)
    assert all(0.01 <= float(t["params"]["lr"]) < 0.5 for t in trials)
