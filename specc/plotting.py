"""Charts with matplotlib, an optional extra (`pip install 'specc[plot]'`).

specc's core needs no plotting library; the commands that draw charts
(`specc plot`, `specc diagnose --svg`) import matplotlib through
:func:`pyplot`, which turns its absence into one line saying what to install,
and write the picture through :mod:`specc.fileio` like every other output.
Figures are drawn off-screen (the Agg backend), so no display is needed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.errors import OptionError, SpecError
from specc.fileio import write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The picture formats a chart may be saved as, by the output's suffix.
FORMATS = (".png", ".svg", ".pdf")
INSTALL = "pip install 'specc[plot]'"


class MissingPlotting(SpecError):
    """matplotlib is not installed; one line saying what needs it and how to install it."""

    def render(self) -> str:
        return f"error: {self.args[0]}"


def available() -> bool:
    """Whether matplotlib can be imported here."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def pyplot(what: str) -> Any:
    """matplotlib.pyplot on the off-screen backend; a one-line error naming `what`
    needs it, and how to install it, when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingPlotting(
            f"{what} needs matplotlib, which is not installed: {INSTALL}"
        ) from None
    return plt


def check_format(path: str | Path, option: str) -> None:
    """Refuse an output whose suffix names no format a chart is saved as."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OptionError(
            f"{option}: cannot tell the picture format of {path}; end it in "
            + ", ".join(FORMATS[:-1])
            + f" or {FORMATS[-1]}"
        )


def save_figure(fig: Figure, path: str | Path) -> None:
    """Render `fig` in the format the suffix names (SVG for any other) and write it
    atomically."""
    suffix = Path(path).suffix.lower()
    kind = suffix[1:] if suffix in FORMATS else "svg"  # `diagnose --svg OUT` means SVG
    buf = io.BytesIO()
    # no date, so the same chart gives the same file from run to run
    metadata = {"Date": None} if kind in ("svg", "pdf") else {}
    fig.savefig(buf, format=kind, dpi=110, metadata=metadata)
    import matplotlib.pyplot as plt

    plt.close(fig)
    write_bytes(path, buf.getbuffer())
