"""Exporters: a specc model in a format other tools run or draw.

`specc.export.onnx` writes ONNX (served by onnxruntime, drawn by Netron). It
needs the optional `onnx` package, so this package itself imports nothing
beyond specc: `require_onnx` lets the command say what to install, in one
line, before anything imports onnx.
"""

from __future__ import annotations

from specc.errors import SpecError

#: What a user installs to export (the `onnx` extra of pyproject.toml).
INSTALL_HINT = "pip install 'specc[onnx]' (or: pip install onnx onnxruntime)"


class ExportError(SpecError):
    """A model or an option that cannot be exported; one line saying why."""

    def render(self) -> str:
        return f"error: {self.args[0]}"


def require_onnx() -> None:
    """Raise an `ExportError` naming the extra to install when onnx is missing."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ExportError(f"specc export needs the onnx package: {INSTALL_HINT}") from None


__all__ = ["INSTALL_HINT", "ExportError", "require_onnx"]
