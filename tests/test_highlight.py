"""The Pygments lexer: every spec of the repository lexes cleanly, mistakes show as
errors, tokens are coloured by their role, and the entry point names the lexer."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygments", reason="the highlighter needs the lsp extra")

from pygments.token import Error, Token

from specc.highlight import SpecLexer

from helpers import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

SPEC_FILES = sorted(p for p in REPO.rglob("*.spec") if ".git" not in p.parts)


def _tokens(text: str) -> list[tuple]:
    return list(SpecLexer().get_tokens(text))


def test_the_repository_has_specs_to_lex() -> None:
    assert len(SPEC_FILES) >= 7


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_spec_lexes_without_error_tokens(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tokens = _tokens(text)
    assert [value for kind, value in tokens if kind in Error] == []
    assert "".join(value for _, value in tokens) == text  # nothing dropped or invented


@pytest.mark.parametrize("bad", ["@", "'quoted'", '"unterminated', "$x", "a ; b"])
def test_characters_outside_the_language_are_errors(bad: str) -> None:
    text = f"model m {{\n    input x : tokens\n    output y = x -> {bad}\n}}\n"
    assert any(kind in Error for kind, _ in _tokens(text))


def test_tokens_are_coloured_by_role() -> None:
    text = (
        "model m {  # note\n"
        "    input x : sequence[2]\n"
        "    output y = x -> rnn(hidden=8, activation=leaky_relu(slope=0.1), reverse=true)\n"
        "}\n"
        "task t : regress { model = m  data = adding(length=5)  clip = 1.0 }\n"
    )
    found = {(kind, value) for kind, value in _tokens(text) if value.strip()}
    expected = {
        (Token.Keyword.Declaration, "model"),
        (Token.Name.Class, "m"),
        (Token.Comment.Single, "# note"),
        (Token.Keyword, "input"),
        (Token.Keyword.Type, "sequence"),
        (Token.Keyword, "output"),
        (Token.Name.Variable, "y"),
        (Token.Operator, "->"),
        (Token.Name.Function, "rnn"),
        (Token.Name.Attribute, "hidden"),
        (Token.Name.Function, "leaky_relu"),
        (Token.Literal.Number.Float, "0.1"),
        (Token.Literal.Number.Integer, "8"),
        (Token.Keyword.Constant, "true"),
        (Token.Name.Class, "t"),
        (Token.Name.Variable, "clip"),
        (Token.Name.Function, "adding"),
        (Token.Literal.Number.Float, "1.0"),
    }
    assert expected <= found, expected - found


def test_a_new_op_is_coloured_as_an_op_with_no_list_to_edit() -> None:
    text = "model m { input x : sequence[2] output y = x -> lstm(hidden=4) -> gru }"
    ops = [value for kind, value in _tokens(text) if kind is Token.Name.Function]
    assert ops == ["lstm", "gru"]


def test_the_pygments_entry_point_names_this_lexer() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    target = project["project"]["entry-points"]["pygments.lexers"]["specc"]
    module, _, name = target.partition(":")
    assert (module, name) == (SpecLexer.__module__, SpecLexer.__name__)
    assert "specc" in SpecLexer.aliases and "*.spec" in SpecLexer.filenames


# ----- editors/ ---------------------------------------------------------------------

VSCODE = REPO / "editors" / "vscode"


def _patterns(node) -> list[str]:
    """Every regular expression of a TextMate grammar, wherever it is nested."""
    found = []
    if isinstance(node, dict):
        found += [node[k] for k in ("match", "begin", "end") if k in node]
        for value in node.values():
            found += _patterns(value)
    elif isinstance(node, list):
        for value in node:
            found += _patterns(value)
    return found


def test_the_vscode_extension_names_files_that_exist_and_starts_specc_lsp() -> None:
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    [language] = package["contributes"]["languages"]
    [grammar] = package["contributes"]["grammars"]
    assert ".spec" in language["extensions"]
    for rel in (package["main"], language["configuration"], grammar["path"]):
        assert (VSCODE / rel).is_file(), rel
    json.loads((VSCODE / language["configuration"]).read_text(encoding="utf-8"))
    setting = package["contributes"]["configuration"]["properties"]["specc.server.command"]
    assert setting["default"] == ["specc", "lsp"]


def test_the_textmate_grammar_patterns_compile_and_find_ops() -> None:
    grammar = json.loads(
        (VSCODE / "syntaxes" / "specc.tmLanguage.json").read_text(encoding="utf-8")
    )
    patterns = _patterns(grammar["repository"])
    assert len(patterns) >= 10
    compiled = [re.compile(p) for p in patterns]  # the grammar uses no Oniguruma-only syntax
    arrow = next(c for c in compiled if c.pattern.startswith("(->)"))
    assert arrow.search("x -> lstm(hidden=4)").group(2) == "lstm"
