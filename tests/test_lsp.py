"""`specc lsp` as an editor sees it: JSON-RPC over the stdio of a real `specc lsp` process.

Diagnostics (exact ranges, fixed errors cleared, missing data as warnings),
hover with shapes and parameter counts, completion from the registries,
definitions and references, formatting as `specc fmt`, a clean shutdown, the
one-line refusal without pygls, and mutants of the fuzz suite sent through
didChange with every request answered.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pygls", reason="the language server needs the lsp extra")

import specc
from specc.ir.ops import USER_OPS
from specc.ir.spec import DATA_CLASSES, TASK_KINDS, Task

from helpers import SPECS, checkout_env, specc_cli
from lsp_client import LspClient
from mutants import CHARS, MUTATIONS, VOCAB, apply_mutation

TWO_ERRORS = """\
model m {
    input x : tokens
    output y = x -> embedding(dim=4) -> rnn(hiden=8)
    z = x -> embeding(dim=4)
}
"""


def _range(line: int, start: int, end: int) -> dict:
    return {"start": {"line": line, "character": start}, "end": {"line": line, "character": end}}


@pytest.fixture(scope="module")
def server() -> Iterator[LspClient]:
    client = LspClient("--debounce", "0")
    client.initialize(SPECS)
    yield client
    try:
        assert client.close() == 0
        assert client.errors_logged() == ""
    finally:
        client.kill()


def _open(client: LspClient, path: Path, text: str | None = None) -> str:
    uri = path.resolve().as_uri()
    client.open(uri, path.read_text(encoding="utf-8") if text is None else text)
    client.diagnostics(uri, version=1)
    return uri


def _labels(result) -> list[str]:
    items = result["items"] if isinstance(result, dict) else result
    return [item["label"] for item in items]


def _hover(client: LspClient, uri: str, line: int, character: int) -> str:
    result = client.at("textDocument/hover", uri, line, character)
    assert result is not None, f"no hover at {line}:{character}"
    return result["contents"]["value"]


# ----- lifecycle and diagnostics ------------------------------------------------------


def test_diagnostics_exact_ranges_then_a_fix_clears_them_then_a_clean_exit(tmp_path) -> None:
    client = LspClient()
    try:
        caps = client.initialize()["capabilities"]
        assert caps["hoverProvider"] and caps["definitionProvider"]
        uri = (tmp_path / "two.spec").as_uri()
        client.open(uri, TWO_ERRORS)
        diags = client.diagnostics(uri, version=1)
        # the messages, spans and help of `specc check`, both errors at once
        assert [(d["range"], d["message"], d["severity"]) for d in diags] == [
            (_range(2, 44, 49), "rnn has no argument 'hiden'\nhelp: did you mean 'hidden'?", 1),
            (_range(3, 13, 21), "unknown op 'embeding'\nhelp: did you mean 'embedding'?", 1),
        ]
        fixed = TWO_ERRORS.replace("embeding", "embedding")
        client.change(uri, fixed, version=2)
        assert [d["message"] for d in client.diagnostics(uri, version=2)] == [
            "rnn has no argument 'hiden'\nhelp: did you mean 'hidden'?"
        ]
        client.change(uri, fixed.replace("hiden", "hidden"), version=3)
        assert client.diagnostics(uri, version=3) == []
        assert client.close() == 0
        assert client.errors_logged() == ""
    finally:
        client.kill()


def test_changes_in_quick_succession_are_checked_once(tmp_path) -> None:
    """Debounced: typing five edits within the pause publishes for the last one only."""
    client = LspClient("--debounce", "0.5")
    try:
        client.initialize()
        uri = (tmp_path / "typing.spec").as_uri()
        client.open(uri, TWO_ERRORS)
        client.diagnostics(uri, version=1)
        for version in range(2, 7):
            client.change(uri, TWO_ERRORS.replace("hiden", "hidden"[:version]), version)
        assert len(client.diagnostics(uri, version=6)) == 1  # `hidden` typed: one error left
        published = [
            m["params"].get("version")
            for m in client.seen
            if m["method"] == "textDocument/publishDiagnostics"
        ]
        assert published == []  # nothing for versions 2 to 5
    finally:
        client.kill()


def test_missing_data_file_is_a_warning_and_hides_no_error(server, tmp_path) -> None:
    spec = tmp_path / "t.spec"
    spec.write_text(
        (SPECS / "tagger.spec")
        .read_text(encoding="utf-8")
        .replace("data/sample.conllu", "nowhere.conllu")
        .replace("batch     = 16", "batch     = 0"),
        encoding="utf-8",
    )
    uri = spec.as_uri()
    server.open(uri, spec.read_text(encoding="utf-8"))
    diags = server.diagnostics(uri, version=1)
    by_severity = {d["severity"]: d["message"] for d in diags}
    assert len(diags) == 2
    assert by_severity[2].startswith("data file 'nowhere.conllu' not found")  # a warning
    assert "'batch'" in by_severity[1]  # the error it must not hide
    assert specc_cli("check", str(spec)).returncode == 1  # still an error on the command line


# ----- hover --------------------------------------------------------------------------


def test_hover_on_rnn_shows_its_shape_parameters_and_equation(server) -> None:
    uri = _open(server, SPECS / "char_rnn.spec")
    text = _hover(server, uri, 5, 12)  # `-> rnn(hidden=128, ...)`
    assert "(B, T, 128)" in text
    assert "20,608" in text
    assert "h_t = tanh(x_t·W_xh + h_{t-1}·W_hh + b)" in text


def test_hover_binds_the_sizes_read_from_the_task_data(server) -> None:
    uri = _open(server, SPECS / "tagger.spec")
    program = specc.load(SPECS / "tagger.spec")
    from specc.train.prepare import task_sizes

    labels = task_sizes(program, "ud_english")["labels"]
    line = (SPECS / "tagger.spec").read_text(encoding="utf-8").split("\n")[6]
    text = _hover(server, uri, 6, line.index("tags") + 1)  # the statement's name: softmax
    assert f"(B, T, {labels})" in text
    assert "(output)" in text
    model = _hover(server, uri, 1, 8)
    assert model.startswith("**model tagger**")


# ----- completion ---------------------------------------------------------------------


def test_completion_after_an_arrow_lists_every_op(server, tmp_path) -> None:
    uri = (tmp_path / "c.spec").as_uri()
    text = "model m {\n    input x : tokens\n    output y = x -> \n}\n"
    server.open(uri, text)
    result = server.at("textDocument/completion", uri, 2, len("    output y = x -> "))
    assert sorted(_labels(result)) == sorted(USER_OPS)
    rnn = next(i for i in result["items"] if i["label"] == "rnn")
    assert rnn["detail"].startswith("rnn(hidden, activation=tanh")


CONTEXTS = """\
model m {
    input x : tokens
    e = x -> embedding(dim=8)
    output y = e -> rnn(hidden=8, init=identity) -> dense(units=vocab)
}
task t : next_char {
    model = m
    data = text("a.txt")
    seed = 0
}
"""


@pytest.mark.parametrize(
    ("line", "after", "expected", "absent"),
    [
        (3, "rnn(", {"hidden", "activation", "init", "reverse", "return"}, {"units"}),
        (3, "init=", {"default", "xavier", "orthogonal", "identity"}, set()),
        (3, "units=", {"vocab", "labels"}, set()),
        (2, "e = ", {"x", "e", "y", "rnn"}, set()),
        (1, "x : ", {"tokens", "sequence", "vector"}, set()),
        (5, "task t : ", set(TASK_KINDS), set()),
        (6, "model = ", {"m"}, set()),
        (7, "data = ", {"text"}, set(DATA_CLASSES) - {"text"}),  # only what fits next_char
        (7, "text(", {"path", "builtin"}, set()),
        (8, "    ", set(Task.settings_for("next_char")) - {"model", "data"}, {"model", "data"}),
    ],
)
def test_completion_in_context(server, tmp_path, line, after, expected, absent) -> None:
    uri = (tmp_path / "contexts.spec").as_uri()
    server.open(uri, CONTEXTS)
    server.diagnostics(uri, version=1)
    column = CONTEXTS.split("\n")[line].index(after) + len(after)
    labels = set(_labels(server.at("textDocument/completion", uri, line, column)))
    assert expected <= labels, expected - labels
    assert not labels & absent


def test_argument_completion_shows_defaults_and_ranges(server, tmp_path) -> None:
    uri = (tmp_path / "args.spec").as_uri()
    text = "model m {\n    input x : sequence[2]\n    output y = x -> batchnorm(\n}\n"
    server.open(uri, text)
    result = server.at("textDocument/completion", uri, 2, len("    output y = x -> batchnorm("))
    details = {i["label"]: i["detail"] for i in result["items"]}
    assert details["momentum"] == "momentum: number ≥ 0 and ≤ 1 = 0.1"
    assert details["eps"] == "eps: number > 0 = 1e-05"


# ----- definitions, references, formatting --------------------------------------------


def test_definition_and_references_of_nodes_and_models(server) -> None:
    path = SPECS / "tagger.spec"
    uri = _open(server, path)
    lines = path.read_text(encoding="utf-8").split("\n")
    use = lines[4].index("= e") + 2  # `fwd  = e -> ...`
    [target] = server.at("textDocument/definition", uri, 4, use)
    assert target["range"] == _range(3, 4, 5)  # `e    = words -> ...`
    refs = server.at("textDocument/references", uri, 3, 4, context={"includeDeclaration": False})
    assert sorted(r["range"]["start"]["line"] for r in refs) == [4, 5]
    model_line = next(i for i, x in enumerate(lines) if "model     = tagger" in x)
    [model] = server.at("textDocument/definition", uri, model_line, lines[model_line].index("tag"))
    assert model["range"] == _range(1, 6, 12)
    refs = server.at("textDocument/references", uri, 1, 7, context={"includeDeclaration": True})
    assert [r["range"]["start"]["line"] for r in refs] == [1, model_line]


def test_formatting_is_specc_fmt(server, tmp_path) -> None:
    messy = tmp_path / "messy.spec"
    messy.write_text(
        "model m{input x:tokens output y=x->embedding(dim=4)->softmax}  # note\n",
        encoding="utf-8",
    )
    uri = _open(server, messy)
    params = {"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}}
    [edit] = server.request("textDocument/formatting", params)
    assert edit["newText"] == specc_cli("fmt", str(messy)).stdout
    server.change(uri, "model m {", version=2)
    assert server.request("textDocument/formatting", params) is None  # does not parse


def test_lsp_without_pygls_says_what_to_install() -> None:
    code = "import sys; sys.modules['pygls'] = None; from specc.cli import entry; entry()"
    done = subprocess.run(
        [sys.executable, "-c", code, "lsp"],
        capture_output=True,
        text=True,
        env=checkout_env(),
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr == "specc lsp needs the language server extra: pip install 'specc[lsp]'\n"


# ----- robustness ---------------------------------------------------------------------


def _fuzz(server: LspClient, tmp_path: Path, seed: int, count: int) -> None:
    """Fuzz: each mutant is analysed (its diagnostics arrive), and hover, completion,
    definition and formatting at random places answer; the server logs no failure."""
    rng = random.Random(seed)
    seeds = [p.read_text(encoding="utf-8") for p in sorted(SPECS.glob("*.spec"))]
    uri = (tmp_path / "fuzz.spec").as_uri()
    server.open(uri, seeds[0])
    started = time.monotonic()
    for version in range(2, count + 2):
        text = rng.choice(seeds)
        for _ in range(rng.randint(1, 5)):
            text = apply_mutation(
                text,
                rng.choice(MUTATIONS),
                rng.randrange(1 << 30),
                rng.randrange(1 << 30),
                rng.choice(VOCAB),
                rng.choice(CHARS),
            )
        server.change(uri, text, version)
        lines = text.split("\n")
        line = rng.randrange(len(lines) + 1)
        column = rng.randrange(len(lines[line]) + 2) if line < len(lines) else 0
        for method in ("textDocument/hover", "textDocument/completion", "textDocument/definition"):
            server.at(method, uri, line, column)  # any answer, but an answer
        formatting = {"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}}
        server.request("textDocument/formatting", formatting)
        server.diagnostics(uri, version=version)
    assert time.monotonic() - started < count * 2
    assert server.errors_logged() == ""
    assert not [m for m in server.seen if m["method"] == "window/logMessage"]


def test_mutated_specs_through_did_change_get_every_request_answered(server, tmp_path) -> None:
    _fuzz(server, tmp_path, seed=22, count=100)


@pytest.mark.slow
def test_mutated_specs_through_did_change_at_volume(server, tmp_path) -> None:
    _fuzz(server, tmp_path, seed=23, count=2000)


def test_positions_count_utf16_units_as_editors_do() -> None:
    """A span after an emoji (two UTF-16 units) lands where the editor shows it."""
    from lsprotocol import types

    from specc.errors import Span
    from specc.lsp.convert import Text

    text = Text.of('    data = text("😀.txt") -> x', types.PositionEncodingKind.Utf16)
    start = text.position(1, 23)  # the `->` after the string, 1-based in characters
    assert start.character == 23
    assert text.to_chars(start) == (1, 23)
    wide = Text.of('"😀" x', types.PositionEncodingKind.Utf16)
    assert wide.range(Span(1, 5, 1, 6)).start.character == 5
    assert wide.to_chars(types.Position(line=0, character=5)) == (1, 5)
    assert Text.of('"😀" x', types.PositionEncodingKind.Utf32).position(1, 5).character == 4
