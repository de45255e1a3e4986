"""ONNX export: a specc network's inference graph as an `.onnx` file.

The graph is the one specc evaluates with (batchnorm with its running
statistics, dropout off), with symbolic batch and time axes, the
vocabularies in its metadata, and for padded batches a `lengths` input that
masks exactly as specc's batches do. Each op has one small emitter, found
by op name in `EMITTERS` (`emitters.py`); ops without one are refused by
name. Versions are stated, never onnx's newest defaults (`versions.py`), and
every model passes `onnx.checker` with ``full_check=True`` before it is
written.

Importing this package needs the `onnx` extra (`specc.export.require_onnx`
says what to install).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from specc.backend.graph import Network
from specc.data.vocab import Vocab
from specc.export import ExportError
from specc.export.onnx.builder import Emitter
from specc.export.onnx.emit_rnn import RECURRENCES, uses_rnn_operator
from specc.export.onnx.emitters import EMITTERS
from specc.export.onnx.graph import build_model
from specc.export.onnx.metadata import PREFIX, metadata
from specc.export.onnx.versions import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, check_opset
from specc.fileio import write_bytes
from specc.ir.spec import Task

#: The float types an export computes in.
DTYPES = ("float32", "float64")
#: The name of the input of real lengths, for padded batches.
LENGTHS = "lengths"


@dataclass(frozen=True)
class OnnxOptions:
    """How to export. ``lengths`` adds the `lengths` input of padded batches (tag
    tasks); ``recurrence`` is `auto` (RNN in float32, Scan otherwise), `rnn` or
    `scan`; ``state`` makes the graph take every recurrent layer's initial state
    (``NODE.h0``, ``NODE.c0``) and return its final one (``NODE.hn``, ``NODE.cn``),
    so a caller can carry it from one call to the next (one step at a time)."""

    opset: int = DEFAULT_OPSET
    dtype: str = "float32"
    lengths: bool = False
    recurrence: str = "auto"
    state: bool = False


def to_onnx(
    net: Network,
    options: OnnxOptions = OnnxOptions(),
    *,
    task: Task | None = None,
    vocab: Vocab | None = None,
    labels: Vocab | None = None,
    trained_steps: int | None = None,
    chars: Vocab | None = None,
    emitters: Mapping[str, Emitter] = EMITTERS,
) -> onnx.ModelProto:
    """The checked ONNX model of ``net``'s inference graph, with its weights."""
    if options.dtype not in DTYPES:
        raise ExportError(f"--dtype must be float32 or float64, got {options.dtype!r}")
    dtype = np.dtype(options.dtype)
    uses_rnn_operator(dtype, options.recurrence)  # refuses a combination onnxruntime cannot run
    opset = check_opset(options.opset)
    lengths = LENGTHS if options.lengths else None
    proto = build_model(
        net.model,
        net.params,
        net.state,
        dtype=dtype,
        opset=opset,
        lengths=lengths,
        recurrence=options.recurrence,
        emitters=emitters,
        carry_state=options.state,
    )
    from specc import __version__

    proto.producer_name, proto.producer_version = "specc", __version__
    proto.doc_string = (
        f"specc model '{net.model.name}'" + (f", task '{task.name}'" if task else "") + "; "
        f"inputs {', '.join(i.name for i in proto.graph.input)}"
    )
    helper.set_model_props(
        proto, metadata(net.model, task, vocab, labels, lengths, trained_steps, chars)
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


def write_onnx(path: Path, proto: onnx.ModelProto) -> None:
    """Write through specc's one writer: atomic, and a failure is one line naming the path."""
    write_bytes(Path(path), proto.SerializeToString())


__all__ = [
    "DEFAULT_OPSET", "DTYPES", "EMITTERS", "LENGTHS", "MAX_OPSET", "MIN_OPSET", "PREFIX",
    "RECURRENCES", "OnnxOptions", "to_onnx", "write_onnx",
]  # fmt: skip
