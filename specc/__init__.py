"""specc: a declarative model-spec compiler and NumPy interpreter for sequence models."""

from importlib.metadata import PackageNotFoundError, version

from specc.api import Program, load, loads
from specc.errors import CheckpointError, DataError, SpecError

try:
    __version__ = version("specc")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "CheckpointError",
    "DataError",
    "Program",
    "SpecError",
    "__version__",
    "load",
    "loads",
]
