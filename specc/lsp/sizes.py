"""The sizes (`vocab`, `labels`) a task's data binds, read once and remembered.

The hover shows bound shapes, as `specc explain --task` does, which means
reading the task's data. That runs in the analysis worker (never while a
hover waits), is remembered until the data files change, and is skipped for
files too large to read on every edit of the spec. A data file that cannot be
read leaves the sizes symbolic; the diagnostics already say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specc.api import Program
from specc.ir.spec import Task

#: Data files larger than this together are not read for the hover's sizes.
MAX_DATA_BYTES = 64 * 1024 * 1024

#: Synthetic sources are generated to be measured; not when that is this many scalars.
MAX_SYNTHETIC_SCALARS = 5_000_000

_FILE_FIELDS = ("path", "dev", "test")


@dataclass(frozen=True)
class Bound:
    """Sizes read from one task's data."""

    task: str
    sizes: dict[str, int]


def _stamp(task: Task, base: Path) -> tuple | None:
    """What identifies the data as read: the source's settings and each file's
    size and modification time; None when the files are too large or missing."""
    files = []
    total = 0
    for key in _FILE_FIELDS:
        rel = getattr(task.data, key, None)
        if not isinstance(rel, str):
            continue
        try:
            st = (base / rel).stat()
        except (OSError, ValueError):
            return None
        total += st.st_size
        files.append((rel, st.st_size, st.st_mtime_ns))
    if total > MAX_DATA_BYTES:
        return None
    samples, length = getattr(task.data, "samples", 0), getattr(task.data, "length", 1)
    if (
        isinstance(samples, int)
        and isinstance(length, int)
        and samples * length > (MAX_SYNTHETIC_SCALARS)
    ):
        return None
    return (str(base), task.data.model_dump_json(), tuple(files))


class SizeCache:
    """Sizes by the data that gave them, shared by every open document."""

    def __init__(self) -> None:
        self._known: dict[tuple, dict[str, int] | None] = {}

    def for_models(self, program: Program) -> dict[str, Bound]:
        """For each model, the sizes read from the first task that trains it."""
        out: dict[str, Bound] = {}
        for task in program.ir.tasks:
            if task.model in out:
                continue
            sizes = self._sizes(program, task)
            if sizes is not None:
                out[task.model] = Bound(task.name, sizes)
        return out

    def _sizes(self, program: Program, task: Task) -> dict[str, int] | None:
        stamp = _stamp(task, program.base_dir)
        if stamp is None:
            return None
        if stamp not in self._known:
            if len(self._known) > 256:  # a long session edits many data settings
                self._known.clear()
            self._known[stamp] = _read(program, task)
        return self._known[stamp]


def _read(program: Program, task: Task) -> dict[str, int] | None:
    try:
        from specc.train.prepare import task_sizes

        return dict(task_sizes(program, task))
    except Exception:  # a malformed file: the hover stays symbolic, check reports it
        return None
