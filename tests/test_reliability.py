"""Hostile input, broken data, divergence and interruption: one clear message, nothing lost."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.train.checkpoint import load_checkpoint
from specc.train.loop import run_task

from helpers import specc_cli, start_specc, write_spec_and_data

# ----- pathological specs: fast, bounded, exit 1 where wrong and 0 where only large ----------

MODEL = "model m {{ input x : sequence[4]\n output y = x {body} }}\n"


@pytest.mark.parametrize(
    "name, text, status, words",
    [
        ("empty", "", 0, None),
        ("binary", "\x00\x01\x02model", 1, "binary data"),
        (
            "nested calls",
            MODEL.format(body="-> f(" + "f(" * 10000 + ")" * 10001),
            1,
            "nest more than 64 levels",
        ),
        (
            "nested lists",
            MODEL.format(body="-> dense(" + "[" * 10000 + "]" * 10000 + ")"),
            1,
            "nest more than 64 levels",
        ),
        (
            "nested sources",
            "model m { input x : tokens output y = "
            + "(" * 10000
            + "x"
            + ")" * 10000
            + " -> relu }",
            1,
            "nest more than 64 levels",
        ),
        ("long pipeline", MODEL.format(body="-> relu" * 10000), 0, None),
        (
            "long name",
            "model m { input x : sequence[4] output " + "a" * 100_000 + " = x -> relu }",
            0,
            None,
        ),
        (
            "huge hidden",
            MODEL.format(body="-> rnn(hidden=1000000000000)"),
            1,
            "for its parameters alone",
        ),
        ("5 MB comment", "# " + "x" * 5_000_000 + "\n" + MODEL.format(body="-> relu"), 0, None),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "",
)
def test_pathological_specs_finish_quickly(tmp_path, name, text, status, words):
    """Each case runs the real CLI; the ids are the names (the texts are megabytes)."""
    path = tmp_path / "p.spec"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    started = time.perf_counter()
    res = specc_cli("check", str(path))
    assert time.perf_counter() - started < 60  # generous; each takes about a second here
    assert res.returncode == status, res.stderr[:500]
    assert "Traceback" not in res.stderr
    if words:
        assert words in res.stderr


@pytest.mark.slow
def test_five_megabytes_of_statements_check_within_a_minute(tmp_path):
    """Not a comment or one long string: 150,000 real statements."""
    body = "".join(f"  n{i} = x -> relu  # comment\n" for i in range(150_000))
    path = tmp_path / "big.spec"
    path.write_text("model m {\n  input x : sequence[4]\n" + body + "  output y = n0 -> relu\n}\n")
    assert path.stat().st_size > 4_000_000
    started = time.perf_counter()
    res = specc_cli("check", str(path), timeout=300)
    assert res.returncode == 0, res.stderr[:300]
    assert time.perf_counter() - started < 60


def test_invalid_utf8_names_the_byte_offset(tmp_path):
    path = tmp_path / "u.spec"
    path.write_bytes(b"model m {\n  input x : tok\xffens }")
    res = specc_cli("check", str(path))
    assert res.returncode == 1
    assert "byte offset 25, line 2" in res.stderr and "0xff" in res.stderr
    assert res.stderr.count("error:") == 1


def test_huge_model_is_refused_before_building(tmp_path):
    program = specc.loads(
        "model m { input x : tokens output y = x -> embedding(dim=8)"
        " -> rnn(hidden=64) -> dense(units=vocab) -> softmax }"
    )
    with pytest.raises(specc.SpecError, match="for its parameters alone"):
        program.build("m", sizes={"vocab": 10**13})


# ----- broken data ----------------------------------------------------------------------

TEXT_TASK = """
model lm {{ input c : tokens
  output y = c -> embedding(dim=4) -> rnn(hidden=8) -> dense(units=vocab) -> softmax }}
task t : next_char {{ model = lm  data = text("{path}")  seq_len = 8  batch = 4  steps = 2 }}
"""


@pytest.mark.parametrize(
    "setup, words",
    [
        (lambda d: None, "data file 'corpus.txt' not found"),
        (lambda d: (d / "corpus.txt").mkdir(), "is a directory"),
        (lambda d: (d / "corpus.txt").write_text(""), "text corpus is empty"),
        (lambda d: (d / "corpus.txt").write_text("too short"), "fewer than one batch"),
        (lambda d: (d / "corpus.txt").write_bytes(b"abc\xfe\xffdef" * 50), "UTF-8"),
    ],
    ids=["missing", "directory", "empty", "short", "not-utf8"],
)
def test_broken_text_data_is_one_clear_error(tmp_path, setup, words):
    setup(tmp_path)
    spec = write_spec_and_data(tmp_path, TEXT_TASK.format(path="corpus.txt"))
    res = specc_cli("run", str(spec))
    assert res.returncode == 1
    assert words in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


TAGGER = (
    "model m { input w : tokens output y = w -> embedding(4) -> rnn(8)"
    " -> dense(units=labels) -> softmax }\n"
)


def test_conllu_bad_line_is_reported_with_file_and_line(tmp_path):
    spec = write_spec_and_data(
        tmp_path,
        TAGGER + 'task t : tag { model = m  data = conllu("d.conllu") }\n',
        {"d.conllu": "# sent_id = 1\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n1\tBad\tline\n"},
    )
    res = specc_cli("run", str(spec))
    assert res.returncode == 1
    assert f"{tmp_path / 'd.conllu'}:4: error:" in res.stderr


def test_dev_tags_never_seen_in_training_are_noted_and_counted_wrong(tmp_path):
    train = "\n".join(["the/DET cat/NOUN sleeps/VERB ./PUNCT"] * 12)
    spec = write_spec_and_data(
        tmp_path,
        TAGGER + "task t : tag { model = m  steps = 3\n"
        '  data = conllu("train.conllu", dev="dev.conllu") }\n',
        {
            "train.conllu": _conllu(train),
            "dev.conllu": _conllu("wow/INTJ the/DET cat/NOUN ./PUNCT"),
        },
    )
    res = specc_cli("run", str(spec), "--out", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr
    assert "never seen in training: INTJ" in res.stdout
    doc = json.loads((tmp_path / "o" / "t.json").read_text())
    assert doc["val"]["accuracy"] <= 0.75  # the INTJ word can never be right


def _conllu(tagged: str) -> str:
    blocks = []
    for line in tagged.splitlines():
        rows = []
        for i, tok in enumerate(line.split(), start=1):
            word, tag = tok.rsplit("/", 1)
            rows.append(
                f"{i}\t{word}\t{word}\t{tag}\t_\t_\t{0 if i == 1 else 1}\t"
                f"{'root' if i == 1 else 'dep'}\t_\t_"
            )
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks) + "\n"


# ----- divergence ------------------------------------------------------------------------

DIVERGING = """
model lm { input c : tokens
  output y = c -> embedding(dim=4) -> rnn(hidden=8, activation=relu) -> dense(units=vocab)
      -> softmax }
task t : next_char { model = lm  data = text("c.txt")  seq_len = 8  batch = 4
                     optimizer = sgd(lr=STEP)  epochs = 3 }
"""


def _trained_checkpoint(folder: Path) -> Path:
    """A checkpoint of two steps of the DIVERGING spec at a sane rate, from the real command."""
    spec = write_spec_and_data(
        folder, DIVERGING.replace("STEP", "0.1"), {"c.txt": "abcdefgh " * 40}
    )
    done = specc_cli("run", str(spec), "--steps", "2")
    assert done.returncode == 0, done.stderr
    return folder / "runs" / "t.npz"


def test_divergence_stops_with_step_node_and_advice_and_keeps_last_checkpoint(tmp_path):
    ckpt = _trained_checkpoint(tmp_path)
    spec = tmp_path / "t.spec"
    before = ckpt.read_bytes()
    spec.write_text(DIVERGING.replace("STEP", "1e30"))
    res = specc_cli("run", str(spec))
    assert res.returncode == 1
    assert "training diverged at step" in res.stderr
    assert "first appeared in" in res.stderr and "lower the learning rate" in res.stderr
    assert "Traceback" not in res.stderr
    assert ckpt.read_bytes() == before


# ----- interruption ------------------------------------------------------------------------

LONG = """
model lm { input c : tokens
  output y = c -> embedding(dim=8) -> rnn(hidden=32) -> batchnorm -> dense(units=vocab)
      -> softmax }
task t : next_char { model = lm  data = text("c.txt")  seq_len = 16  batch = 8
                     optimizer = adam(lr=3e-3)  steps = 1000000 }
"""


def _start_training(tmp_path: Path, out: str) -> subprocess.Popen:
    corpus = "the quick brown fox jumps over the lazy dog. " * 200
    spec = write_spec_and_data(tmp_path, LONG, {"c.txt": corpus})
    proc = start_specc("run", str(spec), "--out", str(tmp_path / out))
    # wait until training is under way (the first progress line)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("training t"), line + proc.stderr.read()
    time.sleep(0.5)
    return proc


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_resume_matches_uninterrupted(tmp_path, sig, status):
    proc = _start_training(tmp_path, "part")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert "checkpoint saved" in err and "Traceback" not in err
    ckpt = load_checkpoint(tmp_path / "part" / "t.npz")
    assert 0 < ckpt.step < 1_000_000
    program = specc.load(tmp_path / "t.spec")
    total = ckpt.step + 25  # resume past the interruption, then compare with a straight run
    resumed = run_task(
        program, out_dir=tmp_path / "part", steps=total, resume=tmp_path / "part" / "t.npz"
    )
    full = run_task(program, out_dir=tmp_path / "full", steps=total)
    for k in full.net.params:
        np.testing.assert_array_equal(full.net.params[k], resumed.net.params[k], err_msg=k)


# One training step over 20,000 characters takes most of a second here (many short
# numpy calls, one per character, so a signal is handled within milliseconds).
SLOW_STEPS = """
model lm { input c : tokens
  output y = c -> embedding(dim=8) -> rnn(hidden=128) -> dense(units=vocab) -> softmax }
task t : next_char { model = lm  data = text("c.txt")  seq_len = 20000  batch = 2
                     optimizer = adam(lr=3e-3)  steps = 1000000 }
"""


def _temporary_files(folder: Path) -> list[Path]:
    """What an atomic write leaves while it is under way (`.NAME.XXXX.tmp`)."""
    return sorted(folder.glob(".*.tmp"))


def test_second_ctrl_c_exits_at_once_and_keeps_the_last_checkpoint_whole(tmp_path):
    """The first Ctrl-C asks for a stop at the next step boundary; a second one, sent
    well before that boundary, stops at once: nothing is saved, so the checkpoint of
    the earlier run is left exactly as it was, and no temporary file remains. (Had
    the second Ctrl-C been ignored, the stop at the boundary would save a new one.)"""
    corpus = "the quick brown fox jumps over the lazy dog. " * 3000
    spec = write_spec_and_data(tmp_path, SLOW_STEPS, {"c.txt": corpus})
    out = tmp_path / "o"
    earlier = specc_cli("run", str(spec), "--steps", "1", "--out", str(out))
    assert earlier.returncode == 0, earlier.stderr
    ckpt = out / "t.npz"
    saved = ckpt.read_bytes()

    proc = start_specc("run", str(spec), "--out", str(out))
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()  # printed just before the first step starts
        assert line.startswith("training t"), line + proc.stderr.read()
        # Ctrl-C, then again every 50 ms until it stops, as an impatient user would:
        # signals that arrive during one long numpy call are handled as one.
        deadline = time.monotonic() + 60
        proc.send_signal(signal.SIGINT)
        while proc.poll() is None:
            assert time.monotonic() < deadline, "specc run did not stop within 60 s"
            time.sleep(0.05)
            proc.send_signal(signal.SIGINT)  # does nothing once it has ended
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    # 130 from specc; a Ctrl-C that lands while Python shuts down ends it by SIGINT
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "checkpoint saved" not in err and "Traceback" not in err, err
    assert ckpt.read_bytes() == saved
    assert load_checkpoint(ckpt).step == 1
    assert _temporary_files(out) == []


CHECKPOINTS_OFTEN = LONG.replace("steps = 1000000", "epochs = 1000").replace(
    "batch = 8", "batch = 2"
)


def _kill_when(proc: subprocess.Popen, ready, delay: float, within: float = 60) -> None:
    """SIGKILL `proc` `delay` seconds after `ready()` first holds; fail if it never does."""
    deadline = time.monotonic() + within
    try:
        while not ready():
            assert proc.poll() is None, "specc run ended before it wrote a checkpoint"
            assert time.monotonic() < deadline, f"no checkpoint written within {within} s"
            time.sleep(0.01)
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_kill_at_random_moments_never_tears_or_loses_a_checkpoint(tmp_path):
    """SIGKILL at random moments of runs that write a checkpoint every few dozen
    milliseconds, each resuming the last: the checkpoint is always there, always
    loads, and never goes back to an earlier step than one already saved."""
    spec = write_spec_and_data(tmp_path, CHECKPOINTS_OFTEN, {"c.txt": "abcdefghij " * 60})
    out = tmp_path / "o"
    ckpt = out / "t.npz"
    rng = random.Random(0)

    first = start_specc("run", str(spec), "--out", str(out), capture=False)
    _kill_when(first, ckpt.exists, rng.uniform(0, 0.5))
    steps = [load_checkpoint(ckpt).step]
    for _ in range(4):
        written = _identity(ckpt)
        proc = start_specc(
            "run", str(spec), "--out", str(out), "--resume", str(ckpt), capture=False
        )
        # once this run has replaced the file, it is between checkpoints or writing one
        _kill_when(proc, lambda before=written: _identity(ckpt) != before, rng.uniform(0, 0.5))
        step = load_checkpoint(ckpt).step  # raises on a torn or half-written file
        assert step >= steps[-1], steps
        steps.append(step)
    assert steps[-1] > steps[0], steps  # the resumed runs did train
    json.loads((out / "t.json").read_text())  # the metrics file is whole too


def _identity(path: Path) -> tuple[int, int]:
    """Changes whenever an atomic write replaces `path` (a new inode each time)."""
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


# ----- checkpoints from elsewhere ------------------------------------------------------------


def _with_rnn_hidden(good: Path, hidden: int, bad: Path) -> Path:
    """A copy of checkpoint `good` whose model description says rnn(hidden=HIDDEN)."""
    data = dict(np.load(good, allow_pickle=False))
    model = json.loads(data["__model__"].tobytes())
    model["nodes"][1]["hidden"] = hidden
    data["__model__"] = np.frombuffer(json.dumps(model).encode(), np.uint8)
    np.savez(bad, **data)
    return bad


def test_checkpoint_whose_ir_fails_validation_is_refused(tmp_path):
    bad = _with_rnn_hidden(_trained_checkpoint(tmp_path), -5, tmp_path / "bad.npz")
    res = specc_cli("generate", str(bad))
    assert res.returncode == 1
    assert "model or task description is invalid" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_memory_guard_refuses_with_both_numbers(tmp_path):
    from specc.train.memory import check_training_fits

    program = specc.loads(
        LONG.replace('data = text("c.txt")', 'data = text("c.txt")'), base_dir=None
    )
    model = program.bound_model("lm", {"vocab": 30})
    with pytest.raises(specc.SpecError) as err:
        check_training_fits(model, program.task("t"), available=1000)
    text = str(err.value)
    assert "would need about" in text and "only 1000 B of memory is available" in text


def test_checkpoint_with_a_huge_model_is_refused_before_allocating(tmp_path):
    bad = _with_rnn_hidden(_trained_checkpoint(tmp_path), 10**9, tmp_path / "huge.npz")
    res = specc_cli("generate", str(bad))
    assert res.returncode == 1
    assert "its model cannot be built" in res.stderr and "parameters alone" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
