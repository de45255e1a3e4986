"""Between specc's spans and the protocol's positions.

specc counts lines and columns from 1, in characters (code points), with
lines ending at "\\n" only. The protocol counts from 0, in the code units the
client and server agreed on (UTF-16 unless the client offers better). Every
conversion here clamps to the text instead of raising: a server must answer
whatever half-typed text it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from lsprotocol import types

from specc.errors import Span


def _units(text: str, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass
class Text:
    """A document's text split the way specc's spans count it, with the agreed encoding."""

    lines: list[str]
    encoding: str = types.PositionEncodingKind.Utf16
    bom: bool = False  # a dropped byte-order mark still takes a column in the editor

    @classmethod
    def of(cls, source: str, encoding: str, bom: bool = False) -> Text:
        return cls(source.split("\n"), encoding, bom)

    def line(self, index: int) -> str:
        return self.lines[index] if 0 <= index < len(self.lines) else ""

    def position(self, line: int, column: int) -> types.Position:
        """1-based (line, column) in characters to a protocol position."""
        index = max(0, min(line - 1, len(self.lines) - 1))
        text = self.line(index)
        chars = max(0, min(column - 1, len(text)))
        units = _units(text[:chars], self.encoding)
        if self.bom and index == 0:
            units += 1
        return types.Position(line=index, character=units)

    def range(self, span: Span | None) -> types.Range:
        """A span as a protocol range; no span (a whole-file problem) is the file's start."""
        if span is None:
            start = types.Position(line=0, character=0)
            return types.Range(start=start, end=start)
        return types.Range(
            start=self.position(span.line, span.column),
            end=self.position(span.end_line, span.end_column),
        )

    def to_chars(self, pos: types.Position) -> tuple[int, int]:
        """A protocol position to 1-based (line, column) in characters."""
        text = self.line(pos.line)
        want = pos.character - (1 if self.bom and pos.line == 0 else 0)
        used = 0
        for i, ch in enumerate(text):
            if used >= want:
                return pos.line + 1, i + 1
            used += _units(ch, self.encoding)
        return pos.line + 1, len(text) + 1

    def before(self, pos: types.Position) -> str:
        """The text of the cursor's line up to the cursor."""
        line, column = self.to_chars(pos)
        return self.line(line - 1)[: column - 1]

    def upto(self, pos: types.Position) -> str:
        """The whole text up to the cursor."""
        line, column = self.to_chars(pos)
        return "\n".join([*self.lines[: line - 1], self.line(line - 1)[: column - 1]])

    def word_at(self, pos: types.Position) -> tuple[str, Span] | None:
        """The name under (or just before) the cursor, and its span."""
        line, column = self.to_chars(pos)
        text = self.line(line - 1)
        i = column - 1
        if i >= len(text) or not _is_word(text[i]):
            i -= 1
        if i < 0 or not _is_word(text[i]):
            return None
        start = i
        while start > 0 and _is_word(text[start - 1]):
            start -= 1
        end = i + 1
        while end < len(text) and _is_word(text[end]):
            end += 1
        return text[start:end], Span(line, start + 1, line, end + 1)


def _is_word(ch: str) -> bool:
    return ch == "_" or (ch.isascii() and ch.isalnum())


def contains(span: Span, line: int, column: int) -> bool:
    """Whether 1-based (line, column) lies in `span` (its end included: the cursor
    just after a name is still on it)."""
    return (span.line, span.column) <= (line, column) <= (span.end_line, span.end_column)
