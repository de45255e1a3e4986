"""Reading a user's data file into text, with every failure as a DataError.

All loaders go through :func:`read_utf8` so that a missing file, a directory,
a permission problem or a stray Latin-1 byte is reported the same way
everywhere, as ``FILE[:LINE]: error: ...``, and never as a traceback.
"""

from __future__ import annotations

from pathlib import Path

from specc.errors import DataError

_BOM = "\ufeff"


def read_utf8(path: str | Path) -> str:
    """Return the file's text with ``\\r\\n`` turned into ``\\n``.

    Line endings are normalised here because a file saved on Windows would
    otherwise leave ``\\r`` inside the last token of every line, which shows up
    much later as a mysterious extra vocabulary entry. A leading byte-order mark
    is dropped for the same reason: editors add it silently.
    """
    shown = str(path)
    p = Path(path)
    try:
        if p.is_dir():
            raise DataError(shown, "is a directory, not a file")
        raw = p.read_bytes()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(shown, "no such file") from None
    except IsADirectoryError:
        raise DataError(shown, "is a directory, not a file") from None
    except PermissionError:
        raise DataError(shown, "permission denied") from None
    except (OSError, ValueError) as exc:  # ValueError: e.g. a NUL byte in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DataError(shown, f"cannot read file: {reason}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            shown,
            f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at byte offset {exc.start}",
            line=line,
        ) from None
    if text.startswith(_BOM):
        text = text[len(_BOM) :]
    return text.replace("\r\n", "\n")
