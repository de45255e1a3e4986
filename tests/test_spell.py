"""`spell` and the layers that run along each word's letters (issue 17).

A layer on letters (B, T, C, N) must be the same layer run on each word alone:
no padding leaks in (a reversed layer starts at each word's last letter,
`return=last` reads the state after it), and positions past a sentence's end
give zeros. Checked against words run one by one on every backend, against
finite differences, against PyTorch's packed layers, and across backends. The
data side: each word's letters as the data spells it (unknown words too), the
character table, `<unk>` for rare words while training, and the errors a spec
gets for misusing any of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.data.spelling import char_vocab, letters, spell
from specc.diagnose.gradcheck import check_network, random_inputs
from specc.errors import SpecError
from specc.ir.accounting import analyse
from specc.ir.count import Count
from specc.ir.ops import spelling_feed
from specc.train.checkpoint import load_checkpoint
from specc.train.prepare import prepare

from helpers import SPECS, specc_cli

BACKENDS = ["numpy", "reference", "torch"]
SIZES = {"vocab": 9, "chars": 7, "labels": 4}


def backend_or_skip(name: str) -> str:
    if name == "torch":
        pytest.importorskip("torch")
    return name


def letters_model(op: str, reverse: bool, last: bool) -> str:
    ret = ", return=last" if last else ""
    rev = ", reverse=true" if reverse else ""
    return f"""
model m {{
    input words : tokens
    output y = words -> spell -> embedding(dim=4) -> {op}(hidden=3{rev}{ret})
}}
"""


def random_letters(rng: np.random.Generator, b: int, t: int, c: int, chars: int) -> np.ndarray:
    """Letters of a padded batch: words of 1..c letters, one of them three times, the
    last positions of two rows past their sentence's end (no letters at all)."""
    ids = rng.integers(1, chars, size=(b, t, c))
    lengths = rng.integers(1, c + 1, size=(b, t, 1))
    lengths[0, -2:] = 0
    lengths[-1, -1:] = 0
    lengths[1, 0] = c  # one word as long as the batch's longest
    letters = np.where(np.arange(c) < lengths, ids, 0)
    letters[-1, 1] = letters[1, 0]  # a word that occurs three times: it may run once
    letters[0, 0] = letters[1, 0]
    return letters


# ----- layers along the letters -----------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("last", [True, False], ids=["last", "sequence"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
@pytest.mark.parametrize("op", ["rnn", "lstm", "gru"])
def test_a_padded_batch_equals_its_words_run_one_by_one(op, reverse, last, backend) -> None:
    net = specc.loads(letters_model(op, reverse, last)).build(
        "m", SIZES, seed=1, dtype="float64", backend=backend_or_skip(backend)
    )
    net.flat_params += np.random.default_rng(2).normal(0, 0.3, net.flat_params.shape)
    rng = np.random.default_rng(0)
    b, t, c = 3, 4, 5
    words = rng.integers(0, SIZES["vocab"], size=(b, t))
    chars = random_letters(rng, b, t, c, SIZES["chars"])
    key = spelling_feed("words")
    y = net.forward({"words": words, key: chars})["y"]
    assert y.shape == ((b, t, 3) if last else (b, t, c, 3))
    for i in range(b):
        for j in range(t):
            n = int((chars[i, j] > 0).sum())
            if n == 0:  # past the sentence's end: nothing runs, zeros come out
                assert not y[i, j].any()
                continue
            alone = net.forward(
                {"words": words[i : i + 1, j : j + 1], key: chars[None, None, i, j, :n]}
            )
            want = alone["y"][0, 0]
            got = y[i, j] if last else y[i, j, :n]
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
            if not last:
                assert not y[i, j, n:].any(), "a state past the word's end leaked"


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("op", ["rnn", "lstm", "gru"])
def test_letter_layers_match_finite_differences(op, backend) -> None:
    text = f"""
model m {{
    input words : tokens
    w = words -> embedding(dim=3)
    c = words -> spell -> embedding(dim=4)
    f = c -> {op}(hidden=3, return=last)
    r = c -> {op}(hidden=2, reverse=true) -> {op}(hidden=2, return=last)
    output y = (w, f, r) -> concat -> {op}(hidden=3) -> dense(units=labels) -> softmax
}}
"""
    net = specc.loads(text).build("m", SIZES, seed=0, dtype="float64", backend=backend)
    inputs = random_inputs(net.model, np.random.default_rng(3), vocab=9, chars=7)
    results = check_network(net, inputs)
    assert {"c.E", "f.W_hh", "r.W_hh"} <= {r.name for r in results}
    worst = max(r.rel_error for r in results)
    assert worst < 1e-6, [(r.name, r.rel_error) for r in results if r.rel_error >= 1e-6]


CHAR_TAGGER = """
model m {
    input words : tokens
    w = words -> embedding(dim=5)
    c = words -> spell -> embedding(dim=4)
    f = c -> lstm(hidden=3, return=last)
    b = c -> gru(hidden=3, reverse=true, return=last)
    s = c -> rnn(hidden=2) -> rnn(hidden=2, reverse=true, return=last)
    x = (w, f, b, s) -> concat -> dropout(p=0.2)
    output y = x -> lstm(hidden=4) -> dense(units=labels) -> softmax
}
"""


def test_backends_agree_on_a_char_tagger_in_float64() -> None:
    """Values and every gradient (dropout on, padding in both axes) to 1e-9."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    inputs = random_inputs(specc.loads(CHAR_TAGGER).bound_model("m", SIZES), rng, 3, 5, 9, 7, 6)
    mask = (np.arange(5)[None, :] < np.array([[5], [3], [4]])).astype(np.float64)
    inputs[spelling_feed("words")] *= mask[:, :, None].astype(np.int64)
    upstream = rng.standard_normal((3, 5, 4))
    got = {}
    for backend in BACKENDS:
        net = specc.loads(CHAR_TAGGER).build("m", SIZES, seed=4, dtype="float64", backend=backend)
        out = net.vjp(inputs, {"y": upstream}, mask)["y"]
        got[backend] = (out, net.flat_grads.copy())
    want_y, want_g = got["numpy"]
    for backend in ("reference", "torch"):
        y, g = got[backend]
        assert np.abs(y - want_y).max() <= 1e-9 * np.abs(want_y).max(), backend
        assert np.abs(g - want_g).max() <= 1e-9 * np.abs(want_g).max(), backend


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_letter_layers_match_packed_pytorch_layers(cell) -> None:
    """A bidirectional layer over each word's letters, last states: torch runs the
    words as a packed batch; its h_n and the gradients of the letters' vectors match."""
    torch = pytest.importorskip("torch")
    text = f"""
model m {{
    input words : tokens
    c = words -> spell -> embedding(dim=4)
    f = c -> {cell}(hidden=3, return=last)
    b = c -> {cell}(hidden=3, reverse=true, return=last)
    output y = (f, b) -> concat
}}
"""
    net = specc.loads(text).build("m", SIZES, seed=0, dtype="float64")
    rng = np.random.default_rng(7)
    for name in net.params:
        if name.endswith(("b", "b_xh", "b_hh")):
            net.params[name][...] = 0.3 * rng.standard_normal(net.params[name].shape)
    words = rng.integers(0, 9, size=(2, 3))
    chars = random_letters(rng, 2, 3, 4, 7)
    g = rng.standard_normal((2, 3, 6))
    y = net.vjp({"words": words, spelling_feed("words"): chars}, {"y": g})["y"]

    flat = chars.reshape(6, 4)
    lengths = (flat > 0).sum(1)
    real = np.flatnonzero(lengths)
    table = torch.tensor(net.params["c.E"], requires_grad=True)
    x = table[torch.tensor(flat[real])]
    mod = getattr(torch.nn, cell.upper())(
        4, 3, batch_first=True, bidirectional=True, dtype=torch.float64
    )
    with torch.no_grad():
        for suffix, node in (("", "f"), ("_reverse", "b")):
            getattr(mod, f"weight_ih_l0{suffix}").copy_(torch.tensor(net.params[f"{node}.W_xh"].T))
            getattr(mod, f"weight_hh_l0{suffix}").copy_(torch.tensor(net.params[f"{node}.W_hh"].T))
            b_ih = net.params.get(f"{node}.b", net.params.get(f"{node}.b_xh"))
            b_hh = net.params.get(f"{node}.b_hh", 0 * b_ih)
            getattr(mod, f"bias_ih_l0{suffix}").copy_(torch.tensor(b_ih))
            getattr(mod, f"bias_hh_l0{suffix}").copy_(torch.tensor(b_hh))
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(lengths[real]), batch_first=True, enforce_sorted=False
    )
    _, state = mod(packed)
    h_n = state[0] if cell == "lstm" else state
    theirs = torch.zeros((6, 6), dtype=torch.float64)
    theirs[torch.tensor(real)] = torch.cat([h_n[0], h_n[1]], dim=1)
    (theirs * torch.tensor(g.reshape(6, 6))).sum().backward()
    np.testing.assert_allclose(y.reshape(6, 6), theirs.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(net.grads["c.E"], table.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_a_model_that_spells_needs_the_letters() -> None:
    net = specc.loads(letters_model("rnn", False, True)).build("m", SIZES)
    with pytest.raises(
        ValueError, match=r"spells its words: give their letters as inputs\['words:chars'\]"
    ):
        net.forward({"words": np.zeros((1, 2), np.int64)})
    with pytest.raises(ValueError, match=r"takes integer character ids of shape \(B, T, C\)"):
        net.forward(
            {"words": np.zeros((1, 2), np.int64), "words:chars": np.zeros((1, 3, 2), np.int64)}
        )


# ----- shapes and explain ------------------------------------------------------------


def test_shapes_and_explain_count_per_letter() -> None:
    program = specc.load(SPECS / "char_tagger.spec")
    model = program.model("char_tagger")
    shapes = {n.name: n.shape.text() for n in model.nodes}
    assert shapes["spell"] == "(B, T, C)"
    assert shapes["c"] == "(B, T, C, 32)"
    assert shapes["cf"] == shapes["cb"] == "(B, T, 64)"
    assert shapes["x"] == "(B, T, 228)"
    report = analyse(model)
    info = {n.name: n for n in report.nodes}
    assert info["c"].param_count == Count.symbol("chars") * 32
    lstm_macs = (32 * 64 + 64 * 64) * 4
    assert info["cf"].macs_token == Count.symbol("C") * lstm_macs
    # return=last keeps c_t, the gates, tanh(c_t) and h_t of every letter: 7·B·T·C·H
    out = Count.product(("B", "T", 64))
    assert info["cf"].activations == out + Count.product(("B", "T", "C", 64)) * 7
    bound = analyse(model, program.task())
    assert bound.batch_values["C"] == 10
    out = specc_cli("explain", str(SPECS / "char_tagger.spec"))
    assert out.returncode == 0, out.stderr
    assert "C=10 (assumed" in out.stdout and "C unbound" not in out.stdout


# ----- the data: letters, the character table, unknown words -------------------------

CONLLU_TRAIN = """\
1\tThe\tthe\tDET\t_\t_\t_\t_\t_\t_
2\tcat\tcat\tNOUN\t_\t_\t_\t_\t_\t_
3\tsat\tsit\tVERB\t_\t_\t_\t_\t_\t_

1\tThe\tthe\tDET\t_\t_\t_\t_\t_\t_
2\tdog\tdog\tNOUN\t_\t_\t_\t_\t_\t_
3\tsat\tsit\tVERB\t_\t_\t_\t_\t_\t_
4\tdown\tdown\tADV\t_\t_\t_\t_\t_\t_

1\tA\ta\tDET\t_\t_\t_\t_\t_\t_
2\tcat\tcat\tNOUN\t_\t_\t_\t_\t_\t_
3\truns\trun\tVERB\t_\t_\t_\t_\t_\t_
"""
CONLLU_DEV = """\
1\tThe\tthe\tDET\t_\t_\t_\t_\t_\t_
2\tzebra\tzebra\tNOUN\t_\t_\t_\t_\t_\t_
3\tsat\tsit\tVERB\t_\t_\t_\t_\t_\t_
"""


def tagging_program(
    tmp_path: Path, embedding: str = "embedding(dim=4)", spell: str = "spell"
) -> specc.Program:
    (tmp_path / "train.conllu").write_text(CONLLU_TRAIN, encoding="utf-8")
    (tmp_path / "dev.conllu").write_text(CONLLU_DEV, encoding="utf-8")
    text = f"""
model m {{
    input words : tokens
    w = words -> {embedding}
    c = words -> {spell} -> embedding(dim=3) -> rnn(hidden=3, return=last)
    output y = (w, c) -> concat -> dense(units=labels) -> softmax
}}
task t : tag {{
    model = m
    data = conllu("train.conllu", dev="dev.conllu")
    batch = 2
    epochs = 1
}}
"""
    (tmp_path / "t.spec").write_text(text, encoding="utf-8")
    return specc.load(tmp_path / "t.spec")


def test_each_word_is_spelled_as_the_data_writes_it_unknown_words_included(tmp_path) -> None:
    program = tagging_program(tmp_path)
    task = program.task()
    prepared = prepare(task, program.base_dir, program.model(task.model))
    chars = prepared.chars
    assert chars is not None and prepared.sizes["chars"] == len(chars)
    assert chars.tokens[:2] == ("<pad>", "<unk>")
    for epoch_batch in [prepared.batch(0, i) for i in range(prepared.steps_per_epoch)]:
        assert epoch_batch.chars.shape[:2] == epoch_batch.inputs.shape
    (dev,) = prepared.val
    words = prepared.vocab
    # "zebra" is no word of the table, yet it is spelled; "z" and "b" occur in no
    # training word, so they read <unk>
    zebra = dev.chars[0, 1]
    assert dev.inputs[0, 1] == words.unk_id
    assert chars.decode(zebra) == ["<unk>", "e", "<unk>", "r", "a"]
    assert dev.chars.shape[2] == 5  # the batch's longest word
    the = dev.chars[0, 0]
    assert "".join(chars.decode(the[the > 0])) == "The"


def test_the_letters_of_the_data_are_code_points_or_their_decomposition() -> None:
    assert list(letters("한국어")) == ["한", "국", "어"]
    assert len(letters("한국어", nfd=True)) == 8  # 한 = ㅎ ㅏ ㄴ, 국 = ㄱ ㅜ ㄱ, 어 = ㅇ ㅓ
    table = char_vocab(["한국", "국어"], nfd=True)
    assert spell(["국"], table, nfd=True).shape == (1, 3)
    plain = char_vocab(["한국", "국어"])
    np.testing.assert_array_equal(
        spell(["국", "한국어"], plain),
        [[plain["국"], 0, 0], [plain["한"], plain["국"], plain["어"]]],
    )


def test_unk_replaces_rare_words_while_training_only_and_the_same_way_every_time(tmp_path) -> None:
    program = tagging_program(tmp_path, "embedding(dim=4, unk=0.5)")
    task = program.task()
    prepared = prepare(task, program.base_dir, program.model(task.model))
    words = prepared.vocab
    assert "dog" in words and "runs" in words  # min_count is 1 with unk: singletons stay
    seen_once = {words[w] for w in ("dog", "down", "A", "runs")}
    replaced = kept = 0
    for epoch in range(40):
        for i in range(prepared.steps_per_epoch):
            batch = prepared.batch(epoch, i)
            again = prepared.batch(epoch, i)
            np.testing.assert_array_equal(batch.inputs, again.inputs)  # resumable
            clean = prepared.batch(epoch, i).chars  # letters never change
            np.testing.assert_array_equal(batch.chars, clean)
            for row, (ids, m) in enumerate(zip(batch.inputs, batch.mask, strict=True)):
                for j, word_id in enumerate(ids[m > 0]):
                    spelled = "".join(
                        prepared.chars.decode(batch.chars[row, j][batch.chars[row, j] > 0])
                    )
                    if word_id == words.unk_id:
                        assert words[spelled] in seen_once, spelled
                        replaced += 1
                    elif words[spelled] in seen_once:
                        kept += 1
                    else:
                        assert words.tokens[word_id] == spelled
    assert 0.4 < replaced / (replaced + kept) < 0.6
    (dev,) = prepared.val  # held-out batches read every known word as itself
    assert words.tokens[dev.inputs[0, 0]] == "The"


def test_min_count_leaves_rare_words_out_of_the_table(tmp_path) -> None:
    default = tagging_program(tmp_path)
    task = default.task()
    table = prepare(task, default.base_dir, default.model(task.model)).vocab
    assert "dog" not in table and "cat" in table  # seen once: <unk>, as always
    strict = tagging_program(tmp_path, "embedding(dim=4, min_count=3)")
    table = prepare(task, strict.base_dir, strict.model(task.model)).vocab
    assert "cat" not in table and "sat" not in table and list(table)[:2] == ["<pad>", "<unk>"]


def test_a_checkpoint_keeps_the_letters_and_tag_spells_a_new_word(tmp_path) -> None:
    program = tagging_program(tmp_path)
    run = program.train(steps=2, out_dir=tmp_path / "out")
    ckpt = load_checkpoint(run.checkpoint)
    task = program.task()
    assert ckpt.chars == prepare(task, program.base_dir, program.model(task.model)).chars
    with np.load(run.checkpoint, allow_pickle=False) as data:
        stored = json.loads(data["__chars__"].tobytes())
    assert stored[:2] == ["<pad>", "<unk>"] and "c" in stored
    out = specc_cli("tag", str(run.checkpoint), "The xylophone sat")
    assert out.returncode == 0, out.stderr
    assert "xylophone" in out.stdout


# ----- errors a spec gets, at their place ------------------------------------------


def first_error(text: str, tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "data.txt").write_text("some text to read " * 40, encoding="utf-8")
    (tmp_path / "train.conllu").write_text(CONLLU_TRAIN, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        specc.loads(text, path="bad.spec", base_dir=tmp_path)
    first = info.value.diagnostics[0]
    return f"{first.span.line}:{first.span.column}", first.message


def one_model(*lines: str, task: str = "") -> str:
    return (
        "model m {\n    input words : tokens\n"
        + "\n".join("    " + x for x in lines)
        + "\n}\n"
        + task
    )


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        pytest.param(
            one_model(
                "c = words -> spell -> embedding(dim=3) -> rnn(hidden=4)",
                "output y = c -> dense(units=vocab) -> softmax",
                task='task t : next_char {\n    model = m\n    data = text("data.txt")\n}\n',
            ),
            "3:18",
            "spell needs words with their spelling, but task 't' reads text data: a next_char "
            "task's tokens are characters already, not words",
            id="spell-on-characters",
        ),
        pytest.param(
            one_model(
                "c = words -> spell -> embedding(dim=3) -> rnn(hidden=4, return=last)",
                "output y = c -> dense(units=labels) -> softmax",
                task="task t : tag {\n    model = m\n    data = copy(length=5)\n}\n",
            ),
            "3:18",
            "spell needs words with their spelling, but task 't' reads copy data: copy data has "
            "no word strings",
            id="data-without-word-strings",
        ),
        pytest.param(
            "model m {\n    input s : sequence[3]\n    output y = s -> spell\n}\n",
            "3:21",
            "spell reads the word ids of a `tokens` input (B, T), but its input is floats "
            "(B, T, 3)",
            id="spell-on-floats",
        ),
        pytest.param(
            one_model("output y = words -> spell -> spell"),
            "3:34",
            "spell reads the word ids of a `tokens` input (B, T), but its input is ids (B, T, C)",
            id="spell-twice",
        ),
        pytest.param(
            one_model("output y = words -> spell -> embedding(dim=3, unk=0.2)"),
            "3:34",
            "min_count and unk apply to an embedding of words, but this one looks up chars "
            "(B, T, C)",
            id="word-options-on-letters",
        ),
        pytest.param(
            one_model(
                "output y = words -> spell -> embedding(dim=3) -> dense(units=2) -> rnn(hidden=2)"
            ),
            None,
            None,
            id="dense-on-letters-is-fine",
        ),
    ],
)
def test_misuse_is_a_located_error(text, where, message, tmp_path) -> None:
    if where is None:
        specc.loads(text, path="ok.spec", base_dir=tmp_path)
        return
    assert first_error(text, tmp_path) == (where, message)


def test_the_shipped_char_tagger_trains_and_the_word_tagger_still_does(tmp_path) -> None:
    for path in ("char_tagger.spec", "tagger.spec"):
        run = specc.load(SPECS / path).train(steps=2, out_dir=tmp_path)
        assert np.isfinite(run.metrics["val"]["loss"])


def test_the_letters_reach_every_backend_the_same(tmp_path) -> None:
    """Training steps of the shipped char tagger give the same loss on the fast and
    the reference backend (float32: equal to rounding)."""
    program = specc.load(SPECS / "char_tagger.spec")
    runs = {
        b: program.train(steps=2, backend=b, out_dir=tmp_path / b) for b in ("numpy", "reference")
    }
    assert runs["numpy"].metrics["val"]["loss"] == pytest.approx(
        runs["reference"].metrics["val"]["loss"], rel=1e-4
    )


def test_the_training_step_of_the_fast_backend_gives_the_reference_gradients() -> None:
    """The fast path (`loss_and_grads`: caches consumed, gradients written fresh) over
    words of many lengths, so the letters run in several groups, in float64."""
    rng = np.random.default_rng(9)
    model = specc.loads(CHAR_TAGGER).bound_model("m", SIZES)
    inputs = random_inputs(model, rng, batch=4, time=6, vocab=9, chars=7, letters=11)
    targets = rng.integers(0, SIZES["labels"], size=(4, 6))
    mask = (np.arange(6)[None, :] < np.array([[6], [2], [5], [4]])).astype(np.float64)
    letters = inputs[spelling_feed("words")]
    letters *= mask[:, :, None].astype(np.int64)
    letters[3, 2] = letters[0, 4] = letters[2, 0]  # the same word thrice
    got = {}
    for backend in ("numpy", "reference"):
        net = specc.loads(CHAR_TAGGER).build("m", SIZES, seed=2, dtype="float64", backend=backend)
        net.rng = np.random.default_rng(0)
        got[backend] = net.loss_and_grads(inputs, targets, mask)
    (loss, grads), (want_loss, want) = got["numpy"], got["reference"]
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for key, g in want.items():
        np.testing.assert_allclose(grads[key], g, rtol=1e-9, atol=1e-12, err_msg=key)


def test_a_word_that_occurs_several_times_runs_once_unless_dropout_tells_them_apart() -> None:
    """Occurrences of one spelling share the letters layer's result where its input is
    the same for each (from `spell` through the embedding); after dropout they differ."""
    text = letters_model("lstm", False, True)
    net = specc.loads(text).build("m", SIZES, seed=0, dtype="float64")
    assert net.kernels["y"].alike
    dropped = text.replace("embedding(dim=4) ->", "embedding(dim=4) -> dropout(p=0.5) ->")
    other = specc.loads(dropped).build("m", SIZES, seed=0, dtype="float64")
    assert not other.kernels["y"].alike
    letters = np.zeros((2, 3, 4), np.int64)
    letters[0, 0, :3] = letters[1, 2, :3] = [3, 4, 5]
    letters[0, 1, :2] = [2, 2]
    feed = {"words": np.ones((2, 3), np.int64), spelling_feed("words"): letters}
    y = net.forward(feed)["y"]
    np.testing.assert_array_equal(y[0, 0], y[1, 2])
    z = other.forward(feed, train=True)["y"]
    assert not np.array_equal(z[0, 0], z[1, 2])


def test_diagnose_measures_the_sentence_layers_and_unroll_says_what_t_counts() -> None:
    from specc.diagnose.flow import rnn_nodes

    model = specc.load(SPECS / "char_tagger.spec").model("char_tagger")
    assert [n.name for n in rnn_nodes(model)] == ["fwd", "bwd"]
    out = specc_cli("explain", str(SPECS / "char_tagger.spec"), "--unroll", "3")
    assert out.returncode == 0, out.stderr
    assert "t counts the letters of each word" in out.stdout
    assert "return=last: y = h_3, the last state computed, shape (B, T, 64)" in out.stdout


def test_an_exported_tagger_takes_the_letters_and_keeps_the_characters(tmp_path) -> None:
    """`specc export` of a spelled checkpoint: the graph takes `words:chars`, the
    character table rides in the metadata, and onnxruntime tags as specc does."""
    ort = pytest.importorskip("onnxruntime")
    program = tagging_program(tmp_path)
    run = program.train(steps=2, out_dir=tmp_path / "out")
    out = specc_cli("export", str(run.checkpoint), "-o", str(tmp_path / "t.onnx"))
    assert out.returncode == 0, out.stderr
    assert "inputs words, words:chars, lengths" in out.stdout
    sess = ort.InferenceSession(str(tmp_path / "t.onnx"), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    ckpt = load_checkpoint(run.checkpoint)
    assert json.loads(meta["specc.chars"]) == list(ckpt.chars.tokens)
    sentence = ["The", "zebra", "sat"]
    words = ckpt.vocab.encode(sentence)[None]
    letters = spell(sentence, ckpt.chars)[None]
    (got,) = sess.run(None, {"words": words, "words:chars": letters, "lengths": np.array([3])})
    want = ckpt.network().forward({"words": words, "words:chars": letters})["y"]
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_batch_with_no_words_gives_zeros_and_no_gradient(backend) -> None:
    net = specc.loads(letters_model("lstm", True, True)).build(
        "m", SIZES, dtype="float64", backend=backend_or_skip(backend)
    )
    feed = {"words": np.zeros((2, 3), np.int64), "words:chars": np.zeros((2, 3, 4), np.int64)}
    y = net.vjp(feed, {"y": np.ones((2, 3, 3))})["y"]
    assert y.shape == (2, 3, 3) and not y.any()
    assert not net.flat_grads.any()
