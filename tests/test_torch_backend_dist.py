"""Distributed training on the torch backend: 2 local processes over gloo (loopback).

Each test starts `specc run --backend torch --procs 2` (the local launcher,
what `torchrun --standalone --nproc-per-node=2 -m specc run` does) and is
bounded in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import SPECC_COMMAND, SPECS, checkout_env, specc_cli

pytest.importorskip("torch")


def _tagger_without_schedule() -> str:
    """The shipped tagger without its cosine schedule, which spans each run's own
    length: a run resumed with a longer --steps is then the longer run's continuation."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="specc-dist-"))
    atexit.register(shutil.rmtree, folder, True)
    (folder / "data").mkdir()
    sample = SPECS / "data" / "sample.conllu"
    (folder / "data" / "sample.conllu").write_bytes(sample.read_bytes())
    text = (SPECS / "tagger.spec").read_text()
    spec = folder / "tagger.spec"
    spec.write_text("\n".join(line for line in text.splitlines() if "schedule" not in line))
    return str(spec)


TAGGER = _tagger_without_schedule()
F64 = ("--backend", "torch", "--dtype", "float64")


def arrays(path: Path) -> dict[str, np.ndarray]:
    """A checkpoint's parameters, buffers and optimizer state."""
    data = np.load(path)
    return {k: data[k] for k in data.files if not k.startswith("__") or k.startswith("__opt__")}


def assert_same(got: Path, want: Path, rel: float = 1e-12) -> None:
    a, b = arrays(got), arrays(want)
    assert a.keys() == b.keys()
    for key in b:
        err = np.abs(a[key] - b[key]).max() / max(np.abs(b[key]).max(), 1e-300)
        assert err < rel, (key, err)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SPECC_COMMAND, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=checkout_env(),
    )


def wait_for_training(proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Read the run's output until process 0 says training started."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("training "):
            return
        assert line, f"the run ended first: {proc.communicate(timeout=30)}"
    raise AssertionError("training did not start")


def ranks(launcher: subprocess.Popen[str]) -> dict[int, int]:
    """rank -> pid of the launcher's processes."""
    pids = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    found = {}
    for pid in map(int, pids):
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        rank = next(int(v[5:]) for v in env if v.startswith(b"RANK="))
        found[rank] = pid
    return found


def test_two_processes_with_half_batches_give_one_process_with_the_whole_batch(tmp_path):
    """float64, padded sentences, a reversed rnn and batchnorm: 2 x 8 rows train to the
    parameters (and running statistics, and optimizer state) of 1 x 16, to 1e-12;
    only process 0 prints and writes."""
    two = specc_cli("run", TAGGER, *F64, "--steps", "5", "--procs", "2", "--out",
                    str(tmp_path / "two"), timeout=180)  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("training ud_english") == 1
    one = specc_cli("run", TAGGER, *F64, "--steps", "5", "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    assert_same(tmp_path / "two" / "ud_english.npz", tmp_path / "one" / "ud_english.npz")
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "ud_english.best.npz",
        "ud_english.json",
        "ud_english.npz",
    ]


@pytest.mark.slow
def test_sigint_stops_every_process_after_one_checkpoint_and_the_run_resumes(tmp_path):
    """SIGINT to the launcher: both processes stop at the same step, process 0 writes
    one checkpoint, and resuming it (2 processes again) ends exactly where the
    uninterrupted 2-process run ends."""
    out = tmp_path / "run"
    proc = start("run", TAGGER, *F64, "--steps", "100000", "--procs", "2", "--out", str(out))
    try:
        wait_for_training(proc)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        f"interrupted at a step boundary; checkpoint saved to {out / 'ud_english.npz'}"
    ]
    stopped_at = int(np.load(out / "ud_english.npz")["__train__"].tobytes().split(b'"step": ')[1]
                     .split(b",")[0])  # fmt: skip
    assert 0 < stopped_at < 100000
    total = str(stopped_at + 3)
    resumed = specc_cli("run", TAGGER, *F64, "--steps", total, "--procs", "2", "--resume",
                        str(out / "ud_english.npz"), "--out", str(tmp_path / "resumed"),
                        timeout=180)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    straight = specc_cli("run", TAGGER, *F64, "--steps", total, "--procs", "2", "--out",
                         str(tmp_path / "straight"), timeout=180)  # fmt: skip
    assert straight.returncode == 0, straight.stderr
    assert_same(tmp_path / "resumed" / "ud_english.npz", tmp_path / "straight" / "ud_english.npz")


def test_a_killed_process_stops_the_other_which_names_it(tmp_path):
    """kill -9 of rank 1: rank 0 stops within seconds, with one line naming rank 1,
    and leaves no checkpoint behind (none was due)."""
    out = tmp_path / "run"
    proc = start("run", TAGGER, *F64, "--steps", "100000", "--procs", "2", "--out", str(out))
    try:
        wait_for_training(proc)
        os.kill(ranks(proc)[1], signal.SIGKILL)
        killed = time.monotonic()
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert took < 8, took  # rank 0 noticed by itself, before the launcher's grace ran out
    assert err.strip().splitlines() == [
        "error: rank 1 failed (its process is gone); rank 0 stops too"
    ]
    assert not any(p.name.startswith(".") or p.suffix == ".tmp" for p in out.glob("*"))


@pytest.mark.slow
def test_a_process_that_raises_stops_the_other_which_names_it(tmp_path):
    """Process 0 cannot write its checkpoint at the end of the first epoch (the output
    folder is a file): process 1 stops at once, with one line naming it."""
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    proc = start("run", TAGGER, *F64, "--epochs", "50", "--procs", "2", "--out", str(blocker))
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    named = [line for line in err.splitlines() if "rank 0 failed" in line]
    assert named == [f"error: rank 0 failed: cannot write {blocker / 'ud_english.npz'}: "
                     f"{blocker} is a file, not a directory; rank 1 stops too"], err  # fmt: skip
