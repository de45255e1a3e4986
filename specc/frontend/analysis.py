"""The front end for tools that must not stop at the first problem: an editor.

`specc check` wants an answer or an error; a language server wants, for every
keystroke, everything at once: the checked IR when there is one, the surface
form when the text at least parses (for names, definitions, completion), every
error, and missing data files as warnings that leave the rest visible. This
module gives that, built only on the front end's own passes, so the editor's
messages and spans are exactly those of `specc check`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from specc.errors import Diagnostic, SpecError
from specc.frontend import surface as s
from specc.frontend.compile import Compiled, compile_text
from specc.frontend.fmt import format_spec
from specc.frontend.lower import lower
from specc.frontend.passes.resolve import _auto_names
from specc.frontend.syntax import parse


@dataclass
class Analysis:
    """What the front end made of one text; never partial in a misleading way.

    ``source`` is the text the spans refer to (line ends normalised, any
    byte-order mark dropped); ``bom`` says whether one was dropped, since an
    editor counts it as the first column of line 1."""

    source: str
    bom: bool
    surface: s.SpecFile | None = None
    compiled: Compiled | None = None
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)


def _normalise(text: str) -> tuple[str, bool]:
    text = text.replace("\r\n", "\n")
    return text.removeprefix("\ufeff"), text.startswith("\ufeff")


def _key(diag: Diagnostic) -> tuple:
    return (diag.message, diag.span, diag.help)


def analyse_text(text: str, path: str | None = None, base_dir: Path | None = None) -> Analysis:
    """Compile `text` collecting diagnostics instead of raising.

    The file is compiled without opening data files (every error but a missing
    file), then, if it names any, once more with `base_dir`: what only the
    second run reports is about data files, and comes back as warnings."""
    source, bom = _normalise(text)
    result = Analysis(source=source, bom=bom)
    try:
        result.compiled = compile_text(source, path, None)
        result.surface = result.compiled.surface
    except SpecError as err:
        result.errors = list(err.diagnostics)
        try:
            result.surface = lower(*parse(source, path))
        except SpecError:
            result.surface = None
    if base_dir is None or result.surface is None or not _names_data(result.surface):
        return result
    try:
        compile_text(source, path, base_dir)
    except SpecError as err:
        known = {_key(d) for d in result.errors}
        result.warnings = [d for d in err.diagnostics if _key(d) not in known]
    return result


def _names_data(spec: s.SpecFile) -> bool:
    return any(
        isinstance(item, s.TaskDecl) and any(st.key == "data" for st in item.settings)
        for item in spec.items
    )


def format_text(text: str, path: str | None = None) -> str:
    """The canonical layout `specc fmt` prints; SpecError when the text does not parse."""
    source, _ = _normalise(text)
    return format_spec(lower(*parse(source, path)))


def step_names(decl: s.ModelDecl) -> list[list[str]]:
    """The node name of every step of every statement of a model (`rnn_1`, ...), by
    the language's naming rule; one list per statement, empty for inputs."""
    return _auto_names(decl)
