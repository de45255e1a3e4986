"""The tag report: accuracy on words unseen in training and the per-word baseline.

Every figure is counted again here from the sentences themselves, the plain way,
and compared with what the run reports, prints and writes to its metrics file.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

import specc
from specc.train.infer import tag_words
from specc.train.loop import run_task

from helpers import conllu_text, specc_cli, write_spec_and_data

# "run" is NOUN once and VERB twice; "fast" is ADV once and ADJ once (a tie, won by
# ADV, the more frequent tag overall); "sleeps" occurs once, so it is looked up as
# <unk> yet is no unseen word.
TRAIN = """\
the/DET dog/NOUN runs/VERB ./PUNCT
the/DET run/NOUN ended/VERB ./PUNCT
they/PRON run/VERB fast/ADV ./PUNCT
a/DET cat/NOUN sleeps/VERB ./PUNCT
dogs/NOUN run/VERB quickly/ADV ./PUNCT
a/DET fast/ADJ dog/NOUN barks/VERB ./PUNCT
the/DET cat/NOUN runs/VERB ./PUNCT
they/PRON saw/VERB the/DET dog/NOUN ./PUNCT
"""
DEV = """\
the/DET cat/NOUN sleeps/VERB ./PUNCT
a/DET bird/NOUN sings/VERB loudly/ADV ./PUNCT
they/PRON run/NOUN fast/ADJ ./PUNCT
wow/INTJ the/DET fox/NOUN jumps/VERB ./PUNCT
"""
TEST = """\
the/DET fox/NOUN runs/VERB ./PUNCT
they/PRON sing/VERB ./PUNCT
"""

SPEC = """
model tagger {
    input  words : tokens
    e    = words -> embedding(dim=8)
    fwd  = e -> rnn(hidden=8)
    bwd  = e -> rnn(hidden=8, reverse=true)
    output tags = (fwd, bwd) -> concat -> dense(units=labels) -> softmax
}
task pos : tag {
    model     = tagger
    data      = conllu("train.conllu", dev="dev.conllu", test="test.conllu")
    batch     = 3
    optimizer = adam(lr=1e-2)
    epochs    = 3
}
"""


def sentences(text: str) -> list[list[tuple[str, str]]]:
    return [[tuple(tok.rsplit("/", 1)) for tok in line.split()] for line in text.splitlines()]


FILES = {
    "train.conllu": conllu_text(TRAIN),
    "dev.conllu": conllu_text(DEV),
    "test.conllu": conllu_text(TEST),
}


def per_word_guess(train: list[list[tuple[str, str]]]) -> tuple[dict[str, str], str]:
    """Each training word's most frequent tag (ties to the tag more frequent overall,
    then alphabetical), and the most common tag."""
    overall = Counter(t for s in train for _, t in s)
    rank = {t: (-n, t) for t, n in overall.items()}
    by_word: dict[str, Counter] = {}
    for s in train:
        for w, t in s:
            by_word.setdefault(w, Counter())[t] += 1
    table = {w: min(c, key=lambda t: (-c[t], rank[t])) for w, c in by_word.items()}
    return table, min(overall, key=lambda t: rank[t])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    spec = write_spec_and_data(tmp_path_factory.mktemp("tags"), SPEC, FILES)
    return run_task(specc.load(spec), out_dir=spec.parent / "runs", dtype="float64")


def test_per_word_baseline_and_unseen_words_counted_by_hand(trained):
    train, dev = sentences(TRAIN), sentences(DEV)
    table, common = per_word_guess(train)
    assert table["run"] == "VERB" and table["fast"] == "ADV"  # the data tests what it means to
    words = [(w, t) for s in dev for w, t in s]
    unseen = [(w, t) for w, t in words if w not in table]
    assert [w for w, _ in unseen] == ["bird", "sings", "loudly", "wow", "fox", "jumps"]
    guess_right = [table.get(w, common) == t for w, t in words]
    base = trained.metrics["baseline"]
    assert base["per_word_accuracy"] == pytest.approx(sum(guess_right) / len(words))
    unseen_right = [common == t for _, t in unseen]
    assert base["per_word_unseen_accuracy"] == pytest.approx(sum(unseen_right) / len(unseen))
    assert base["majority_accuracy"] == pytest.approx(
        sum(t == common for _, t in words) / len(words)
    )

    val = trained.metrics["val"]
    assert val["unseen"] == {"count": 6, "fraction": pytest.approx(6 / len(words))}
    # the model's own tags, one sentence at a time, compared with the gold tags
    net, vocab, labels = trained.net, trained.prepared.vocab, trained.prepared.labels
    hits = []
    for s in dev:
        tops = tag_words(net, vocab, labels, [w for w, _ in s], top=1)
        hits += [
            (w not in table, best[0][0] == t) for (w, best), (_, t) in zip(tops, s, strict=True)
        ]
    assert val["accuracy"] == pytest.approx(np.mean([h for _, h in hits]))
    assert val["unseen_accuracy"] == pytest.approx(np.mean([h for new, h in hits if new]))
    test_words = [w for s in sentences(TEST) for w, _ in s]
    fresh = sum(w not in table for w in test_words)
    assert trained.metrics["test"]["unseen"]["count"] == fresh == 2


def test_the_report_prints_the_figures_and_the_metrics_file_keeps_them(tmp_path):
    spec = write_spec_and_data(tmp_path, SPEC, FILES)
    res = specc_cli("run", str(spec), "--out", str(tmp_path / "runs"))
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "runs" / "pos.json").read_text())
    base, val = doc["baseline"], doc["val"]
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in res.stdout.splitlines()
        if line.startswith("│")
    }
    assert rows["per-word baseline: accuracy"][1] == f"{base['per_word_accuracy']:.4f}"
    assert rows["per-word baseline: on unseen words"][1] == (
        f"{base['per_word_unseen_accuracy']:.4f}"
    )
    assert rows["accuracy on unseen words"][1] == f"{val['unseen_accuracy']:.4f}"
    assert rows["accuracy on unseen words"][2] == f"{doc['test']['unseen_accuracy']:.4f}"
    assert rows["unseen words (not in training)"][1:] == ["6 (33.3%)", "2 (28.6%)"]
    assert all("unseen_accuracy" in h["val"] for h in doc["history"])


def test_a_split_of_one_file_judges_unseen_words_against_its_training_part(tmp_path):
    spec = write_spec_and_data(
        tmp_path,
        SPEC.replace('dev="dev.conllu", test="test.conllu"', "").replace("epochs    = 3", ""),
        {"train.conllu": conllu_text(TRAIN + DEV)},
    )
    result = run_task(specc.load(spec), out_dir=tmp_path / "runs", steps=1)
    val = [[tuple(p) for p in s] for s in result.prepared.val_sentences]
    train = [s for s in sentences(TRAIN + DEV) if s not in val]
    assert len(train) + len(val) == 12
    known = {w for s in train for w, _ in s}
    held_out = [w for s in val for w, _ in s]
    assert result.metrics["val"]["unseen"]["count"] == sum(w not in known for w in held_out)
    table, common = per_word_guess(train)
    right = [table.get(w, common) == t for s in val for w, t in s]
    assert result.metrics["baseline"]["per_word_accuracy"] == pytest.approx(np.mean(right))
