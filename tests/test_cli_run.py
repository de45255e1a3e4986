"""`specc run`, `generate` and `tag` as a user calls them: real subprocesses, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import SPECS, specc_cli, write_spec_and_data

TINY = """
model lm {
    input  chars : tokens
    output next  = chars -> embedding(dim=8) -> rnn(hidden=16) -> dense(units=vocab) -> softmax
}
task tiny : next_char {
    model    = lm
    data     = text("corpus.txt")
    seq_len  = 10
    batch    = 4
    steps    = 15
    generate = 30
    prime    = "the "
}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    corpus = "the cat and the hat sat on a mat. " * 30
    return write_spec_and_data(tmp_path, TINY, {"corpus.txt": corpus}, name="tiny.spec")


def test_run_trains_writes_checkpoint_and_shows_a_sample(tiny):
    res = specc_cli("run", str(tiny))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "step 15/15" in res.stdout  # plain progress lines when not a terminal
    assert "bits/char" in res.stdout and "sampled" in res.stdout
    runs = tiny.parent / "runs"
    doc = json.loads((runs / "tiny.json").read_text())
    assert doc["steps"] == 15 and doc["kind"] == "next_char"
    gen = specc_cli(
        "generate", str(runs / "tiny.npz"), "-n", "25", "--prime", "the ", "--seed", "3"
    )
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.startswith("the ") and len(gen.stdout.rstrip("\n")) == 4 + 25
    again = specc_cli(
        "generate", str(runs / "tiny.npz"), "-n", "25", "--prime", "the ", "--seed", "3"
    )
    assert again.stdout == gen.stdout  # seeded sampling is repeatable


def test_generate_refuses_a_prime_outside_the_vocabulary(tiny):
    assert specc_cli("run", str(tiny), "--out", str(tiny.parent / "o")).returncode == 0
    res = specc_cli("generate", str(tiny.parent / "o" / "tiny.npz"), "--prime", "Zebra!")
    assert res.returncode == 1
    assert "never saw in training" in res.stderr and "'Z'" in res.stderr
    assert "Traceback" not in res.stderr


def test_run_tag_example_and_tag_a_new_sentence(tmp_path):
    res = specc_cli("run", str(SPECS / "tagger.spec"), "--epochs", "2", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "accuracy" in res.stdout
    tagged = specc_cli("tag", str(tmp_path / "ud_english.npz"), "The dog sleeps.")
    assert tagged.returncode == 0, tagged.stderr
    lines = [ln.split() for ln in tagged.stdout.strip().splitlines()]
    assert [ln[0] for ln in lines] == ["The", "dog", "sleeps", "."]
    for ln in lines:  # word, then three (tag, probability) pairs in falling order
        probs = [float(p) for p in ln[2::2]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    best = specc_cli("tag", str(tmp_path / "ud_english.best.npz"), "The dog sleeps.")
    assert best.returncode == 0, best.stderr  # the best checkpoint tags as well
    assert [ln.split()[0] for ln in best.stdout.strip().splitlines()] == [
        "The",
        "dog",
        "sleeps",
        ".",
    ]


@pytest.mark.parametrize(
    "args, status, words",
    [
        (["run", "nope.spec"], 1, "no such file"),
        (["run", "{spec}", "--task", "nope"], 1, "no task named 'nope'"),
        (["run", "{spec}", "--steps", "0"], 1, "--steps must be a positive"),
        (["run", "{spec}", "--epochs", "1", "--steps", "2"], 1, "not both"),
        (["run", "{spec}", "--steps", "abc"], 2, "invalid int value"),
        (["run"], 2, "required"),
        (["generate", "missing.npz"], 1, "no such checkpoint"),
        (["generate", "{spec}"], 1, "not a readable .npz"),
        (["tag", "{spec}", "a b"], 1, "not a readable .npz"),
    ],
)
def test_exit_statuses(tiny, args, status, words):
    res = specc_cli(*[a.replace("{spec}", str(tiny)) for a in args], cwd=tiny.parent)
    assert res.returncode == status, res.stderr
    assert words in res.stderr
    assert "Traceback" not in res.stderr


def test_damaged_and_foreign_checkpoints_are_refused_in_one_line(tiny, tmp_path):
    assert specc_cli("run", str(tiny), "--out", str(tmp_path / "o")).returncode == 0
    good = tmp_path / "o" / "tiny.npz"
    data = dict(np.load(good, allow_pickle=False))
    cases = {}
    torn = tmp_path / "torn.npz"
    torn.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["torn"] = (torn, "not a readable")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{**data, "rnn.W_hh": np.array([object()], dtype=object)})
    cases["pickled"] = (pickled, "pickle")
    missing = tmp_path / "missing.npz"
    np.savez(missing, **{k: v for k, v in data.items() if k != "rnn.W_hh"})
    cases["missing"] = (missing, "array 'rnn.W_hh' is missing")
    shaped = tmp_path / "shape.npz"
    np.savez(shaped, **{**data, "rnn.W_hh": np.zeros((3, 3), np.float32)})
    cases["shape"] = (shaped, "has shape (3, 3), expected (16, 16)")
    meta = json.loads(data["__meta__"].tobytes())
    future = tmp_path / "future.npz"
    meta["version"] = 99
    np.savez(future, **{**data, "__meta__": np.frombuffer(json.dumps(meta).encode(), np.uint8)})
    cases["future"] = (future, "newer specc")
    for name, (path, words) in cases.items():
        res = specc_cli("generate", str(path))
        assert res.returncode == 1, name
        assert words in res.stderr, (name, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, (name, res.stderr)
