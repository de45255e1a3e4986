"""Which ONNX versions an export states, and why they are fixed rather than newest.

onnx's helpers default to the newest opset and IR version the installed onnx
knows, which is often newer than the onnxruntime a user serves with accepts.
An export therefore names its opset explicitly (``--opset``, default
`DEFAULT_OPSET`) and the lowest IR version that carries it. The range is the
one the tests run on onnxruntime: below 13 Squeeze, Unsqueeze and Softmax had
other signatures, and above `MAX_OPSET` nothing this exporter emits changed.
"""

from __future__ import annotations

import onnx
from onnx import helper

from specc.export import ExportError

MIN_OPSET = 13
MAX_OPSET = 21
#: Old enough for every onnxruntime of the last few years (1.12 and later).
DEFAULT_OPSET = 17


def check_opset(opset: int) -> int:
    """The opset if this exporter and the installed onnx both support it."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(
            f"--opset must be between {MIN_OPSET} and {MAX_OPSET}, got {opset} "
            f"(the default, {DEFAULT_OPSET}, runs on onnxruntime 1.12 and later)"
        )
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ExportError(
            f"--opset {opset} is newer than the installed onnx {onnx.__version__} knows "
            f"(up to {newest}); upgrade onnx or choose a lower opset"
        )
    return opset


def ir_version_for(opset: int) -> int:
    """The lowest IR version that carries ``opset``, so older runtimes load the file."""
    return int(helper.find_min_ir_version_for([helper.make_opsetid("", opset)]))
