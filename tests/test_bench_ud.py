"""benchmarks/bench_ud.py: a spec's tag task trained on the treebank files given."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO, SPECS, checkout_env, conllu_text, write_file

# a repository tool, not the package: run with -m tools (CI does)
pytestmark = pytest.mark.tools

SCRIPT = REPO / "benchmarks" / "bench_ud.py"
TRAIN = "the/DET dog/NOUN runs/VERB\na/DET cat/NOUN sleeps/VERB\nthe/DET cat/NOUN runs/NOUN\n"
DEV = "a/DET dog/NOUN sleeps/VERB\nthe/DET fox/NOUN runs/VERB\n"


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=checkout_env(),
        timeout=300,
    )


def test_trains_on_the_files_given_and_reports_the_baseline(tmp_path):
    train = write_file(tmp_path / "tb" / "train.conllu", conllu_text(TRAIN * 4))
    dev = write_file(tmp_path / "tb" / "dev.conllu", conllu_text(DEV))
    out = tmp_path / "ud.json"
    res = bench(
        "--treebank",
        "toy",
        str(train),
        str(dev),
        "--spec",
        str(SPECS / "tagger.spec"),
        "--minutes",
        "1",
        "--epochs",
        "2",
        "--json",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(out.read_text())["rows"]
    assert row["treebank"] == "toy" and row["spec"] == "tagger.spec"
    assert row["steps"] == 2 and not row["time_limited"]  # 12 sentences, batch 16
    # "runs" is VERB twice and NOUN twice in training (a tie: NOUN is more frequent
    # overall); "fox" is unseen and gets NOUN, the most common tag: 5 of 6 right
    assert row["per_word_accuracy"] == pytest.approx(5 / 6)
    assert row["unseen_fraction"] == pytest.approx(1 / 6)
    assert row["per_word_unseen_accuracy"] == 1.0
    assert "| toy | tagger.spec |" in res.stdout and "machine:" in res.stdout


def test_refuses_a_spec_without_a_tag_task(tmp_path):
    train = write_file(tmp_path / "train.conllu", conllu_text(TRAIN))
    res = bench("--train", str(train), "--dev", str(train), "--spec", str(SPECS / "char_rnn.spec"))
    assert res.returncode != 0 and "a tag task is needed" in res.stderr
