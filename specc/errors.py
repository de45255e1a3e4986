"""Errors a user can cause, and how they are shown.

Every mistake in something the user gave (a spec, a data file, a checkpoint,
an option) is raised as a :class:`SpecError` subclass. The CLI prints it and
exits with status 1; anything else escaping is a bug in specc.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Span:
    """A region of source text, 1-based lines and columns, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass
class Diagnostic:
    """One problem at one place in one spec file."""

    message: str
    span: Span | None = None
    help: str | None = None


class SpecError(Exception):
    """Something the user gave is wrong; carries every problem found."""

    def __init__(
        self,
        message: str = "",
        diagnostics: list[Diagnostic] | None = None,
        path: str | None = None,
        source: str | None = None,
    ) -> None:
        self.diagnostics = diagnostics or [Diagnostic(message)]
        self.path = path
        self.source = source
        super().__init__(message or self.diagnostics[0].message)

    def render(self) -> str:
        """The text a person sees: one block per diagnostic."""
        return "\n".join(render_diagnostic(d, self.path, self.source) for d in self.diagnostics)

    def __str__(self) -> str:
        return self.render()


class DataError(SpecError):
    """A data file is missing or malformed; names the file and line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.file = str(path)
        self.line = line
        where = f"{self.file}:{line}" if line is not None else self.file
        self.text = f"{where}: error: {message}"
        super().__init__(message)

    def render(self) -> str:
        return self.text


class CheckpointError(SpecError):
    """A checkpoint cannot be used; one line saying why."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.text = f"{path}: error: {message}"
        super().__init__(message)

    def render(self) -> str:
        return self.text


class OptionError(SpecError):
    """A command-line option has a value specc cannot use."""

    def render(self) -> str:
        return f"error: {self.args[0]}"


@dataclass
class Diagnostics:
    """Collects problems during a pass so all of them are reported at once."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, message: str, span: Span | None = None, help: str | None = None) -> None:
        self.items.append(Diagnostic(message, span, help))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, path: str | None, source: str | None) -> None:
        if self.items:
            ordered = sorted(
                self.items,
                key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0),
            )
            raise SpecError(ordered[0].message, ordered, path=path, source=source)


def render_diagnostic(diag: Diagnostic, path: str | None, source: str | None) -> str:
    """Format as ``PATH:LINE:COL: error: MESSAGE``, the line, a caret, and help."""
    where = path or "<spec>"
    if diag.span is None:
        lines = [f"{where}: error: {diag.message}"]
    else:
        span = diag.span
        lines = [f"{where}:{span.line}:{span.column}: error: {diag.message}"]
        src_lines = source.split("\n") if source is not None else []
        if 0 < span.line <= len(src_lines):
            raw = src_lines[span.line - 1].replace("\t", " ")
            indent = len(raw) - len(raw.lstrip(" "))
            text = raw.strip(" ")
            offset = max(0, span.column - 1 - indent)
            if len(text) > 120:  # show a window around the span of very long lines
                start = max(0, offset - 40)
                text = text[start : start + 100]
                offset -= start
            room = max(1, len(text) - offset)
            if span.end_line == span.line and span.end_column > span.column:
                width = min(span.end_column - span.column, room)
            else:
                width = room
            lines.append(f"    {text}")
            lines.append("    " + " " * offset + "^" * width)
    if diag.help:
        lines.append(f"help: {diag.help}")
    return "\n".join(lines)
