"""A Pygments lexer for .spec files, registered as the `specc` lexer.

Registered through the `pygments.lexers` entry point (pyproject.toml), so
`pygmentize -l specc`, Sphinx and MkDocs colour specs once specc is
installed. It follows grammars/specc.lark's tokens and colours by position,
not by lists of names: a name after `->` is an op, a name before `(` a call
(data source, optimizer, activation), a name before `=` inside parentheses
an argument. New ops are coloured with no edit here, and importing this
module costs nothing beyond Pygments (it imports no other part of specc).

Anything the language cannot contain (a stray `@`, an unterminated string)
is an Error token, which is what an editor shows as a mistake.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, include
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

__all__ = ["SpecLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_INT = r"-?[0-9]+(?![.eE0-9])"
_FLOAT = r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?"
_WORD_END = r"(?![A-Za-z0-9_])"


class SpecLexer(RegexLexer):
    """Models, tasks, pipelines and settings of specc's model-spec language."""

    name = "specc"
    aliases: ClassVar[list[str]] = ["specc", "spec"]
    filenames: ClassVar[list[str]] = ["*.spec"]
    mimetypes: ClassVar[list[str]] = ["text/x-specc"]

    tokens: ClassVar[dict] = {
        "common": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"(?:[^"\\\n]|\\.)*"', String.Double),
            (r"(true|false)" + _WORD_END, Keyword.Constant),
            (_INT, Number.Integer),
            (_FLOAT, Number.Float),
            (r"(->)(\s*)(" + _NAME + ")", bygroups(Operator, Whitespace, Name.Function)),
            (r"->", Operator),
        ],
        "root": [
            include("common"),
            (
                r"(model|task)(\s+)(" + _NAME + ")",
                bygroups(Keyword.Declaration, Whitespace, Name.Class),
            ),
            (r"(input|output)" + _WORD_END, Keyword),
            (r"(:)(\s*)(" + _NAME + ")", bygroups(Punctuation, Whitespace, Keyword.Type)),
            (_NAME + r"(?=\s*\()", Name.Function),
            (_NAME + r"(?=\s*=(?!=))", Name.Variable),
            (_NAME, Name),
            (r"\(", Punctuation, "call"),
            (r"[{}\[\],]", Punctuation),
            (r"=", Operator),
        ],
        "call": [
            include("common"),
            (_NAME + r"(?=\s*\()", Name.Function),
            (_NAME + r"(?=\s*=)", Name.Attribute),
            (_NAME, Name),
            (r"\(", Punctuation, "#push"),
            (r"\)", Punctuation, "#pop"),
            (r"[\[\],]", Punctuation),
            (r"=", Operator),
        ],
    }
