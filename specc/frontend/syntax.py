"""Text to parse tree: the Lark parser and syntax errors a person can read."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from specc.errors import Diagnostic, Span, SpecError

#: How each terminal is named in an error message.
TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "ARROW": "'->'",
    "DOTTED": "a dotted name",
    "EQUAL": "'='",
    "COLON": "':'",
    "COMMA": "','",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "MODEL": "'model'",
    "TASK": "'task'",
    "PARAM": "'param'",
    "SWEEP": "'sweep'",
    "INPUT": "'input'",
    "OUTPUT": "'output'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "$END": "end of file",
}

#: The order terminals are listed in, so messages read the same every time.
_WORD_RANK = {word: i for i, word in enumerate(TERMINAL_WORDS.values())}


def _grammar_text() -> str:
    """The grammar ships inside the wheel; a source checkout keeps it at top level."""
    packaged = resources.files("specc").joinpath("grammars/specc.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "grammars" / "specc.lark"
    return checkout.read_text(encoding="utf-8")


@functools.cache
def parser() -> Lark:
    return Lark(
        _grammar_text(),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def parse(text: str, path: str | None = None) -> tuple[Tree, list[Token]]:
    """Parse spec text; returns the tree and the comments (for `fmt`)."""
    text = text.removeprefix("\ufeff")  # editors may add a byte-order mark
    comments: list[Token] = []
    lark = parser()
    try:
        comments.extend(_comments(text))  # the parser drops ignored tokens; fmt needs them
    except _TooDeep as deep:
        span = Span(deep.line, deep.column, deep.line, deep.column + 1)
        raise SpecError(
            "brackets nest too deeply",
            [Diagnostic(f"brackets nest more than {MAX_NESTING} levels deep", span)],
            path=path,
            source=text,
        ) from None
    errors: list[Diagnostic] = []

    def recover(exc: UnexpectedInput) -> bool:
        """Note the error, then skip the token and go on, so one file reports
        every syntax error rather than the first. Only the first error of a
        line is kept: the ones after it are usually echoes of it."""
        diag = _describe(exc, text)
        last_line = errors[-1].span.line if errors and errors[-1].span else None
        if diag.span is None or diag.span.line != last_line:
            errors.append(diag)
        if len(errors) >= MAX_SYNTAX_ERRORS or not isinstance(exc, UnexpectedToken):
            return False
        _repair(exc)
        return True

    try:
        tree = lark.parse(text, on_error=recover)
    except UnexpectedInput as exc:
        diag = _describe(exc, text)
        if not errors or (diag.span and errors[-1].span and diag.span.line != errors[-1].span.line):
            errors.append(diag)
    except RecursionError:
        raise SpecError("the spec nests too deeply to parse", path=path, source=text) from None
    if errors:
        raise SpecError("syntax error", errors, path=path, source=text)
    return tree, comments


#: A file reports at most this many syntax errors.
MAX_SYNTAX_ERRORS = 20

#: Brackets may nest this deep; deeper is refused before parsing, so no stage recurses
#: without bound.
MAX_NESTING = 64


_SCAN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[()\[\]\n]')


def _comments(text: str) -> list[Token]:
    """Comments found by a scan that respects strings (a '#' in a string is no comment).

    The same scan refuses brackets nested deeper than MAX_NESTING, so no later
    stage recurses without bound. One regex pass keeps 5 MB files quick."""
    found: list[Token] = []
    line, line_start, depth = 1, 0, 0
    for m in _SCAN.finditer(text):
        piece = m.group()
        first = piece[0]
        if first == "\n":
            line, line_start = line + 1, m.end()
        elif first == "#":
            col = m.start() - line_start + 1
            tok = Token("COMMENT", piece)
            tok.line, tok.column, tok.end_line, tok.end_column = line, col, line, col + len(piece)
            found.append(tok)
        elif first in "([":
            depth += 1
            if depth > MAX_NESTING:
                raise _TooDeep(line, m.start() - line_start + 1)
        elif first in ")]":
            depth = max(0, depth - 1)
    return found


class _TooDeep(Exception):
    def __init__(self, line: int, column: int) -> None:
        self.line, self.column = line, column


def _words(expected: set[str]) -> str:
    if "NAME" in expected:  # a dotted name (`val.accuracy`) is a kind of name: say it once
        expected = expected - {"DOTTED"}
    names = sorted(
        {TERMINAL_WORDS.get(e, f"'{e.lower()}'") for e in expected},
        key=lambda w: _WORD_RANK.get(w, len(_WORD_RANK)),
    )
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _token_text(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _previous_token(text: str, line: int, column: int) -> str | None:
    """The last token before a position, to say "after 'h'"."""
    lark = parser()
    prev = None
    try:
        for tok in lark.lex(text[: _offset(text, line, column)]):
            prev = tok
    except UnexpectedInput:
        return None
    return str(prev) if prev is not None else None


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + column - 1


def _describe(exc: UnexpectedInput, text: str) -> Diagnostic:
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        tok = exc.token
        span = Span(
            tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1
        )
        expected = _acceptable(exc) - {"COMMENT"}
        missing_arrow = _missing_arrow(text, tok, expected)
        if missing_arrow is not None:
            return missing_arrow
        prev = _previous_token(text, tok.line, tok.column)
        after = f" after '{prev}'" if prev else ""
        message = f"expected {_words(expected)}{after}, found {_token_text(tok)}"
        return Diagnostic(message, span, _hint(expected, tok))
    if isinstance(exc, (UnexpectedEOF, UnexpectedToken)):
        expected = (_acceptable(exc) if isinstance(exc, UnexpectedToken) else set(exc.expected)) - {
            "COMMENT"
        }
        lines = text.split("\n")
        # point at the end of the last non-empty line
        ln = len(lines)
        while ln > 1 and not lines[ln - 1].strip():
            ln -= 1
        col = len(lines[ln - 1]) + 1
        span = Span(ln, col, ln, col + 1)
        return Diagnostic(f"unexpected end of file; expected {_words(expected)}", span)
    assert isinstance(exc, UnexpectedCharacters)
    ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
    span = Span(exc.line, exc.column, exc.line, exc.column + 1)
    if ch == '"':
        return Diagnostic(
            "unterminated string", span, "close the string with '\"' on the same line"
        )
    if ch == "'":
        return Diagnostic('unexpected character "\'"', span, 'strings use double quotes: "..."')
    shown = repr(ch)[1:-1]
    return Diagnostic(f"unexpected character '{shown}'", span)


#: Tokens a repair may insert, tried in this order: a missing closer or separator is
#: the usual slip, and inserting it lets the rest of the file parse as written.
_REPAIRS = (("RPAR", ")"), ("RSQB", "]"), ("COMMA", ","), ("ARROW", "->"), ("EQUAL", "="))


def _repair(exc: UnexpectedToken) -> None:
    """Insert the one token that lets the parser take the offending token, if any;
    otherwise the offending token is skipped."""
    ip = exc.interactive_parser
    for kind, text in _REPAIRS:
        trial = ip.copy()
        try:
            trial.feed_token(Token(kind, text))
            trial.feed_token(exc.token)
        except UnexpectedInput:
            continue
        ip.feed_token(Token(kind, text))
        ip.feed_token(exc.token)
        return


def _acceptable(exc: UnexpectedToken) -> set[str]:
    """Tokens that really can come next (the LALR table's set also lists tokens that
    only some later reduction could accept)."""
    try:
        return set(exc.interactive_parser.accepts())
    except Exception:  # the precise set is a nicety; fall back to the table's
        return set(exc.expected)


#: The keywords that begin a top-level item.
_ITEM_KEYWORDS = {"MODEL", "TASK", "PARAM", "SWEEP"}


def _hint(expected: set[str], tok: Token) -> str | None:
    if "RBRACE" in expected and tok.type in _ITEM_KEYWORDS:
        return "is a '}' missing before this?"
    if tok.type in {*_ITEM_KEYWORDS, "INPUT", "OUTPUT", "TRUE", "FALSE"} and "NAME" in expected:
        return f"'{tok}' is a keyword and cannot be used as a name"
    return None


def _missing_arrow(text: str, tok: Token, expected: set[str]) -> Diagnostic | None:
    """`x embedding(dim=4)`: a step written without its arrow reads as a new
    statement named `embedding`; say what was really meant."""
    if tok.type != "LPAR" or "EQUAL" not in expected:
        return None
    try:
        tokens = list(parser().lex(text[: _offset(text, tok.line, tok.column)]))
    except UnexpectedInput:
        return None
    if len(tokens) < 2 or tokens[-1].type != "NAME":
        return None
    step, before = tokens[-1], tokens[-2]
    if before.type not in {"NAME", "RPAR"} or before.line != step.line:
        return None
    span = Span(step.line, step.column, step.line, step.column + len(step))
    return Diagnostic(
        f"expected '->' before '{step}'", span, f"write `-> {step}(...)` to add a step"
    )
