"""The one place that writes a user's output file.

Every file specc writes for a user (checkpoints, metrics, pictures, a
rewritten spec) goes through :func:`write_bytes` or :func:`write_text`, and
every command checks where its output goes with :func:`check_writable` before
it does the work, so that a full disk, a read-only file system or a file in
place of a directory is one line (`error: cannot write PATH: REASON (needs
SIZE)`) before training rather than a traceback after it.

Writes are atomic: the bytes go to a temporary file beside the target
(`.NAME.XXXX.tmp`), are fsynced and renamed over it, so a crash or a full disk
part way through never leaves a torn file, and the file that was there before
stays byte for byte as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from specc.errors import SpecError

#: Bytes handed to one `os.write`; a full disk shows up at the chunk that does not fit.
CHUNK = 1 << 20

#: The process's umask, read once (reading it means setting it), for new files' modes.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

#: What an errno means to someone who asked for a file to be written.
_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "is a directory",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EIO: "input/output error",
}

#: Errors that more free space would cure: only these say how much is needed.
_SPACE = (errno.ENOSPC, errno.EDQUOT)


class OutputError(SpecError):
    """An output file cannot be written; one line naming the path, the reason, and,
    where space is short, the size needed and what was kept."""

    def __init__(
        self,
        path: str | Path,
        reason: str,
        needs: int | None = None,
        kept: str | None = None,
    ) -> None:
        self.file = str(path)
        self.reason = reason
        self.needs = needs
        self.kept = kept
        text = f"cannot write {self.file}: {reason}"
        if needs is not None:
            text += f" (needs {size_rounded_up(needs)})"
        if kept:
            text += f"; {kept}"
        self.text = f"error: {text}"
        super().__init__(text)

    def render(self) -> str:
        return self.text

    def keeping(self, kept: str) -> OutputError:
        """The same error, saying what was kept (the loop knows; the writer does not)."""
        return OutputError(self.file, self.reason, self.needs, kept)


def size_rounded_up(n: int) -> str:
    """`370 KiB`: whole units, rounded up, so "needs" never understates."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{-(-n // size):,} {unit}"
    return f"{n} bytes"


def reason_of(exc: OSError) -> str:
    """The reason an OS error gives, in words, without Python's `[Errno N]`."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return (exc.strerror or str(exc)).lower()


def _blocking_file(directory: Path) -> Path | None:
    """The first part of `directory` that exists and is not a directory, if any."""
    for part in [*reversed(directory.parents), directory]:
        if part.exists() and not part.is_dir():
            return part
    return None


def check_writable(path: str | Path, needs: int = 0) -> None:
    """Refuse now, in one line, if `path` cannot be created or replaced, or if its
    file system has less than `needs` bytes free.

    Makes the directory, creates, renames and removes a probe file in it (what
    an atomic write will do later), then removes the directories it made. So a
    read-only file system, missing permission or a file in place of the
    directory is found before any work is done rather than after it, and a run
    refused for another reason leaves nothing behind.
    """
    target = Path(path)
    directory = target.parent
    blocker = _blocking_file(directory)
    if blocker is not None:
        raise OutputError(target, f"{blocker} is a file, not a directory")
    if target.is_dir():
        raise OutputError(target, "is a directory")
    made = [part for part in [directory, *directory.parents] if not part.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        os.close(fd)
        try:
            os.replace(probe, probe + ".renamed")
            probe += ".renamed"
        finally:
            Path(probe).unlink(missing_ok=True)
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        raise OutputError(target, reason_of(exc)) from None
    finally:
        # a run refused later (bad data, a wrong prime) should leave no trace
        for part in made:
            try:
                part.rmdir()
            except OSError:
                break
    if needs > free:
        raise OutputError(target, f"only {size_rounded_up(free)} free on its device", needs)


def write_bytes(path: str | Path, data: bytes | memoryview, kept: str | None = None) -> None:
    """Write `data` atomically; any failure is an :class:`OutputError` naming `path`.

    `kept` says, in the error, what is still safe (such as the latest good
    checkpoint). The temporary file is removed whatever happens, and the file
    that was at `path` is untouched unless the write succeeded.
    """
    target = Path(path)
    blocker = _blocking_file(target.parent)
    if blocker is not None:
        raise OutputError(target, f"{blocker} is a file, not a directory", kept=kept)
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            os.fchmod(fd, _mode_for(target))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view[:CHUNK]) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        needs = len(data) if exc.errno in _SPACE else None
        raise OutputError(target, reason_of(exc), needs, kept) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    _sync_directory(target.parent)


def _mode_for(target: Path) -> int:
    """The permissions the file should end with: those of the file it replaces, else
    what `open()` would give a new file (mkstemp's private 0600 is for the temporary)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def write_text(path: str | Path, text: str, kept: str | None = None) -> None:
    """:func:`write_bytes` of `text` as UTF-8."""
    write_bytes(path, text.encode("utf-8"), kept)


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable; file systems that cannot fsync a directory
    (some network ones) are left to their own guarantees."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
