"""specc's diagnostics as the protocol's: same message, same span, the help below it.

Errors are what `specc check` reports; a data file that is missing is a
warning here, because in an editor it is often not written yet and must not
hide the errors in the spec itself.
"""

from __future__ import annotations

from lsprotocol import types

from specc.errors import Diagnostic
from specc.frontend.analysis import Analysis
from specc.lsp.convert import Text

SOURCE = "specc"


def _one(diag: Diagnostic, text: Text, severity: types.DiagnosticSeverity) -> types.Diagnostic:
    message = diag.message if not diag.help else f"{diag.message}\nhelp: {diag.help}"
    return types.Diagnostic(
        range=text.range(diag.span), message=message, severity=severity, source=SOURCE
    )


def to_protocol(analysis: Analysis, text: Text) -> list[types.Diagnostic]:
    """Every error, then every warning, in the order specc reports them."""
    errors = [_one(d, text, types.DiagnosticSeverity.Error) for d in analysis.errors]
    warnings = [_one(d, text, types.DiagnosticSeverity.Warning) for d in analysis.warnings]
    return errors + warnings
