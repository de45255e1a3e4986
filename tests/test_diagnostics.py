"""What a user sees for a wrong spec: place, message and help of each diagnostic.

Each case is a small invalid spec and the first diagnostic it must produce,
exactly: `LINE:COL`, the message text and the `help:` line (see
docs/interface.md, "Diagnostics"). The expectations describe what a user
should see; where the front end currently says something else, the test
fails on purpose and names the gap.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import specc
from specc import cli
from specc.errors import SpecError

from helpers import SPECS, specc_cli


class _Any:
    """Marks a help line the test does not constrain."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()


def spec(*lines: str) -> str:
    """Spec text from its lines; line i of the tuple is line i + 1 of the file."""
    return "\n".join(lines) + "\n"


def seq_model(*body: str) -> str:
    """A model `m` with input `x : sequence[2]` on line 2; `body` starts at line 3."""
    return spec("model m {", "    input x : sequence[2]", *body, "}")


# A next_char model on lines 1-4; a task built with `task()` starts on line 5.
NEXT_CHAR_MODEL = (
    "model lm {",
    "    input chars : tokens",
    "    output next = chars -> embedding(dim=8) -> rnn(hidden=8) -> dense(units=vocab) -> softmax",
    "}",
)
TAG_MODEL = (
    "model tg {",
    "    input words : tokens",
    "    output tags = words -> embedding(dim=8) -> rnn(hidden=8) -> dense(units=labels)"
    " -> softmax",
    "}",
)
GOOD_NEXT_CHAR = ("    model = lm", '    data = text(builtin="python-docs")')


def task(kind: str, *settings: str, model: tuple[str, ...] = NEXT_CHAR_MODEL) -> str:
    """A model (lines 1-4) and `task t : KIND {` on line 5; settings start at line 6."""
    return spec(*model, f"task t : {kind} {{", *settings, "}")


def first_error(text: str, base_dir: Path) -> tuple[specc.SpecError, str]:
    with pytest.raises(SpecError) as info:
        specc.loads(text, path="bad.spec", base_dir=base_dir)
    err = info.value
    return err, err.render()


# --------------------------------------------------------------------- cases
# (text, "LINE:COL", message, help); help None means "no help line", ANY means unchecked.

SYNTAX = [
    pytest.param(
        spec("model m {", "    input x : tokens", "    output y x -> embedding(dim=4)", "}"),
        "3:16",
        "expected '=' after 'x', found '->'",
        ANY,
        id="syntax-missing-equals",
    ),
    pytest.param(
        spec("model m {", "    input x : tokens", "    output y = x embedding(dim=4)", "}"),
        "3:18",
        "expected '->' before 'embedding'",
        "write `-> embedding(...)` to add a step",
        id="syntax-missing-arrow",
    ),
    pytest.param(
        spec(
            "model m {",
            "    input x : tokens",
            "    output y = x -> one_hot",
            "",
            "task t : tag {",
            "    model = m",
            "}",
        ),
        "5:1",
        "expected a name, '->', '(', '}', 'input' or 'output' after 'one_hot', found 'task'",
        "is a '}' missing before this?",
        id="syntax-missing-rbrace-before-task",
    ),
    pytest.param(
        spec("model m {", "    input x : tokens", "    output y = x -> embedding(dim=4", "}"),
        "4:1",
        "expected ',' or ')' after '4', found '}'",
        ANY,
        id="syntax-missing-rpar",
    ),
    pytest.param(
        spec(
            "model m {",
            "    input x : sequence[2]",
            "    output y = x -> leaky_relu(slope=1.2.3)",
            "}",
        ),
        "3:41",
        "expected ',' or ')' after '1.2', found '.3'",
        ANY,
        id="syntax-number-with-two-dots",
    ),
    pytest.param(
        spec("model m {", "    input x : tokens", "    output y = x -> embedding(dim=4) @", "}"),
        "3:38",
        "unexpected character '@'",
        ANY,
        id="syntax-stray-at",
    ),
    pytest.param(
        spec("model m {", "    input x : tokens;", "    output y = x -> one_hot", "}"),
        "2:21",
        "unexpected character ';'",
        ANY,
        id="syntax-stray-semicolon",
    ),
    pytest.param(
        spec("model m {", "    input x : sequence[2]", "    output y = x → relu", "}"),
        "3:18",
        "unexpected character '→'",
        ANY,
        id="syntax-stray-unicode-arrow",
    ),
    pytest.param(
        task("next_char", "    model = lm", '    data = text("abc)'),
        "7:17",
        "unterminated string",
        "close the string with '\"' on the same line",
        id="syntax-unterminated-string",
    ),
    pytest.param(
        task("next_char", "    model = lm", "    data = text('corpus.txt')"),
        "7:17",
        'unexpected character "\'"',
        'strings use double quotes: "..."',
        id="syntax-single-quoted-string",
    ),
    pytest.param(
        spec("model m {", "    input model : tokens", "    output y = model -> one_hot", "}"),
        "2:11",
        "expected a name after 'input', found 'model'",
        "'model' is a keyword and cannot be used as a name",
        id="syntax-keyword-as-input-name",
    ),
    pytest.param(
        spec("model task {", "    input x : tokens", "    output y = x -> one_hot", "}"),
        "1:7",
        "expected a name after 'model', found 'task'",
        "'task' is a keyword and cannot be used as a name",
        id="syntax-keyword-as-model-name",
    ),
    pytest.param(
        spec("model m {", "    input x : tokens", "    output y = x -> one_hot"),
        "3:28",
        "unexpected end of file; expected a name, '->', '(', '}', 'input' or 'output'",
        ANY,
        id="syntax-eof-inside-model",
    ),
    pytest.param(
        "model m {\n    input x : tokens\n    output y = x -> embedding(dim=",
        "3:35",
        "unexpected end of file; expected a name, a number, a string, '[', 'true' or 'false'",
        ANY,
        id="syntax-eof-inside-arguments",
    ),
    pytest.param(
        spec(*NEXT_CHAR_MODEL, "task t : next_char {", "    model = lm"),
        "6:15",
        # no '(' since a file may end in `param NAME = VALUE`: LALR's merged states
        # reduce the name as a value before they see the end of the file
        "unexpected end of file; expected a name, '}' or 'model'",
        ANY,
        id="syntax-eof-inside-task",
    ),
    pytest.param(
        spec("model m {", "    input x : sequence[2]", "    output y = x -> relu ->", "}"),
        "4:1",
        "expected a name after '->', found '}'",
        ANY,
        id="syntax-trailing-arrow",
    ),
    pytest.param(
        spec("model m {", "    input x : sequence[2]", "    output y = x -> relu", "}")
        + spec("task t next_char {", "    model = m", "}"),
        "5:8",
        "expected ':' after 't', found 'next_char'",
        ANY,
        id="syntax-task-missing-colon",
    ),
    pytest.param(
        spec("model m", "    input x : tokens", "    output y = x -> one_hot", "}"),
        "2:5",
        "expected '{' after 'm', found 'input'",
        ANY,
        id="syntax-missing-lbrace",
    ),
]

OPS_AND_ARGUMENTS = [
    pytest.param(
        spec(
            "model m {",
            "    input x : tokens",
            "    output y = x -> embedding(dim=4)",
            "        -> batchnrom",
            "}",
        ),
        "4:12",
        "unknown op 'batchnrom'",
        "did you mean 'batchnorm'?",
        id="unknown-op-batchnrom",
    ),
    pytest.param(
        seq_model("    output y = x -> identity"),
        "3:21",
        "unknown op 'identity'",
        ANY,
        id="unknown-op-identity-is-internal",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hiden=4)"),
        "3:25",
        "rnn has no argument 'hiden'",
        "did you mean 'hidden'?",
        id="unknown-argument-hiden",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn"),
        "3:21",
        "rnn needs argument 'hidden'",
        ANY,
        id="missing-argument-rnn-hidden",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(activation=relu)"),
        "3:21",
        "rnn needs argument 'hidden'",
        ANY,
        id="missing-argument-rnn-hidden-with-other-args",
    ),
    pytest.param(
        spec("model m {", "    input x : tokens", "    output y = x -> embedding", "}"),
        "3:21",
        "embedding needs argument 'dim'",
        ANY,
        id="missing-argument-embedding-dim",
    ),
    pytest.param(
        seq_model("    output y = x -> dropout"),
        "3:21",
        "dropout needs argument 'p'",
        ANY,
        id="missing-argument-dropout-p",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=1.5)"),
        "3:32",
        "'hidden' of rnn must be a positive whole number, got 1.5",
        None,
        id="type-hidden-float",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=4, reverse=3)"),
        "3:43",
        "'reverse' of rnn must be true or false, got 3",
        None,
        id="type-reverse-number",
    ),
    pytest.param(
        seq_model('    output y = x -> rnn(hidden="128")'),
        "3:32",
        "'hidden' of rnn must be a number or 'vocab', 'labels' or 'chars', got '128'",
        ANY,
        id="type-hidden-string",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=vocabulary)"),
        "3:32",
        "'hidden' of rnn must be a number or 'vocab', 'labels' or 'chars', got 'vocabulary'",
        "did you mean 'vocab'?",
        id="type-hidden-unknown-size-symbol",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=0)"),
        "3:32",
        "'hidden' of rnn must be greater than 0, got 0",
        None,
        id="range-hidden-zero",
    ),
    pytest.param(
        seq_model("    output y = x -> leaky_relu(slope=-1)"),
        "3:38",
        "'slope' of leaky_relu must be at least 0.0, got -1",
        None,
        id="range-slope-negative",
    ),
    pytest.param(
        seq_model("    output y = x -> dropout(p=1.5)"),
        "3:31",
        "'p' of dropout must be less than 1.0, got 1.5",
        None,
        id="range-dropout-p",
    ),
    pytest.param(
        seq_model("    output y = x -> batchnorm(momentum=1.5)"),
        "3:40",
        "'momentum' of batchnorm must be at most 1.0, got 1.5",
        None,
        id="range-batchnorm-momentum",
    ),
    pytest.param(
        seq_model("    output y = x -> leaky_relu(slope=1e999)"),
        "3:38",
        "number 1e999 is too large",
        ANY,
        id="range-number-overflows",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=4, activation=softplus)"),
        "3:46",
        "'activation' of rnn must be 'tanh', 'sigmoid', 'relu' or 'leaky_relu', got 'softplus'",
        "use tanh, sigmoid, relu, leaky_relu or leaky_relu(slope=S)",
        id="activation-softplus",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=4, activation=tahn)"),
        "3:46",
        "'activation' of rnn must be 'tanh', 'sigmoid', 'relu' or 'leaky_relu', got 'tahn'",
        "did you mean 'tanh'?",
        id="activation-typo",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=4, activation=tanh(slope=0.1))"),
        "3:57",
        "'slope' applies only to leaky_relu, not tanh",
        ANY,
        id="activation-tanh-with-slope",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=4, activation=leaky_relu(slope=-0.1))"),
        "3:63",
        "'slope' of leaky_relu must be at least 0.0, got -0.1",
        None,
        id="activation-leaky-negative-slope",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=4, activation=leaky_relu(slop=0.1))"),
        "3:57",
        "leaky_relu has no argument 'slop'",
        "did you mean 'slope'?",
        id="activation-unknown-argument",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=4, init=orthogonl)"),
        "3:40",
        "'init' of rnn must be 'default', 'xavier', 'orthogonal' or 'identity', got 'orthogonl'",
        "did you mean 'orthogonal'?",
        id="bad-init",
    ),
    pytest.param(
        seq_model("    output y = x -> rnn(hidden=4, return=lst)"),
        "3:42",
        "'return' of rnn must be 'sequence' or 'last', got 'lst'",
        "did you mean 'last'?",
        id="bad-return",
    ),
    pytest.param(
        seq_model("    output y = x -> dense(4, true, 7)"),
        "3:36",
        "dense takes 2 positional arguments at most, got 3",
        "name the arguments: units=..., bias=...",
        id="too-many-positional",
    ),
    pytest.param(
        seq_model("    output y = x -> relu(3)"),
        "3:26",
        "relu takes no arguments, got 1",
        ANY,
        id="arguments-to-op-without-arguments",
    ),
    pytest.param(
        seq_model("    output y = x -> dense(units=4, true)"),
        "3:36",
        "positional argument after a keyword argument in dense",
        ANY,
        id="positional-after-keyword",
    ),
    pytest.param(
        seq_model("    output y = x -> dense(units=4, units=5)"),
        "3:36",
        "argument 'units' of dense is given twice",
        ANY,
        id="duplicate-argument",
    ),
    pytest.param(
        seq_model("    output y = x -> dense(4, units=5)"),
        "3:30",
        "argument 'units' of dense is given twice",
        ANY,
        id="duplicate-argument-positional-and-keyword",
    ),
]

NAMES_AND_INPUTS = [
    pytest.param(
        spec(
            "model m {",
            "    input chars : tokens",
            "    emb = chars -> embedding(dim=4)",
            "    output y = embd -> relu",
            "}",
        ),
        "4:16",
        "'embd' is not defined in model 'm'",
        "did you mean 'emb'?",
        id="undefined-name",
    ),
    pytest.param(
        seq_model("    h = x -> relu", "    h = x -> tanh", "    output y = h -> dense(units=1)"),
        "4:5",
        "'h' is already defined in model 'm' (line 3)",
        "give this node a different name",
        id="duplicate-name",
    ),
    pytest.param(
        seq_model("    x = x -> relu", "    output y = x -> dense(units=1)"),
        "3:5",
        "'x' is already defined in model 'm' (line 2)",
        "give this node a different name",
        id="duplicate-name-of-input",
    ),
    pytest.param(
        seq_model(
            "    a = (x, b) -> add", "    b = a -> relu", "    output y = b -> dense(units=1)"
        ),
        "4:9",
        "cycle: a -> b -> a",
        "a value cannot depend on itself; rnn carries state through time",
        id="cycle",
    ),
    pytest.param(
        seq_model(
            "    rnn = x -> dense(units=3)",
            "    output y = rnn -> rnn(hidden=4) -> dense(units=1)",
        ),
        "4:23",
        "this step is named 'rnn' after its op, but 'rnn' is already defined in model 'm' (line 3)",
        "rename the other 'rnn', or end a statement with this step so it takes the "
        "statement's name",
        id="auto-name-collision",
    ),
    pytest.param(
        seq_model("    h = x -> relu", "    output hh"),
        "4:12",
        "output 'hh' is not defined in model 'm'",
        "did you mean 'h'?",
        id="output-of-undefined-name",
    ),
    pytest.param(
        seq_model("    h = x -> relu"),
        "1:7",
        "model 'm' has no output",
        "mark the result with `output NAME = ...`",
        id="model-without-output",
    ),
    pytest.param(
        spec("model m {", "    output y = x -> relu", "}"),
        "1:7",
        "model 'm' has no input",
        "declare one, e.g. `input chars : tokens`",
        id="model-without-input",
    ),
    pytest.param(
        spec("model m {", "    input x : token", "    output y = x -> one_hot", "}"),
        "2:15",
        "unknown input type 'token'",
        "did you mean 'tokens'?",
        id="unknown-input-type",
    ),
    pytest.param(
        spec("model m {", "    input x : sequence", "    output y = x -> relu", "}"),
        "2:15",
        "sequence needs a feature size",
        "write `sequence[N]`, e.g. `sequence[2]`",
        id="sequence-without-size",
    ),
    pytest.param(
        spec("model m {", "    input x : sequence[0]", "    output y = x -> relu", "}"),
        "2:24",
        "the size of sequence must be a positive whole number, got 0",
        ANY,
        id="sequence-size-zero",
    ),
    pytest.param(
        spec("model m {", "    input x : tokens[3]", "    output y = x -> one_hot", "}"),
        "2:22",
        "tokens takes no size",
        "write `tokens`",
        id="tokens-with-size",
    ),
]

TASKS = [
    pytest.param(
        task("next_chr", *GOOD_NEXT_CHAR),
        "5:10",
        "unknown task kind 'next_chr'",
        "did you mean 'next_char'?",
        id="unknown-task-kind",
    ),
    pytest.param(
        task("next_char", *GOOD_NEXT_CHAR, "    epoch = 3"),
        "8:5",
        "unknown setting 'epoch'",
        "did you mean 'epochs'?",
        id="unknown-setting",
    ),
    pytest.param(
        task(
            "tag",
            "    model = tg",
            "    data = copy(length=5)",
            "    generate = 100",
            model=TAG_MODEL,
        ),
        "8:5",
        "'generate' does not apply to tag tasks",
        "only next_char tasks use it",
        id="setting-of-another-kind",
    ),
    pytest.param(
        task("next_char", *GOOD_NEXT_CHAR, "    batch = 3", "    batch = 4"),
        "9:5",
        "setting 'batch' is given twice (first at line 8)",
        ANY,
        id="duplicate-setting",
    ),
    pytest.param(
        task("next_char", *GOOD_NEXT_CHAR, "    epochs = 3", "    steps = 4"),
        "9:5",
        "give either 'epochs' or 'steps', not both",
        ANY,
        id="epochs-and-steps",
    ),
    pytest.param(
        task("next_char", '    data = text(builtin="python-docs")'),
        "5:6",
        "task 't' needs a model",
        "add `model = NAME`",
        id="task-without-model",
    ),
    pytest.param(
        task("next_char", "    model = lm"),
        "5:6",
        "task 't' needs data",
        'add e.g. `data = text("corpus.txt")`',
        id="task-without-data",
    ),
    pytest.param(
        task("next_char", "    model = lmm", '    data = text(builtin="python-docs")'),
        "6:13",
        "no model named 'lmm'",
        "did you mean 'lm'?",
        id="unknown-model-in-task",
    ),
    pytest.param(
        task("next_char", "    model = lm", '    data = txt("corpus.txt")'),
        "7:12",
        "unknown data source 'txt'",
        "did you mean 'text'?",
        id="unknown-data-source",
    ),
    pytest.param(
        task("next_char", "    model = lm", "    data = 3"),
        "7:12",
        "'data' must be a data source such as text(...), got 3",
        ANY,
        id="data-is-a-number",
    ),
    pytest.param(
        task("next_char", *GOOD_NEXT_CHAR, "    optimizer = adm(lr=0.1)"),
        "8:17",
        "unknown optimizer 'adm'",
        "did you mean 'adam'?",
        id="unknown-optimizer",
    ),
    pytest.param(
        task("next_char", *GOOD_NEXT_CHAR, "    optimizer = adam(lr=0)"),
        "8:25",
        "'lr' of adam must be greater than 0.0, got 0",
        None,
        id="range-lr-zero",
    ),
    pytest.param(
        task("next_char", *GOOD_NEXT_CHAR, "    split = 2"),
        "8:13",
        "'split' must be less than 1.0, got 2",
        None,
        id="range-split",
    ),
    pytest.param(
        task("next_char", *GOOD_NEXT_CHAR, "    batch = 3.5"),
        "8:13",
        "'batch' must be a whole number, got 3.5",
        None,
        id="type-batch-float",
    ),
    pytest.param(
        task("next_char", *GOOD_NEXT_CHAR, "    loss = mse"),
        "8:12",
        "loss mse does not fit a next_char task",
        "next_char tasks train with cross_entropy",
        id="loss-of-another-kind",
    ),
    pytest.param(
        task("next_char", "    model = lm", "    data = adding(length=10)"),
        "7:12",
        "data source adding does not fit a next_char task",
        "next_char tasks read 'text(...)'",
        id="data-source-wrong-kind",
    ),
    pytest.param(
        task("next_char", "    model = lm", '    data = text("nope.txt")'),
        "7:17",
        "data file 'nope.txt' not found",
        "paths are relative to the folder of the spec file",
        id="missing-data-file",
    ),
    pytest.param(
        task("next_char", "    model = lm", "    data = text()"),
        "7:12",
        "text needs a file or a builtin corpus",
        'write text("file.txt") or text(builtin="python-docs")',
        id="text-without-path-or-builtin",
    ),
    pytest.param(
        task("next_char", "    model = lm", '    data = text(builtin="python_docs")'),
        "7:25",
        "unknown builtin text 'python_docs'",
        "did you mean 'python-docs'?",
        id="unknown-builtin",
    ),
]

SHAPES = [
    pytest.param(
        spec(
            "model m {", "    input chars : tokens", "    output y = chars -> dense(units=4)", "}"
        ),
        "3:25",
        "dense expects float features but its input holds token ids (B, T)",
        "map the ids to vectors first with embedding(dim=...) or one_hot",
        id="shape-dense-fed-token-ids",
    ),
    pytest.param(
        spec("model m {", "    input v : vector[3]", "    output y = v -> rnn(hidden=4)", "}"),
        "3:21",
        "rnn expects a sequence (B, T, N) but its input has shape (B, 3)",
        "an rnn needs a time axis: feed it a sequence, not a vector",
        id="shape-rnn-fed-vector",
    ),
    pytest.param(
        spec("model m {", "    input s : sequence[3]", "    output y = s -> embedding(dim=4)", "}"),
        "3:21",
        "embedding expects token ids but its input is float features (B, T, 3)",
        "embedding reads a `tokens` input; use dense(units=...) on float features",
        id="shape-embedding-fed-floats",
    ),
    pytest.param(
        seq_model(
            "    a = x -> rnn(hidden=4)",
            "    b = x -> rnn(hidden=4, return=last)",
            "    output y = (a, b) -> concat",
        ),
        "5:26",
        "concat needs inputs that agree on all but the last axis, got (B, T, 4) and (B, 4)",
        ANY,
        id="shape-concat-mismatch",
    ),
    pytest.param(
        seq_model(
            "    a = x -> dense(units=4)",
            "    b = x -> dense(units=5)",
            "    output y = (a, b) -> add",
        ),
        "5:26",
        "add needs inputs of the same shape, got (B, T, 4) and (B, T, 5)",
        ANY,
        id="shape-add-mismatch",
    ),
    pytest.param(
        seq_model("    a = x -> dense(units=4)", "    output y = (a, x) -> relu"),
        "4:26",
        "relu takes one input, got 2",
        "combine several values first with concat or add",
        id="shape-relu-two-inputs",
    ),
    pytest.param(
        seq_model("    output y = (x, x)"),
        "3:16",
        "'y' joins 2 values but no step combines them",
        "add a step such as `-> concat` or `-> add`",
        id="shape-join-without-step",
    ),
    pytest.param(
        task(
            "tag",
            "    model = tg",
            "    data = copy(length=5)",
            model=(
                "model tg {",
                "    input words : tokens",
                "    output tags = words -> embedding(dim=8) -> rnn(hidden=8, return=last)",
                "        -> dense(units=labels) -> softmax",
                "}",
            ),
        ),
        "4:35",
        "a tag task needs a distribution over the labels at every step (B, T, labels); "
        "output 'tags' has (B, labels)",
        "a tag task needs an output per step; remove return=last from rnn 'rnn' (line 3)",
        id="task-tag-output-not-per-step",
    ),
    pytest.param(
        task(
            "tag",
            "    model = tg",
            "    data = copy(length=5)",
            model=(
                "model tg {",
                "    input words : tokens",
                "    a = words -> embedding(dim=8) -> rnn(hidden=8, return=last)",
                "    b = words -> embedding(dim=8) -> rnn(hidden=4, reverse=true, return=last)",
                "    output tags = (a, b) -> concat -> dense(units=labels) -> softmax",
                "}",
            ),
        ),
        "5:62",
        "a tag task needs a distribution over the labels at every step (B, T, labels); "
        "output 'tags' has (B, labels)",
        "a tag task needs an output per step; "
        "remove return=last from rnn 'a' (line 3) and rnn 'b' (line 4)",
        id="task-tag-two-rnns-drop-time",
    ),
    pytest.param(
        task(
            "classify",
            "    model = p",
            "    data = parity(length=8, samples=100)",
            model=(
                "model p {",
                "    input bits : tokens",
                "    output odd = bits -> one_hot -> rnn(hidden=8) -> dense(units=labels)"
                " -> softmax",
                "}",
            ),
        ),
        "3:77",
        "a classify task needs one distribution over the labels (B, labels); "
        "output 'odd' has (B, T, labels)",
        "a classify task needs one output per sequence; add return=last to rnn 'rnn' (line 3)",
        id="task-classify-output-per-step",
    ),
    pytest.param(
        task(
            "next_char",
            *GOOD_NEXT_CHAR,
            model=(
                "model lm {",
                "    input chars : tokens",
                "    output next = chars -> embedding(dim=8) -> dense(units=vocab)",
                "}",
            ),
        ),
        "3:48",
        "cross_entropy needs a softmax output; 'next' is dense",
        "end the model with -> softmax",
        id="task-next-char-without-softmax",
    ),
    pytest.param(
        task(
            "regress",
            "    model = adder",
            "    data = adding(length=10)",
            model=(
                "model adder {",
                "    input pairs : sequence[2]",
                "    output sum = pairs -> rnn(hidden=4) -> dense(units=3)",
                "}",
            ),
        ),
        "3:44",
        "adding data has one target per sequence, so the output must be (B, 1); "
        "'sum' has (B, T, 3)",
        "use rnn(..., return=last) before dense(units=1)",
        id="task-regress-output-not-scalar",
    ),
    pytest.param(
        task(
            "regress",
            "    model = adder",
            "    data = adding(length=10)",
            model=(
                "model adder {",
                "    input pairs : tokens",
                "    output sum = pairs -> embedding(dim=2) -> rnn(hidden=4, return=last)"
                " -> dense(units=1)",
                "}",
            ),
        ),
        "2:5",
        "adding data feeds sequence[2], but input 'pairs' of model 'adder' is tokens",
        "declare `input pairs : sequence[2]`",
        id="task-regress-input-not-sequence",
    ),
]

CASES = SYNTAX + OPS_AND_ARGUMENTS + NAMES_AND_INPUTS + TASKS + SHAPES


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 45


@pytest.mark.parametrize(("text", "where", "message", "help"), CASES)
def test_first_diagnostic(tmp_path: Path, text: str, where: str, message: str, help) -> None:
    err, rendered = first_error(text, tmp_path)
    first = err.diagnostics[0]
    assert first.span is not None, f"no location for: {first.message}"
    got = (f"{first.span.line}:{first.span.column}", first.message)
    assert got == (where, message), rendered
    if help is not ANY:
        assert first.help == help, rendered
    # the rendered block starts with the interface's first line, exactly
    assert rendered.split("\n")[0] == f"bad.spec:{where}: error: {message}"


@pytest.mark.parametrize(("text", "where", "message", "help"), CASES)
def test_rendered_block_follows_the_interface(tmp_path: Path, text, where, message, help) -> None:
    """Header line, source line indented 4, a caret line under the span, optional help."""
    err, rendered = first_error(text, tmp_path)
    lines = rendered.split("\n")
    header = re.compile(r"^bad\.spec:(\d+):(\d+): error: .+$")
    i = 0
    for diag in err.diagnostics:
        m = header.match(lines[i])
        assert m, rendered
        line_no, col = int(m[1]), int(m[2])
        assert (line_no, col) == (diag.span.line, diag.span.column)
        source = text.replace("\r\n", "\n").split("\n")[line_no - 1].replace("\t", " ")
        assert lines[i + 1] == "    " + source.strip(" "), rendered
        caret = lines[i + 2]
        assert re.fullmatch(r" {4,}\^+", caret), rendered
        indent = len(source) - len(source.lstrip(" "))
        assert caret.index("^") == 4 + max(0, col - 1 - indent), rendered
        i += 3
        if diag.help:
            assert lines[i] == f"help: {diag.help}"
            i += 1
    assert i == len(lines), rendered


def test_exact_render_of_the_interface_example(tmp_path: Path) -> None:
    text = spec(
        "model m {",
        "    input x : tokens",
        "    output y = x -> embedding(dim=4)",
        "        -> batchnrom",
        "}",
    )
    _, rendered = first_error(text, tmp_path)
    assert rendered == (
        "bad.spec:4:12: error: unknown op 'batchnrom'\n"
        "    -> batchnrom\n"
        "       ^^^^^^^^^\n"
        "help: did you mean 'batchnorm'?"
    )


def test_three_independent_errors_are_all_reported_in_line_order(tmp_path: Path) -> None:
    text = spec(
        "model m {",
        "    input x : token",
        "    h = x -> rnn(hidden=4, activation=softplus)",
        "    output y = h -> dense(units=1) -> dropout(p=2)",
        "}",
    )
    err, _ = first_error(text, tmp_path)
    got = [(d.span.line, d.span.column, d.message) for d in err.diagnostics]
    assert got == [
        (2, 15, "unknown input type 'token'"),
        (
            3,
            39,
            "'activation' of rnn must be 'tanh', 'sigmoid', 'relu' or 'leaky_relu', got 'softplus'",
        ),
        (4, 49, "'p' of dropout must be less than 1.0, got 2"),
    ]


def test_three_errors_in_different_passes(tmp_path: Path) -> None:
    """An unknown argument, an unknown op and an out-of-range value, one per line."""
    text = seq_model(
        "    h = x -> rnn(hiden=4)",
        "    z = h -> batchnrom",
        "    output y = z -> dense(units=0)",
    )
    err, _ = first_error(text, tmp_path)
    got = [(d.span.line, d.span.column, d.message, d.help) for d in err.diagnostics]
    assert got == [
        (3, 18, "rnn has no argument 'hiden'", "did you mean 'hidden'?"),
        (4, 14, "unknown op 'batchnrom'", "did you mean 'batchnorm'?"),
        (5, 33, "'units' of dense must be greater than 0, got 0", None),
    ]


def test_undefined_output_does_not_also_claim_the_model_has_none(tmp_path: Path) -> None:
    """`output hh` names the output; the only problem is that hh is undefined."""
    err, rendered = first_error(seq_model("    h = x -> relu", "    output hh"), tmp_path)
    assert [d.message for d in err.diagnostics] == ["output 'hh' is not defined in model 'm'"], (
        rendered
    )


def test_task_of_a_model_that_failed_validation_reports_only_the_model(tmp_path: Path) -> None:
    """The model exists, with an error in it: the task naming it adds no second error."""
    bad_model = (*NEXT_CHAR_MODEL[:2], NEXT_CHAR_MODEL[2].replace("rnn(", "rnn(hiden=3, "), "}")
    err, rendered = first_error(task("next_char", *GOOD_NEXT_CHAR, model=bad_model), tmp_path)
    assert [d.message for d in err.diagnostics] == ["rnn has no argument 'hiden'"], rendered


def test_crlf_line_endings_give_the_same_place(tmp_path: Path) -> None:
    text = seq_model("    output y = x -> rnn(hiden=3)").replace("\n", "\r\n")
    err, rendered = first_error(text, tmp_path)
    d = err.diagnostics[0]
    assert (d.span.line, d.span.column, d.message) == (3, 25, "rnn has no argument 'hiden'")
    assert "\r" not in rendered


def test_deeply_nested_value_is_a_spec_error_not_a_crash(tmp_path: Path) -> None:
    depth = 1000
    text = seq_model("    output y = x -> rnn(hidden=" + "[" * depth + "]" * depth + ")")
    with pytest.raises(SpecError) as info:
        specc.loads(text, path="bad.spec", base_dir=tmp_path)
    assert info.value.render().startswith("bad.spec")


def test_overlong_data_path_is_a_spec_error_not_a_crash(tmp_path: Path) -> None:
    """A path the OS refuses (ENAMETOOLONG) is just a file that cannot be found."""
    name = "a" * 300 + ".txt"
    text = task("next_char", "    model = lm", f'    data = text("{name}")')
    err, rendered = first_error(text, tmp_path)
    d = err.diagnostics[0]
    assert (d.span.line, d.span.column) == (7, 17), rendered
    assert d.message.startswith("data file '"), rendered


# A tag model whose rnn drops the time axis, with a task on line 6 whose data file
# is missing: two independent mistakes, both of which a user must see at once.
LAST_ONLY_TAGGER = spec(
    "model tg {",
    "    input words : tokens",
    "    r = words -> embedding(dim=8) -> rnn(hidden=8, return=last)",
    "    output tags = r -> dense(units=labels) -> softmax",
    "}",
    'task t : tag { model = tg  data = conllu("missing.conllu") }',
)
PER_STEP_HELP = "a tag task needs an output per step; remove return=last from rnn 'r' (line 3)"


def test_tag_output_without_time_and_missing_data_are_both_reported(write_spec) -> None:
    """Through `specc.load`, as `specc check` and `specc run` read a file: the missing
    file must not hide the shape error, and the help must point at `return=last`."""
    path = write_spec(LAST_ONLY_TAGGER, "tagger.spec")
    with pytest.raises(SpecError) as info:
        specc.load(path)
    got = [(d.span.line, d.span.column, d.message, d.help) for d in info.value.diagnostics]
    assert got == [
        (
            4,
            47,
            "a tag task needs a distribution over the labels at every step (B, T, labels); "
            "output 'tags' has (B, labels)",
            PER_STEP_HELP,
        ),
        (
            6,
            42,
            "data file 'missing.conllu' not found",
            "paths are relative to the folder of the spec file",
        ),
    ]
    rendered = info.value.render()
    assert f"help: {PER_STEP_HELP}" in rendered
    assert "end the model with dense(units=labels)" not in rendered  # it already does


def test_tag_output_without_time_is_reported_when_the_data_file_exists(tmp_path: Path) -> None:
    """The same spec through `specc.loads` with the file present: only the shape error."""
    (tmp_path / "missing.conllu").write_text("1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n")
    err, rendered = first_error(LAST_ONLY_TAGGER, tmp_path)
    assert [(d.span.line, d.help) for d in err.diagnostics] == [(4, PER_STEP_HELP)], rendered


def test_nul_byte_in_text_is_one_clean_line() -> None:
    with pytest.raises(SpecError) as info:
        specc.loads("model m {\x00}", path="bad.spec")
    rendered = info.value.render()
    assert "\n" not in rendered
    assert rendered.startswith("bad.spec: error: ")
    assert rendered.count("error:") == 1, rendered
    assert "NUL" in rendered


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("\n\n   \n", id="blank-lines"),
        pytest.param("# only a comment\n", id="comment-only"),
    ],
)
def test_empty_spec_is_valid_and_defines_nothing(text: str) -> None:
    program = specc.loads(text, path="empty.spec")
    assert program.models == [] and program.tasks == []


# ----------------------------------------------------------------------- CLI

BAD_SPEC = seq_model("    output y = x -> rnn(hiden=3)")


def _check(capsys, *paths: Path | str) -> tuple[int, str, str]:
    status = cli.main(["check", *map(str, paths)])
    out, err = capsys.readouterr()
    return status, out, err


def test_check_prints_the_rendered_block_to_stderr(capsys, write_spec) -> None:
    path = write_spec(BAD_SPEC)
    with pytest.raises(SpecError) as info:
        specc.load(path)
    status, out, err = _check(capsys, path)
    assert status == 1
    assert out == ""
    assert err == info.value.render() + "\n"
    assert err == (
        f"{path}:3:25: error: rnn has no argument 'hiden'\n"
        "    output y = x -> rnn(hiden=3)\n"
        "                        ^^^^^\n"
        "help: did you mean 'hidden'?\n"
    )


def test_check_reports_every_bad_file_and_fails(capsys, write_spec) -> None:
    bad1 = write_spec(BAD_SPEC, "one.spec")
    bad2 = write_spec(spec("model m {", "    input x : token", "}"), "two.spec")
    status, out, err = _check(capsys, bad1, SPECS / "adding.spec", bad2)
    assert status == 1 and out == ""
    headers = [line for line in err.splitlines() if ": error: " in line]
    assert headers[0].startswith(f"{bad1}:3:25: error: ")
    assert any(h.startswith(f"{bad2}:2:15: error: unknown input type 'token'") for h in headers)
    assert "adding.spec" not in err


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.spec")), ids=lambda p: p.name)
def test_check_is_silent_on_valid_specs(capsys, path: Path) -> None:
    status, out, err = _check(capsys, path)
    assert (status, out, err) == (0, "", "")


def test_check_bad_option_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["check", "--no-such-option", str(SPECS / "adding.spec")])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "--no-such-option" in err


def test_check_without_files_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["check"])
    assert info.value.code == 2
    capsys.readouterr()


def test_command_line_exit_statuses(tmp_path: Path) -> None:
    """The real `python -m specc.cli` process: 0 valid, 1 bad spec, 2 bad option."""
    bad = tmp_path / "bad.spec"
    bad.write_text(BAD_SPEC, encoding="utf-8")

    def run(*args: str):
        return specc_cli(*args, cwd=tmp_path, timeout=60)

    ok = run("check", str(SPECS / "adding.spec"))
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    wrong = run("check", str(bad))
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.startswith(f"{bad}:3:25: error: rnn has no argument 'hiden'\n")
    usage = run("check", "--bogus", str(bad))
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def _one_line_error(err: str, path: Path) -> str:
    """The single error line for a file that cannot be read as a spec."""
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    line = err.rstrip("\n")
    assert line.startswith(f"{path}: error: "), line
    assert line.count("error:") == 1, f"path or 'error:' repeated: {line}"
    assert "Traceback" not in line
    return line.removeprefix(f"{path}: error: ")


def test_check_missing_file(capsys, tmp_path: Path) -> None:
    path = tmp_path / "nope.spec"
    status, out, err = _check(capsys, path)
    assert status == 1 and out == ""
    assert _one_line_error(err, path) == "no such file"


def test_check_directory(capsys, tmp_path: Path) -> None:
    path = tmp_path / "folder.spec"
    path.mkdir()
    status, out, err = _check(capsys, path)
    assert status == 1 and out == ""
    assert _one_line_error(err, path) == "is a directory, not a spec file"


def test_check_binary_file(capsys, write_spec) -> None:
    path = write_spec(b"model\x00\x01\x02 m {}\n", "binary.spec")
    status, out, err = _check(capsys, path)
    assert status == 1 and out == ""
    message = _one_line_error(err, path)
    assert "binary" in message and "offset 5" in message


def test_check_invalid_utf8_names_the_byte_offset(capsys, write_spec) -> None:
    path = write_spec(b"model m {\n    input x : tok\xffens\n}\n", "latin.spec")
    status, out, err = _check(capsys, path)
    assert status == 1 and out == ""
    message = _one_line_error(err, path)
    assert "UTF-8" in message and "byte offset 27" in message and "0xff" in message


def test_check_empty_file_is_valid(capsys, write_spec) -> None:
    path = write_spec("", "empty.spec")
    assert _check(capsys, path) == (0, "", "")


def test_check_accepts_a_utf8_byte_order_mark(capsys, write_spec) -> None:
    """Editors on Windows write a BOM; the file is still UTF-8 text."""
    text = (SPECS / "adding.spec").read_text(encoding="utf-8")
    path = write_spec(b"\xef\xbb\xbf" + text.encode("utf-8"), "bom.spec")
    assert _check(capsys, path) == (0, "", "")
