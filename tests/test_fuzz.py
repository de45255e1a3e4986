"""Robustness properties of the front end, the `check` command and the formatter.

* Mutated specs (tokens and characters deleted, duplicated, swapped, inserted,
  replaced; files truncated) never make `specc.loads` raise anything but
  `SpecError`, and never make `specc check` let an exception escape.
* `format_spec` is idempotent, keeps every comment, and the text it prints
  compiles to the same IR as what it was given, for the example specs and
  for randomly generated valid specs with comments and whitespace everywhere.

The default run keeps each property small; the `slow` tests run the same
properties at volume (`pytest -m slow tests/test_fuzz.py`).
"""

from __future__ import annotations

import contextlib
import io
import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import specc
from specc import cli
from specc.errors import SpecError
from specc.frontend.fmt import format_spec
from specc.frontend.lower import lower
from specc.frontend.syntax import parse

from helpers import SPECS
from mutants import CHARS, MUTATIONS, VOCAB, apply_mutation

# ------------------------------------------------------------------ corpora

# The normative examples of the language document, verbatim (language.md).
LANGUAGE_EXAMPLES = {
    "language-char_rnn": """\
# Predict the next character of a text, one step at a time.
model char_rnn {
    input  chars : tokens                       # (batch, time) integer ids
    output next  = chars
        -> embedding(dim=32)
        -> rnn(hidden=128, activation=tanh)     # h_t = tanh(x_t W_xh + h_{t-1} W_hh + b)
        -> batchnorm                            # Algorithm 1 of Ioffe & Szegedy
        -> leaky_relu(slope=0.01)
        -> dense(units=vocab)
        -> softmax
}

task python_docs : next_char {
    model     = char_rnn
    data      = text(builtin="python-docs")     # needs no download
    split     = 0.9
    seq_len   = 64
    batch     = 32
    optimizer = adam(lr=3e-3)
    clip      = 5.0
    epochs    = 1
    seed      = 0
    generate  = 300                             # characters sampled after training
}
""",
    "language-tagger": """\
# Part-of-speech tagging: a distribution over tags at every word.
model tagger {
    input  words : tokens
    e    = words -> embedding(dim=64)
    fwd  = e -> rnn(hidden=64, activation=leaky_relu(slope=0.01), init=identity)
    bwd  = e -> rnn(hidden=64, reverse=true)
    output tags = (fwd, bwd) -> concat -> batchnorm -> dense(units=labels) -> softmax
}

task ud_english : tag {
    model     = tagger
    data      = conllu("data/sample.conllu", column=upos)
    batch     = 16
    optimizer = sgd(lr=0.1, momentum=0.9)
    epochs    = 5
}
""",
    "language-adder": """\
# The adding problem: a long-range dependency that a sigmoid RNN cannot learn.
model adder {
    input  pairs : sequence[2]
    output sum   = pairs -> rnn(hidden=64, activation=relu, init=identity, return=last)
                         -> dense(units=1)
}

task adding_150 : regress {
    model     = adder
    data      = adding(length=150, samples=20000)
    batch     = 32
    optimizer = adam(lr=1e-3)
    clip      = 1.0
    steps     = 2000
}
""",
}


def _example_specs() -> dict[str, str]:
    found = {p.name: p.read_text(encoding="utf-8") for p in sorted(SPECS.glob("*.spec"))}
    return {**found, **LANGUAGE_EXAMPLES}


EXAMPLES = _example_specs()
SEED_TEXTS = list(EXAMPLES.values())

# ---------------------------------------------------------------- helpers


def strip_spans(obj: Any) -> Any:
    """A JSON dump with every `span` / `*_span` key removed, recursively."""
    if isinstance(obj, dict):
        return {
            k: strip_spans(v) for k, v in obj.items() if not (k == "span" or k.endswith("_span"))
        }
    if isinstance(obj, list):
        return [strip_spans(v) for v in obj]
    return obj


def ir_dump(text: str) -> Any:
    """The checked IR of a spec without source positions (data files are not opened)."""
    program = specc.loads(text, path="spec.spec", base_dir=None)
    return strip_spans(program.ir.model_dump(mode="json", by_alias=True))


def fmt(text: str) -> str:
    return format_spec(lower(*parse(text)))


def comments_of(text: str) -> Counter:
    """Every comment's text; trailing whitespace is the formatter's to drop."""
    return Counter(c.text.rstrip() for c in lower(*parse(text)).comments)


def check_formatter(text: str) -> str:
    """The three formatter properties on one valid spec; returns the formatted text."""
    once = fmt(text)
    twice = fmt(once)
    assert twice == once, "fmt is not idempotent"
    assert comments_of(once) == comments_of(text), "fmt lost or changed a comment"
    assert ir_dump(once) == ir_dump(text), "formatted text compiles to a different IR"
    return once


def loads_only_spec_errors(text: str, base_dir: Path | None) -> None:
    """`specc.loads` either succeeds or raises SpecError that renders to text."""
    try:
        specc.loads(text, path="fuzz.spec", base_dir=base_dir)
    except SpecError as err:
        rendered = err.render()
        assert isinstance(rendered, str) and rendered
        assert "Traceback" not in rendered
        for diag in err.diagnostics:
            if diag.span is not None:
                assert diag.span.line >= 1 and diag.span.column >= 1


# --------------------------------------------------------------- mutation


def random_mutant(rng: random.Random) -> str:
    text = rng.choice(SEED_TEXTS)
    for _ in range(rng.randint(1, 5)):
        text = apply_mutation(
            text,
            rng.choice(MUTATIONS),
            rng.randrange(1 << 30),
            rng.randrange(1 << 30),
            rng.choice(VOCAB),
            rng.choice(CHARS),
        )
    return text


mutation = st.tuples(
    st.sampled_from(MUTATIONS),
    st.integers(0, 1 << 30),
    st.integers(0, 1 << 30),
    st.sampled_from(VOCAB),
    st.sampled_from(CHARS),
)


@st.composite
def mutants(draw) -> str:
    text = draw(st.sampled_from(SEED_TEXTS))
    for m in draw(st.lists(mutation, min_size=1, max_size=6)):
        text = apply_mutation(text, *m)
    return text


def _mutant_loads_property(text: str) -> None:
    loads_only_spec_errors(text, SPECS)
    loads_only_spec_errors(text, None)


def _mutant_formats_property(text: str) -> None:
    """A mutant that still compiles is formatted like any valid spec."""
    try:
        specc.loads(text, base_dir=None)
    except SpecError:
        return
    check_formatter(text.replace("\r\n", "\n"))


# The default run does not shrink a failing example (shrinking a large spec can take
# minutes); the slow variants do, and print the smallest spec they find.
_FAST = settings(
    max_examples=150,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_SLOW = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_FAST
@given(mutants())
def test_mutants_raise_only_spec_error(text: str) -> None:
    _mutant_loads_property(text)


@pytest.mark.slow
@_SLOW
@given(mutants())
def test_mutants_raise_only_spec_error_at_volume(text: str) -> None:
    _mutant_loads_property(text)


@_FAST
@given(mutants())
def test_mutants_that_compile_format_faithfully(text: str) -> None:
    _mutant_formats_property(text)


@pytest.mark.slow
@_SLOW
@given(mutants())
def test_mutants_that_compile_format_faithfully_at_volume(text: str) -> None:
    _mutant_formats_property(text)


def _seeded_fuzz(seed: int, count: int) -> None:
    rng = random.Random(seed)
    for n in range(count):
        text = random_mutant(rng)
        try:
            loads_only_spec_errors(text, SPECS)
        except Exception as exc:  # report the mutant that did it
            raise AssertionError(f"seed {seed}, mutant {n}: {text!r}") from exc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seeded_mutation_fuzz(seed: int) -> None:
    _seeded_fuzz(seed, 200)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 20))
def test_seeded_mutation_fuzz_at_volume(seed: int) -> None:
    _seeded_fuzz(seed, 2000)


def _cli_fuzz(tmp_path: Path, capsys, seed: int, count: int) -> None:
    rng = random.Random(seed)
    for n in range(count):
        data = random_mutant(rng).encode("utf-8", "surrogatepass")
        if rng.random() < 0.1:  # some files are not valid UTF-8 at all
            i = rng.randrange(len(data) + 1)
            data = data[:i] + bytes([rng.choice([0x80, 0xC3, 0xFF, 0xFE])]) + data[i:]
        path = tmp_path / f"mutant_{n}.spec"
        path.write_bytes(data)
        try:
            status = cli.main(["check", str(path)])
        except BaseException as exc:
            raise AssertionError(f"check raised on {data!r}") from exc
        out, err = capsys.readouterr()
        assert status in (0, 1), data
        assert out == "", data
        assert "Traceback" not in err, data
        if status == 1:
            assert err.startswith(str(path)), err
        else:
            assert err == "", err
        path.unlink()


def test_check_command_on_mutants(tmp_path: Path, capsys) -> None:
    _cli_fuzz(tmp_path, capsys, seed=7, count=300)


@pytest.mark.slow
def test_check_command_on_mutants_at_volume(tmp_path: Path, capsys) -> None:
    _cli_fuzz(tmp_path, capsys, seed=8, count=3000)


# ------------------------------------------------------------- formatter


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_formatter_on_example_specs(name: str) -> None:
    check_formatter(EXAMPLES[name])


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.spec")), ids=lambda p: p.name)
def test_fmt_check_accepts_its_own_output(tmp_path: Path, capsys, path: Path) -> None:
    formatted = tmp_path / path.name
    formatted.write_text(fmt(path.read_text(encoding="utf-8")), encoding="utf-8")
    assert cli.main(["fmt", "--check", str(formatted)]) == 0
    assert capsys.readouterr() == ("", "")


CANONICAL = {
    "own-line-comment-between-statements": """\
model m {
    input x : sequence[2]
    # the hidden layer
    h = x -> relu
    output y = h -> dense(units=1)
}
""",
    "own-line-comment-between-settings": """\
task t : tag {
    model = m
    # a synthetic corpus
    data  = copy(length=3)
}
""",
    "comments-everywhere": """\
# about m
model m {
    input x : sequence[2]  # pairs
    output y = x
        # before the first step
        -> rnn(hidden=4)  # after a step
        -> dense(units=1)
    # before the closing brace
}  # after the closing brace

# the end
""",
    "blank-line-between-comment-blocks": """\
# specc example: a file header

# about m
model m {
    input x : sequence[2]
    output y = x -> relu
}
""",
}


@pytest.mark.parametrize("name", list(CANONICAL))
def test_fmt_leaves_canonical_text_unchanged(name: str) -> None:
    assert fmt(CANONICAL[name]) == CANONICAL[name]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "model m {\n    input x : sequence[2]\n    output y = x  # note\n        -> relu\n}\n",
            id="comment-after-the-source-of-a-multiline-pipeline",
        ),
        pytest.param(
            "model m {\n    input x : sequence[2]\n    output y = (x, x)  # both\n"
            "        -> concat\n        -> relu\n}\n",
            id="comment-after-a-grouped-source",
        ),
        pytest.param(
            "model m {\n    input x : sequence[2]\n    output y =  # what follows\n"
            "        x -> relu\n}\n",
            id="comment-after-the-equals-sign",
        ),
        pytest.param(
            "model m {\n    input x : sequence[2]\n    output y = x -> dense(  # size\n"
            "        units=4) -> relu\n}\n",
            id="comment-inside-an-argument-list",
        ),
    ],
)
def test_fmt_is_idempotent_on_comments_inside_a_statement(text: str) -> None:
    check_formatter(text)


# ----- a strategy for valid specs

KEYWORDS = {"model", "task", "input", "output", "true", "false"}

comment_text = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs"),
        include_characters=' #"\\',
    ),
    max_size=30,
).map(lambda s: "#" + s.rstrip())


#: Marks a place in a token list where a statement, step, setting or item begins
#: (or a block ends): where people put comments.
BR = object()

WHITESPACE = ["\n", "\n    ", "\t", "  ", "\n\n", " \n\t ", "\r\n"]


@st.composite
def separator(draw, comments: bool) -> str:
    """What goes between two tokens: mostly a space, sometimes newlines or a comment."""
    r = draw(st.integers(0, 19))
    if r < 11:
        return " "
    if r < 15 or not comments:
        return draw(st.sampled_from(WHITESPACE))
    comment = draw(comment_text)
    if r < 18:
        return f" {comment}\n"  # at the end of a line
    return f"\n{comment}\n"  # on a line of its own


def name_gen(draw, i: int) -> str:
    """Unique within a model (by i); ends in a digit, so it never equals an op or a keyword."""
    return draw(st.from_regex(r"[a-z][a-z]{0,4}", fullmatch=True)) + str(i)


RNN_INITS = ["default", "xavier", "orthogonal", "identity"]
FLOATS_01 = ["0", "0.5", "0.1", "1e-1", "2.5E-1", "0.999", ".25", "0.0"]
POSITIVE_FLOATS = ["1e-5", "0.001", "1", "2.5", "1E-3", "3e-3", "10"]
NONNEG_FLOATS = ["0", "0.01", "0.2", "1", "1e-2", "-0.0", "0.3"]


def size_value(draw, symbols: bool = True) -> str:
    if symbols and draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(["vocab", "labels"]))
    return str(draw(st.integers(1, 300)))


def activation_tokens(draw) -> list[str]:
    kind = draw(st.integers(0, 5))
    if kind <= 3:
        return [["tanh", "sigmoid", "relu", "leaky_relu"][kind]]
    slope = draw(st.sampled_from(NONNEG_FLOATS))
    if kind == 4:
        return ["leaky_relu", "(", "slope", "=", slope, ")"]
    return ["leaky_relu", "(", slope, ")"]


Field = tuple[str, Callable[[], list[str]], bool]  # name, value tokens, required


def call_tokens(draw, name: str, fields: list[Field]) -> list[str]:
    """`name(args)` with required fields always, optional ones sometimes; some positional."""
    chosen = [(f, make) for f, make, required in fields if required or draw(st.booleans())]
    if not chosen and draw(st.booleans()):
        return [name] if draw(st.booleans()) else [name, "(", ")"]
    # positional arguments must be the leading fields, in field order
    prefix = 0
    for (f, _), (g, _, _) in zip(chosen, fields, strict=False):
        if f != g:
            break
        prefix += 1
    n_pos = draw(st.integers(0, prefix))
    keyword = chosen[n_pos:]
    keyword = draw(st.permutations(keyword)) if keyword else []
    parts: list[list[str]] = [make() for _, make in chosen[:n_pos]]
    parts += [[f, "=", *make()] for f, make in keyword]
    toks = [name, "("]
    for i, part in enumerate(parts):
        if i:
            toks.append(",")
        toks += part
    if parts and draw(st.integers(0, 5)) == 0:
        toks.append(",")  # a trailing comma is allowed
    return [*toks, ")"]


def step_tokens(draw, kind: str, feat: Any) -> tuple[list[str], str, Any]:
    """One valid step for a value of `kind` ('ids', 'seq', 'vec'); returns the new kind/feat."""
    one = lambda v: lambda: [v]  # noqa: E731
    if kind == "ids":
        if draw(st.booleans()):
            return ["one_hot"], "seq", "vocab"
        dim = size_value(draw)
        return call_tokens(draw, "embedding", [("dim", one(dim), True)]), "seq", dim
    ops = ["batchnorm", "leaky_relu", "relu", "tanh", "sigmoid", "dense", "softmax", "dropout"]
    if kind == "seq":
        ops += ["rnn", "rnn"]
    op = draw(st.sampled_from(ops))
    if op == "rnn":
        hidden = size_value(draw)
        last = draw(st.booleans())
        fields = [
            ("hidden", one(hidden), True),
            ("activation", lambda: activation_tokens(draw), False),
            ("init", lambda: [draw(st.sampled_from(RNN_INITS))], False),
            ("reverse", lambda: [draw(st.sampled_from(["true", "false"]))], False),
            ("return", one("last" if last else "sequence"), last),
        ]
        return call_tokens(draw, "rnn", fields), ("vec" if last else "seq"), hidden
    if op == "dense":
        units = size_value(draw)
        fields = [
            ("units", one(units), True),
            ("bias", lambda: [draw(st.sampled_from(["true", "false"]))], False),
        ]
        return call_tokens(draw, "dense", fields), kind, units
    if op == "batchnorm":
        fields = [
            ("eps", lambda: [draw(st.sampled_from(POSITIVE_FLOATS))], False),
            ("momentum", lambda: [draw(st.sampled_from([*FLOATS_01, "1"]))], False),
            ("affine", lambda: [draw(st.sampled_from(["true", "false"]))], False),
        ]
        return call_tokens(draw, "batchnorm", fields), kind, feat
    if op == "leaky_relu":
        fields = [("slope", lambda: [draw(st.sampled_from(NONNEG_FLOATS))], False)]
        return call_tokens(draw, "leaky_relu", fields), kind, feat
    if op == "dropout":
        fields = [("p", lambda: [draw(st.sampled_from(FLOATS_01))], True)]
        return call_tokens(draw, "dropout", fields), kind, feat
    return call_tokens(draw, op, []), kind, feat


def concat_feat(feats: list[Any]) -> Any:
    """The feature size specc gives a concat (numbers add up; symbols are joined)."""
    if all(isinstance(f, int) or (isinstance(f, str) and f.isdigit()) for f in feats):
        return str(sum(int(f) for f in feats))
    return " + ".join(str(f) for f in feats)


@st.composite
def model_tokens(draw, model_name: str, fit: str | None = None) -> list[str]:
    """A valid model. `fit` makes it fit a task kind: one input, one fitting output."""
    if fit in ("next_char", "tag"):
        in_kind, in_type, in_feat = "ids", ["tokens"], None
    elif fit == "regress":
        in_kind, in_type, in_feat = "seq", ["sequence", "[", "2", "]"], "2"
    else:
        choice = draw(st.integers(0, 3))
        size = size_value(draw)
        in_kind, in_type, in_feat = [
            ("ids", ["tokens"], None),
            ("seq", ["sequence", "[", size, "]"], size),
            ("vec", ["vector", "[", size, "]"], size),
            ("seq", ["sequence", "[", size, "]"], size),
        ][choice]
    counter = iter(range(1, 10_000))
    input_name = name_gen(draw, 0)
    toks = ["model", model_name, "{", BR, "input", input_name, ":", *in_type]
    values: list[tuple[str, str, Any]] = [(input_name, in_kind, in_feat)]
    outputs: list[str] = []
    for _ in range(draw(st.integers(0 if fit else 1, 4))):
        name = name_gen(draw, next(counter))
        is_output = fit is None and draw(st.booleans())
        head = ["output", name] if is_output else [name]
        form = draw(st.integers(0, 9))
        floats = [v for v in values if v[1] != "ids"]
        if form == 0:  # a second name for a value
            src = draw(st.sampled_from(values))
            toks += [BR, *head, "=", src[0]]
            values.append((name, src[1], src[2]))
        elif form <= 2 and floats:  # several values joined
            first = draw(st.sampled_from(floats))
            same_kind = [v for v in floats if v[1] == first[1]]
            group = [first, *draw(st.lists(st.sampled_from(same_kind), min_size=1, max_size=2))]
            same_shape = [v for v in group if v[2] == first[2]]
            if form == 1 and len(same_shape) >= 2:
                group, op, feat = same_shape, "add", first[2]
            else:
                op, feat = "concat", concat_feat([v[2] for v in group])
            src_toks = ["("]
            for i, v in enumerate(group):
                src_toks += ([","] if i else []) + [v[0]]
            toks += [BR, *head, "=", *src_toks, ")", BR, "->", op]
            values.append((name, first[1], feat))
        else:  # a pipeline
            src = draw(st.sampled_from(values))
            kind, feat = src[1], src[2]
            toks += [BR, *head, "=", src[0]]
            for _ in range(draw(st.integers(1, 4))):
                step, kind, feat = step_tokens(draw, kind, feat)
                toks += [BR, "->", *step]
            values.append((name, kind, feat))
        if is_output:
            outputs.append(name)
    if fit is not None:
        if fit == "regress":
            candidates = [v for v in values if v[1] in ("seq", "vec")]
        else:
            candidates = [v for v in values if v[1] in ("ids", "seq")]
        src = draw(st.sampled_from(candidates))
        tail = [BR, "->", "dense", "(", "units", "=", "1", ")"]
        if fit == "regress" and src[1] == "seq":  # adding wants one number per sequence
            tail = [
                BR,
                "->",
                "rnn",
                "(",
                "hidden",
                "=",
                "4",
                ",",
                "return",
                "=",
                "last",
                ")",
                *tail,
            ]
        if fit in ("next_char", "tag"):
            size = "vocab" if fit == "next_char" else "labels"
            tail = [BR, "->", "dense", "(", "units", "=", size, ")", BR, "->", "softmax"]
            if src[1] == "ids":
                tail = [BR, "->", "embedding", "(", "dim", "=", "8", ")", *tail]
        # sizes the task's data does not bind become numbers (text binds only vocab,
        # adding binds nothing)
        unbound = {"next_char": {"labels"}, "regress": {"vocab", "labels"}}.get(fit, set())
        toks = ["5" if t in unbound else t for t in toks]
        toks += [BR, "output", "out9999", "=", src[0], *tail]
    elif not outputs:
        last = values[-1][0] if len(values) > 1 else None
        if last is None:
            name = name_gen(draw, next(counter))
            src = values[0]
            step = ["one_hot"] if src[1] == "ids" else ["relu"]
            toks += [BR, "output", name, "=", src[0], BR, "->", *step]
        else:
            toks += [BR, "output", last]
    return [*toks, BR, "}"]


def quote(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{body}"'


@st.composite
def task_tokens(draw, task_name: str, kind: str, model_name: str) -> list[str]:
    # token lists written as space-separated strings
    if kind == "next_char":
        data = draw(
            st.sampled_from(
                [
                    'text ( builtin = "python-docs" )',
                    'text ( "corpus.txt" )',
                    'text ( path = "data/corpus.txt" )',
                ]
            )
        )
    elif kind == "tag":
        n = draw(st.integers(1, 50))
        data = draw(
            st.sampled_from(
                [
                    f"copy ( length = {n} )",
                    f"copy ( {n} , symbols = 4 , samples = 100 )",
                    'tagged ( "tags.txt" )',
                    'conllu ( "ud.conllu" , column = xpos )',
                ]
            )
        )
    else:
        data = f"adding ( length = {draw(st.integers(2, 200))} , samples = 64 )"
    optimizers = [
        "sgd ( lr = 0.1 , momentum = 0.9 )",
        "adam ( lr = 3e-3 )",
        "adam ( 1e-3 , 0.8 )",
        "adagrad ( lr = 0.01 )",
        "adagrad",
    ]
    optional: dict[str, list[str]] = {
        "split": [draw(st.sampled_from(["0.9", "0.5", "9e-1"]))],
        "batch": [str(draw(st.integers(1, 64)))],
        "optimizer": draw(st.sampled_from(optimizers)).split(),
        "clip": [draw(st.sampled_from(["1.0", "5", "0.5"]))],
        "seed": [str(draw(st.integers(0, 99)))],
        "loss": ["mse" if kind == "regress" else "cross_entropy"],
    }
    length_key = draw(st.sampled_from(["epochs", "steps"]))
    optional[length_key] = [str(draw(st.integers(1, 100)))]
    if kind == "next_char":
        optional["seq_len"] = [str(draw(st.integers(1, 128)))]
        optional["generate"] = [str(draw(st.integers(0, 500)))]
        prime = draw(st.text(st.sampled_from(list('ab #"\\\n\té{}->')), max_size=8))
        optional["prime"] = [quote(prime)]
        optional["temperature"] = [draw(st.sampled_from(["0.5", "1", "2e-1"]))]
    chosen = [k for k in optional if draw(st.booleans())]
    settings_list = [("model", [model_name]), ("data", data.split())]
    settings_list += [(k, optional[k]) for k in chosen]
    settings_list = draw(st.permutations(settings_list))
    toks = ["task", task_name, ":", kind, "{"]
    for key, value in settings_list:
        toks += [BR, key, "=", *value]
    return [*toks, BR, "}"]


@st.composite
def valid_specs(draw, comments: str = "boundaries") -> tuple[str, list[str]]:
    """A random valid spec and the comments written into it.

    comments="boundaries" writes comments only where a statement, step, setting
    or item begins or a block ends (on their own lines or at the end of the line
    before); comments="anywhere" also writes them between any two tokens.
    Whitespace and newlines go between any two tokens either way.
    """
    items: list[list] = []
    for m in range(draw(st.integers(1, 3))):
        fit = draw(st.sampled_from([None, None, "next_char", "tag", "regress"]))
        model_name = name_gen(draw, m)
        items.append(draw(model_tokens(model_name, fit)))
        if fit is not None and draw(st.integers(0, 3)):
            items.append(draw(task_tokens(name_gen(draw, m), fit, model_name)))
    items = draw(st.permutations(items))
    tokens: list[str] = []
    boundary: list[bool] = []  # boundary[i]: the gap before tokens[i] is a boundary
    pending = True
    for tok in (t for item in [[BR, *item] for item in items] for t in item):
        if tok is BR:
            pending = True
            continue
        tokens.append(tok)
        boundary.append(pending)
        pending = False
    boundary.append(True)  # after the last token
    anywhere = comments == "anywhere"
    seps = [draw(separator(comments=anywhere or b)) for b in boundary]
    text = seps[0] + "".join(tok + sep for tok, sep in zip(tokens, seps[1:], strict=True))
    written = [c for sep in seps for c in re.findall(r"#[^\n]*", sep)]
    return text, written


def _generated_spec_property(case: tuple[str, list[str]]) -> None:
    text, comments = case
    # the generator only writes valid specs; a failure here is a front-end bug
    ir_dump(text)
    assert comments_of(text.replace("\r\n", "\n")) == Counter(comments)
    check_formatter(text.replace("\r\n", "\n"))


@_FAST
@given(valid_specs())
def test_formatter_on_generated_specs(case: tuple[str, list[str]]) -> None:
    _generated_spec_property(case)


@_FAST
@given(valid_specs(comments="anywhere"))
def test_formatter_on_generated_specs_with_comments_between_any_tokens(
    case: tuple[str, list[str]],
) -> None:
    _generated_spec_property(case)


@pytest.mark.slow
@_SLOW
@given(valid_specs())
def test_formatter_on_generated_specs_at_volume(case: tuple[str, list[str]]) -> None:
    _generated_spec_property(case)


@pytest.mark.slow
@_SLOW
@given(valid_specs(comments="anywhere"))
def test_formatter_on_generated_specs_with_comments_between_any_tokens_at_volume(
    case: tuple[str, list[str]],
) -> None:
    _generated_spec_property(case)


@_FAST
@given(valid_specs())
def test_generated_specs_pass_check(tmp_path_factory, case: tuple[str, list[str]]) -> None:
    """`specc check` agrees with `specc.loads` (data paths aside) and stays silent."""
    text, _ = case
    folder = tmp_path_factory.mktemp("gen")
    for rel in ("corpus.txt", "data/corpus.txt", "tags.txt", "ud.conllu"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text("x/X\n", encoding="utf-8")
    path = folder / "gen.spec"
    path.write_text(text, encoding="utf-8", newline="")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["check", str(path)])
    assert (status, out.getvalue(), err.getvalue()) == (0, "", "")
