"""Checkpoints: one `.npz` that numpy loads without pickles.

Arrays `NODE.PARAM` (trainable) and `NODE.NAME` (state such as running
statistics) sit at top level under their own names; everything else is a
small JSON document stored as a uint8 array (`__meta__`, `__model__`,
`__task__`, `__vocab__`, `__labels__`, `__chars__`, `__train__`, `__metrics__`, described
by :class:`specc.train.checkpoint_docs.CheckpointDocs`, which writes and reads
them), an optimizer array `__opt__.NAME`, or, for a task trained with
``state = carry`` (its `__task__` says so), a carried recurrent state
`__carry__.NODE.h` / `__carry__.NODE.c` of shape (batch, H): where each row
of the next batch starts, so a resumed run goes on exactly as it would have.
Writes go to a temporary file, are fsynced and renamed, so a crash never
leaves a torn checkpoint.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from specc.backend.carry import zero_state
from specc.backend.graph import Network
from specc.data.vocab import Vocab
from specc.errors import CheckpointError, Diagnostics
from specc.fileio import write_bytes
from specc.frontend.passes.fits import check_parameters_fit
from specc.frontend.passes.shapes import infer_shapes
from specc.ir.spec import Model, Task
from specc.train.checkpoint_docs import (
    DOCUMENTS,
    FORMAT,
    REQUIRED,
    VERSION,
    CheckpointDocs,
    CheckpointMeta,
    OptimizerRecord,
    TrainRecord,
)
from specc.train.records import CheckpointMetrics


@dataclass
class Checkpoint:
    """What a checkpoint holds, validated."""

    model: Model
    task: Task
    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    step: int
    total_steps: int
    vocab: Vocab | None = None
    labels: Vocab | None = None
    chars: Vocab | None = None  # the letters `spell` reads words with
    optimizer: dict[str, Any] = field(default_factory=dict)  # {"t": int, "arrays": {...}}
    rng_state: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # a CheckpointMetrics document
    #: what a resumed run needs besides the arrays: `plateau`, `watch`, `pending`
    #: (the documents of PlateauRecord, WatchRecord, PendingLoss), each only when set
    progress: dict[str, Any] = field(default_factory=dict)
    #: ``state = carry``: every recurrent layer's state after the last step, by
    #: ``NODE.h``/``NODE.c`` (see specc.backend.carry); empty otherwise
    carried: dict[str, np.ndarray] = field(default_factory=dict)
    spec_path: str | None = None
    path: str | None = None

    def network(self, backend: str = "numpy", device: str | None = None) -> Network:
        """A network with this checkpoint's parameters and state, on ``backend``: every
        backend reads the same checkpoint."""
        from specc.backend import build_network

        net = build_network(self.model, backend, seed=self.task.seed, device=device)
        net.load(self.params, self.state)
        if self.rng_state is not None:
            net.rng.bit_generator.state = self.rng_state
        return net


#: The name prefix of the carried-state arrays.
CARRY_PREFIX = "__carry__."


def _doc(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8)


def documents_of(ckpt: Checkpoint) -> CheckpointDocs:
    """The JSON documents that describe `ckpt`, validated as they will be read back."""
    return CheckpointDocs(
        meta=CheckpointMeta(format=FORMAT, version=VERSION, spec_path=ckpt.spec_path),
        model=ckpt.model,
        task=ckpt.task,
        train=TrainRecord(
            step=ckpt.step,
            total_steps=ckpt.total_steps,
            optimizer=OptimizerRecord(name=ckpt.task.optimizer.name, t=ckpt.optimizer.get("t", 0)),
            rng=ckpt.rng_state,
            **ckpt.progress,
        ),
        metrics=CheckpointMetrics.model_validate(ckpt.metrics),
        vocab=ckpt.vocab.to_json() if ckpt.vocab is not None else None,
        labels=ckpt.labels.to_json() if ckpt.labels is not None else None,
        chars=ckpt.chars.to_json() if ckpt.chars is not None else None,
    )


def _arrays(ckpt: Checkpoint) -> dict[str, np.ndarray]:
    """Every array the `.npz` holds, under its name, the JSON documents included."""
    arrays: dict[str, np.ndarray] = {}
    arrays.update({k: np.asarray(v) for k, v in ckpt.params.items()})
    arrays.update({k: np.asarray(v) for k, v in ckpt.state.items()})
    for name, arr in ckpt.optimizer.get("arrays", {}).items():
        arrays[f"__opt__.{name}"] = np.asarray(arr)
    for name, arr in ckpt.carried.items():
        arrays[f"{CARRY_PREFIX}{name}"] = np.asarray(arr)
    for key, doc in documents_of(ckpt).document().items():
        arrays[key] = _doc(doc)
    return arrays


#: Bytes an `.npz` adds to each array: the `.npy` header (128, more for a long
#: shape) and the zip's local and central entries with their zip64 fields; twice the
#: name is added on top. An upper bound, so a free-space check never lets a run start
#: that could not save.
_ENTRY_OVERHEAD = 384
_ARCHIVE_OVERHEAD = 1024


def checkpoint_nbytes(ckpt: Checkpoint) -> int:
    """How many bytes `save_checkpoint` will write for `ckpt` (at most; within a few
    hundred bytes per array), without serialising its arrays."""
    return _ARCHIVE_OVERHEAD + sum(
        arr.nbytes + _ENTRY_OVERHEAD + 2 * len(name) for name, arr in _arrays(ckpt).items()
    )


def save_checkpoint(path: Path, ckpt: Checkpoint, kept: str | None = None) -> None:
    """Write `ckpt` atomically through :mod:`specc.fileio`; its JSON documents go
    through :class:`CheckpointDocs`. `kept` is what the error says is still safe."""
    buf = io.BytesIO()
    np.savez(buf, **_arrays(ckpt))
    write_bytes(Path(path), buf.getbuffer(), kept)


def _read_doc(data, key: str, path) -> Any:
    arr = data[key]
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise CheckpointError(path, f"'{key}' is not a JSON document")
    try:
        return json.loads(arr.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"'{key}' is damaged ({exc})") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate; every problem becomes a one-line CheckpointError."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(path, "no such checkpoint")
    if p.is_dir():
        raise CheckpointError(path, "is a directory, not a checkpoint")
    try:
        data = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(path, f"not a readable .npz checkpoint ({exc})") from None
    try:
        with data:
            return _parse(data, p)
    except ValueError as exc:  # object arrays need pickles, which are refused
        if "pickle" in str(exc).lower():
            raise CheckpointError(
                path, "holds a pickled object array; specc never loads pickles"
            ) from None
        raise CheckpointError(path, f"damaged checkpoint ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise CheckpointError(path, f"damaged checkpoint ({exc})") from None


def _check_meta(meta: Any, path: Path) -> None:
    """Name a foreign or newer file as such, before its other documents are judged."""
    try:
        CheckpointMeta.model_validate_json(json.dumps(meta))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else ""
        if not isinstance(meta, dict) or where == "format":
            raise CheckpointError(path, "not a specc checkpoint (unknown format)") from None
        version = meta.get("version")
        if where == "version" and type(version) is int and version > VERSION:
            raise CheckpointError(
                path,
                f"written by a newer specc (format version {version}; this specc reads "
                f"up to {VERSION})",
            ) from None
        raise CheckpointError(path, f"'__meta__' is damaged ({_problem(first)})") from None


def _problem(error: ErrorDetails, skip: int = 0) -> str:
    """One pydantic error as `where: what`, `where` relative to its document."""
    where = ".".join(str(x) for x in error["loc"][skip:])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _read_docs(data, names: set[str], path: Path) -> CheckpointDocs:
    """Every JSON document, validated together through :class:`CheckpointDocs`."""
    raw = {key: _read_doc(data, key, path) for key in DOCUMENTS if key in names}
    try:
        # JSON mode: spans and other nested IR types are rebuilt from their JSON form
        return CheckpointDocs.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        doc, problem = str(first["loc"][0]), _problem(first, skip=1)
        if doc in ("__model__", "__task__"):
            message = f"its model or task description is invalid ({problem})"
        elif doc in ("__vocab__", "__labels__", "__chars__"):
            message = f"vocabulary is damaged ({problem})"
        elif doc == "__train__":
            message = f"training record '__train__' is damaged ({problem})"
        else:
            message = f"'{doc}' is damaged ({problem})"
        raise CheckpointError(path, message) from None


def _parse(data, path: Path) -> Checkpoint:
    names = set(data.files)
    missing = [k for k in REQUIRED if k not in names]
    if missing:
        raise CheckpointError(path, f"not a specc checkpoint (missing {', '.join(missing)})")
    _check_meta(_read_doc(data, "__meta__", path), path)
    docs = _read_docs(data, names, path)
    model, param_layout, state_layout = _layout(docs.model, path)
    params = {key: _array(data, key, shape, path) for key, shape in param_layout.items()}
    state = {key: _array(data, key, shape, path) for key, shape in state_layout.items()}
    flat = (sum(int(np.prod(shape)) for shape in param_layout.values()),)
    opt_arrays = {k.removeprefix("__opt__."): data[k] for k in names if k.startswith("__opt__.")}
    for name, arr in opt_arrays.items():
        if arr.shape != flat:
            raise CheckpointError(
                path, f"optimizer array '{name}' has shape {arr.shape}, expected {flat}"
            )
    carried: dict[str, np.ndarray] = {}
    if docs.task.state == "carry":
        for key, arr in zero_state(model, docs.task.batch, np.float64).items():
            carried[key] = _array(data, f"{CARRY_PREFIX}{key}", arr.shape, path)
    train = docs.train
    return Checkpoint(
        model=model,
        task=docs.task,
        params=params,
        state=state,
        step=train.step,
        total_steps=train.total_steps,
        vocab=Vocab(docs.vocab) if docs.vocab is not None else None,
        labels=Vocab(docs.labels) if docs.labels is not None else None,
        chars=Vocab(docs.chars) if docs.chars is not None else None,
        optimizer={"t": train.optimizer.t, "arrays": opt_arrays},
        rng_state=train.rng.document() if train.rng is not None else None,
        progress={
            key: getattr(train, key).document()
            for key in ("plateau", "watch", "pending")
            if getattr(train, key) is not None
        },
        metrics=docs.metrics.document(),
        carried=carried,
        spec_path=docs.meta.spec_path,
        path=str(path),
    )


def _layout(model: Model, path: Path) -> tuple[Model, dict[str, tuple], dict[str, tuple]]:
    """The shapes the stored arrays must have, read off the model's IR.

    Shapes are inferred again rather than trusted, and the memory guard runs, so a
    hand-edited model fails here with a reason instead of inside numpy."""
    diags = Diagnostics()
    model = infer_shapes(model, diags)
    if not diags:
        check_parameters_fit(model, diags)
    if diags:
        raise CheckpointError(path, f"its model cannot be built: {diags.items[0].message}")
    params: dict[str, tuple] = {}
    state: dict[str, tuple] = {}
    for node in model.nodes:
        for key, shape in model.param_shapes(node).items():
            if not all(isinstance(d, int) for d in shape):
                raise CheckpointError(path, f"'{node.name}.{key}' has an unbound size {shape}")
            params[f"{node.name}.{key}"] = shape
        for key, shape in model.state_shapes(node).items():
            state[f"{node.name}.{key}"] = shape
    return model, params, state


def _array(data, key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if key not in data.files:
        raise CheckpointError(path, f"array '{key}' is missing")
    arr = data[key]
    if arr.shape != shape:
        raise CheckpointError(path, f"array '{key}' has shape {arr.shape}, expected {shape}")
    if arr.dtype.kind != "f":
        raise CheckpointError(path, f"array '{key}' has dtype {arr.dtype}, expected floats")
    if not np.all(np.isfinite(arr)):
        raise CheckpointError(path, f"array '{key}' holds NaN or infinite values")
    return arr
