"""Tests for the data loaders, synthetic tasks, vocabularies and shipped data files."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from specc.data.conllu import load_conllu
from specc.data.synthetic import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_baseline,
    copy_memory,
)
from specc.data.tagged import load_tagged
from specc.data.text import BUILTIN_TEXTS, builtin_text, load_text
from specc.data.vocab import PAD, UNK, WORD_SPECIALS, Vocab
from specc.errors import DataError, SpecError

from helpers import SPECS, write_file

DATA_DIR = SPECS / "data"
UPOS = {
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
}  # fmt: skip


def rendered(exc: pytest.ExceptionInfo[DataError]) -> str:
    return exc.value.render()


# ---------------------------------------------------------------- text


def test_load_text_normalises_crlf_and_bom(tmp_path: Path) -> None:
    path = write_file(tmp_path / "a.txt", b"\xef\xbb\xbfone\r\ntwo\r\n")
    assert load_text(path) == "one\ntwo\n"
    assert load_text(str(path)) == "one\ntwo\n"


def test_load_text_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(DataError) as exc:
        load_text(path)
    assert rendered(exc) == f"{path}: error: no such file"
    assert isinstance(exc.value, SpecError)


def test_load_text_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="directory"):
        load_text(tmp_path)


def test_load_text_invalid_utf8_reports_offset_and_line(tmp_path: Path) -> None:
    path = write_file(tmp_path / "latin1.txt", b"hello\ncaf\xe9 au lait\n")
    with pytest.raises(DataError) as exc:
        load_text(path)
    text = rendered(exc)
    assert text.startswith(f"{path}:2: error:")
    assert "byte offset 9" in text
    assert "0xe9" in text


@pytest.mark.parametrize("content", ["", "  \n\n\t\n"])
def test_load_text_empty(tmp_path: Path, content: str) -> None:
    path = write_file(tmp_path / "empty.txt", content)
    with pytest.raises(DataError, match=r"empty|whitespace"):
        load_text(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_load_text_unreadable(tmp_path: Path) -> None:
    path = write_file(tmp_path / "secret.txt", "x")
    path.chmod(0)
    try:
        with pytest.raises(DataError, match="permission"):
            load_text(path)
    finally:
        path.chmod(0o600)


def test_builtin_python_docs() -> None:
    assert BUILTIN_TEXTS == ("python-docs",)
    first = builtin_text("python-docs")
    assert first == builtin_text("python-docs")
    assert len(first) > 100_000
    assert "\r" not in first
    words = Counter(first.split())
    assert words["the"] > 1000 and words["of"] > 200  # running English prose
    assert "def " in first and ">>>" in first  # and code


def test_builtin_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError, match="python-docs"):
        builtin_text("shakespeare")


# ---------------------------------------------------------------- tagged


def test_load_tagged_basic(tmp_path: Path) -> None:
    path = write_file(
        tmp_path / "t.txt",
        "# a comment\n\nThe/DET cat/NOUN sat/VERB ./PUNCT\r\n  \n"
        "Add/VERB 1/2/NUM cup/NOUN and/or/CCONJ more/ADJ\n",
    )
    sents = load_tagged(path)
    assert sents == [
        [("The", "DET"), ("cat", "NOUN"), ("sat", "VERB"), (".", "PUNCT")],
        [("Add", "VERB"), ("1/2", "NUM"), ("cup", "NOUN"), ("and/or", "CCONJ"), ("more", "ADJ")],
    ]


@pytest.mark.parametrize(
    ("token", "why"),
    [("cat", "no /TAG"), ("/NOUN", "empty word"), ("cat/", "empty tag")],
)
def test_load_tagged_bad_token(tmp_path: Path, token: str, why: str) -> None:
    path = write_file(tmp_path / "t.txt", f"# header\nA/DET dog/NOUN\nThe/DET {token} ran/VERB\n")
    with pytest.raises(DataError) as exc:
        load_tagged(path)
    text = rendered(exc)
    assert text.startswith(f"{path}:3: error:")
    assert repr(token) in text and why in text


def test_load_tagged_empty(tmp_path: Path) -> None:
    path = write_file(tmp_path / "t.txt", "# only a comment\n\n")
    with pytest.raises(DataError, match="no sentences"):
        load_tagged(path)


def test_load_tagged_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_tagged(tmp_path / "missing.txt")


# ---------------------------------------------------------------- conllu

CONLLU = (
    "# newdoc id = test\n"
    "# sent_id = 1\n"
    "# text = I don't know.\n"
    "1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_\n"
    "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_\n"
    "3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_\n"
    "4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No\n"
    "5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_\n"
    "\n"
    "\n"
    "# sent_id = 2\n"
    "1\tTom\tTom\tPROPN\tNNP\t_\t2\tnsubj\t2:nsubj\t_\n"
    "2\tate\teat\tVERB\t_\t_\t0\troot\t0:root\t_\n"
    "3\tfish\tfish\tNOUN\tNN\t_\t2\tobj\t2:obj\t_\n"
    "4\tand\tand\tCCONJ\tCC\t_\t5\tcc\t4.1:cc\t_\n"
    "5\tMia\tMia\tPROPN\tNNP\t_\t2\tconj\t4.1:nsubj\t_\n"
    "5.1\tate\teat\tVERB\tVBD\t_\t_\t_\t2:conj\t_\n"
    "6\trice\trice\tNOUN\tNN\t_\t5\torphan\t4.1:obj\t_"
)


def test_load_conllu_upos_edge_cases(tmp_path: Path) -> None:
    # comments, a multiword range, an empty node, "_" fields, two blank lines
    # between sentences and no newline at all after the last line
    path = write_file(tmp_path / "s.conllu", CONLLU)
    assert load_conllu(path) == [
        [("I", "PRON"), ("do", "AUX"), ("n't", "PART"), ("know", "VERB"), (".", "PUNCT")],
        [("Tom", "PROPN"), ("ate", "VERB"), ("fish", "NOUN"), ("and", "CCONJ"), ("Mia", "PROPN"),
         ("rice", "NOUN")],
    ]  # fmt: skip


def test_load_conllu_xpos_maps_missing_to_x(tmp_path: Path) -> None:
    path = write_file(tmp_path / "s.conllu", CONLLU + "\n")
    sents = load_conllu(path, column="xpos")
    assert [t for _, t in sents[0]] == ["PRP", "VBP", "RB", "VB", "."]
    assert sents[1][1] == ("ate", "X")


def test_load_conllu_empty_column(tmp_path: Path) -> None:
    path = write_file(tmp_path / "s.conllu", "1\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_\n\n")
    with pytest.raises(DataError) as exc:
        load_conllu(path, column="xpos")
    assert rendered(exc) == f"{path}: error: column xpos is empty"
    assert load_conllu(path) == [[("Hi", "INTJ")]]


def test_load_conllu_bad_field_count(tmp_path: Path) -> None:
    bad = CONLLU.replace("3\tfish\tfish\tNOUN\tNN\t_\t2\tobj\t2:obj\t_", "3\tfish\tNOUN")
    path = write_file(tmp_path / "s.conllu", bad)
    with pytest.raises(DataError) as exc:
        load_conllu(path)
    assert rendered(exc).startswith(f"{path}:15: error: expected 10 tab-separated fields, found 3")


def test_load_conllu_spaces_instead_of_tabs(tmp_path: Path) -> None:
    path = write_file(tmp_path / "s.conllu", "1 Hi hi INTJ UH _ 0 root _ _\n")
    with pytest.raises(DataError, match="tabs") as exc:
        load_conllu(path)
    assert exc.value.line == 1


@pytest.mark.parametrize("bad_id", ["x", "0", "1a", "²"])
def test_load_conllu_non_integer_id(tmp_path: Path, bad_id: str) -> None:
    path = write_file(tmp_path / "s.conllu", f"# c\n{bad_id}\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n")
    with pytest.raises(DataError) as exc:
        load_conllu(path)
    assert rendered(exc).startswith(f"{path}:2: error: ID")


@pytest.mark.parametrize("bad_id", ["3-x", "4-2", "1.x", "1.0"])
def test_load_conllu_bad_range_or_empty_node(tmp_path: Path, bad_id: str) -> None:
    path = write_file(
        tmp_path / "s.conllu",
        f"1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n{bad_id}\ta\t_\t_\t_\t_\t_\t_\t_\t_\n",
    )
    with pytest.raises(DataError, match="ID") as exc:
        load_conllu(path)
    assert exc.value.line == 2


def test_load_conllu_missing_blank_line(tmp_path: Path) -> None:
    row = "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n"
    path = write_file(tmp_path / "s.conllu", row + row)
    with pytest.raises(DataError, match="expected word ID 2") as exc:
        load_conllu(path)
    assert exc.value.line == 2


def test_load_conllu_empty_file_and_bad_column(tmp_path: Path) -> None:
    path = write_file(tmp_path / "s.conllu", "# nothing here\n\n")
    with pytest.raises(DataError, match="no sentences"):
        load_conllu(path)
    with pytest.raises(ValueError, match="upos, xpos"):
        load_conllu(path, column="deprel")


def test_load_conllu_invalid_utf8(tmp_path: Path) -> None:
    first = b"1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n"
    path = write_file(tmp_path / "s.conllu", first + b"2\t\xff\n")
    with pytest.raises(DataError, match=f"byte offset {len(first) + 2}$") as exc:
        load_conllu(path)
    assert exc.value.line == 2


# ---------------------------------------------------------------- synthetic


@pytest.mark.parametrize("length", [2, 7, 50])
def test_adding_problem_structure(length: int) -> None:
    x, y = adding_problem(length, 300, seed=3)
    assert x.shape == (300, length, 2) and x.dtype == np.float64
    assert y.shape == (300, 1) and y.dtype == np.float64
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(markers)) <= {0.0, 1.0}
    assert (markers.sum(axis=1) == 2).all()
    half = length // 2
    assert (markers[:, :half].sum(axis=1) == 1).all()
    assert (markers[:, half:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1))


def test_adding_problem_seeded_and_baseline() -> None:
    x1, y1 = adding_problem(20, 50, seed=7)
    x2, y2 = adding_problem(20, 50, seed=7)
    x3, _ = adding_problem(20, 50, seed=8)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    _, y = adding_problem(10, 40_000, seed=0)
    assert math.isclose(ADDING_BASELINE_MSE, 1 / 6)
    assert float(((y - 1.0) ** 2).mean()) == pytest.approx(ADDING_BASELINE_MSE, abs=0.01)


@pytest.mark.parametrize(("length", "samples"), [(1, 5), (10, 0)])
def test_adding_problem_rejects_bad_sizes(length: int, samples: int) -> None:
    with pytest.raises(ValueError):
        adding_problem(length, samples, seed=0)


@pytest.mark.parametrize(("length", "symbols"), [(0, 1), (5, 8), (30, 3)])
def test_copy_memory_layout(length: int, symbols: int) -> None:
    inputs, targets = copy_memory(length, symbols, 40, seed=1)
    total = length + 20
    assert inputs.shape == targets.shape == (40, total)
    assert inputs.dtype == targets.dtype == np.int64
    shown = inputs[:, :10]
    assert ((shown >= 1) & (shown <= symbols)).all()
    assert (inputs[:, 10 : 10 + length] == 0).all()
    assert (inputs[:, 10 + length] == symbols + 1).all()
    assert (inputs[:, 11 + length :] == 0).all()
    assert inputs.shape[1] - (11 + length) == 9
    assert (targets[:, : total - 10] == 0).all()
    np.testing.assert_array_equal(targets[:, total - 10 :], shown)
    assert inputs.max() == symbols + 1  # input vocabulary: symbols + 2 ids
    assert targets.max() <= symbols  # labels: symbols + 1 ids


def test_copy_memory_seeded() -> None:
    a = copy_memory(12, 8, 10, seed=5)
    b = copy_memory(12, 8, 10, seed=5)
    c = copy_memory(12, 8, 10, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_copy_baseline() -> None:
    assert copy_baseline(100, 8) == pytest.approx(10 * math.log(8) / 120)
    assert copy_baseline(0, 1) == 0.0
    # The memoryless predictor: certain blank, then uniform over the symbols.
    _, targets = copy_memory(30, 8, 20, seed=0)
    probs = np.where(targets == 0, 1.0, 1 / 8)
    assert float(-np.log(probs).mean()) == pytest.approx(copy_baseline(30, 8))
    with pytest.raises(ValueError):
        copy_baseline(10, 0)


@pytest.mark.parametrize(("length", "symbols", "samples"), [(-1, 8, 1), (5, 0, 1), (5, 8, 0)])
def test_copy_memory_rejects_bad_sizes(length: int, symbols: int, samples: int) -> None:
    with pytest.raises(ValueError):
        copy_memory(length, symbols, samples, seed=0)


# ---------------------------------------------------------------- vocab


def test_vocab_order_is_deterministic() -> None:
    vocab = Vocab.build(["b", "a", "c", "a", "b", "a", "d"], specials=WORD_SPECIALS)
    assert vocab.tokens == (PAD, UNK, "a", "b", "c", "d")
    assert vocab.index(PAD) == 0
    assert len(vocab) == 6 and list(vocab) == list(vocab.tokens)
    assert Vocab.build(["d", "c", "a", "b", "a", "b", "a"], specials=WORD_SPECIALS) == vocab


def test_vocab_built_from_training_split_only() -> None:
    train = ["the", "cat", "sat", "on", "the", "mat"]
    test = ["the", "dog", "sat"]
    vocab = Vocab.build(train, specials=WORD_SPECIALS)
    assert "dog" not in vocab
    ids = vocab.encode(test)
    assert ids.dtype == np.int64
    assert vocab.decode(ids) == ["the", UNK, "sat"]
    assert vocab.unk_id == 1


def test_vocab_without_unk_raises_on_unknown() -> None:
    chars = Vocab.build("hello world")
    assert chars.unk_id is None
    assert "".join(chars.decode(chars.encode("hello"))) == "hello"
    with pytest.raises(KeyError, match="'z'"):
        chars.index("z")
    with pytest.raises(KeyError):
        chars["z"]
    with pytest.raises(IndexError):
        chars.decode([-1])
    with pytest.raises(IndexError):
        chars.decode([len(chars)])


def test_vocab_min_count_sends_rare_words_to_unk() -> None:
    vocab = Vocab.build(["a", "a", "b", "c", "c", "c"], specials=WORD_SPECIALS, min_count=2)
    assert vocab.tokens == (PAD, UNK, "c", "a")
    assert vocab.index("b") == vocab.unk_id


def test_vocab_specials_are_not_duplicated() -> None:
    vocab = Vocab.build([UNK, "x", UNK], specials=WORD_SPECIALS)
    assert vocab.tokens == (PAD, UNK, "x")
    with pytest.raises(ValueError):
        Vocab.build([], specials=(PAD, PAD))


def test_vocab_json_round_trip() -> None:
    vocab = Vocab.build(["to", "be", "or", "not", "to", "be"], specials=WORD_SPECIALS)
    data = json.loads(json.dumps(vocab.to_json()))
    assert data == list(vocab.tokens)
    again = Vocab.from_json(data)
    assert again == vocab and again.tokens == vocab.tokens
    assert again.index("question") == vocab.unk_id


@pytest.mark.parametrize("data", [{"a": 0}, ["a", 1], ["a", "a"], "abc"])
def test_vocab_from_json_rejects_garbage(data: object) -> None:
    with pytest.raises(ValueError):
        Vocab.from_json(data)


# ---------------------------------------------------------------- shipped files


def test_shipped_tagged_corpus() -> None:
    sents = load_tagged(DATA_DIR / "tagged_corpus.txt")
    assert 300 <= len(sents) <= 400
    tags = Counter(tag for sent in sents for _, tag in sent)
    assert len(tags) >= 12
    assert set(tags) <= UPOS
    assert all(3 <= len(sent) <= 25 for sent in sents)
    assert len({" ".join(w for w, _ in sent) for sent in sents}) == len(sents)


def test_shipped_corpus_is_learnable() -> None:
    # A per-word most-frequent-tag lookup fit on 90% must clearly beat always
    # answering the majority tag on the held-out 10%: the corpus is consistent.
    sents = load_tagged(DATA_DIR / "tagged_corpus.txt")
    cut = len(sents) * 9 // 10
    train, test = sents[:cut], sents[cut:]
    by_word: dict[str, Counter[str]] = {}
    for sent in train:
        for word, tag in sent:
            by_word.setdefault(word.lower(), Counter())[tag] += 1
    majority = Counter(tag for sent in train for _, tag in sent).most_common(1)[0][0]
    pairs = [pair for sent in test for pair in sent]
    base = sum(tag == majority for _, tag in pairs) / len(pairs)
    lookup = sum(
        (by_word[w.lower()].most_common(1)[0][0] if w.lower() in by_word else majority) == tag
        for w, tag in pairs
    ) / len(pairs)
    assert lookup > base + 0.4


def test_shipped_conllu() -> None:
    path = DATA_DIR / "sample.conllu"
    upos = load_conllu(path)
    xpos = load_conllu(path, column="xpos")
    assert 60 <= len(upos) <= 120
    assert [[w for w, _ in s] for s in upos] == [[w for w, _ in s] for s in xpos]
    assert {t for s in upos for _, t in s} <= UPOS
    assert "X" not in {t for s in xpos for _, t in s}  # every XPOS is filled in
    lines = path.read_text(encoding="utf-8").split("\n")
    ids = [line.split("\t")[0] for line in lines if line and not line.startswith("#")]
    assert any("-" in i for i in ids) and any("." in i for i in ids)
    assert sum(line.startswith("# sent_id = ") for line in lines) == len(upos)
    assert sum(line.startswith("# text = ") for line in lines) == len(upos)
    roots = [line for line in lines if line.count("\t") == 9 and line.split("\t")[6] == "0"]
    assert len(roots) == len(upos)  # one root per sentence
