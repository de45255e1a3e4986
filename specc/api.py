"""The Python API: `specc.load(path)` returns a `Program`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from specc.errors import Diagnostics, SpecError
from specc.frontend.compile import Compiled, compile_file, compile_text
from specc.frontend.passes.shapes import bind_sizes, infer_shapes
from specc.ir.spec import Model, Spec, Task

if TYPE_CHECKING:
    from specc.backend.graph import Network


class Program:
    """A checked spec file: its models and tasks, ready to build and train."""

    def __init__(self, compiled: Compiled, base_dir: Path | None = None) -> None:
        self.compiled = compiled
        self.base_dir = base_dir or Path.cwd()

    @property
    def ir(self) -> Spec:
        return self.compiled.ir

    @property
    def path(self) -> str | None:
        return self.compiled.path

    @property
    def models(self) -> list[str]:
        return [m.name for m in self.ir.models]

    @property
    def tasks(self) -> list[str]:
        return [t.name for t in self.ir.tasks]

    def model(self, name: str | None = None) -> Model:
        if name is None:
            return self.ir.models[0]
        try:
            return self.ir.model(name)
        except KeyError:
            raise SpecError(
                f"no model named '{name}' (this file has {', '.join(self.models) or 'none'})"
            ) from None

    def task(self, name: str | None = None) -> Task:
        if not self.ir.tasks:
            raise SpecError(f"{self.path or 'the spec'} defines no task")
        if name is None:
            return self.ir.tasks[0]
        try:
            return self.ir.task(name)
        except KeyError:
            raise SpecError(
                f"no task named '{name}' (this file has {', '.join(self.tasks)})"
            ) from None

    def bound_model(self, name: str | None, sizes: dict[str, int] | None) -> Model:
        """The model with `vocab`/`labels` bound and shapes re-inferred."""
        model = bind_sizes(self.model(name), dict(sizes or {}))
        diags = Diagnostics()
        model = infer_shapes(model, diags)
        diags.raise_if_any(self.path, self.compiled.source)
        return model

    def build(
        self,
        model: str | None = None,
        sizes: dict[str, int] | None = None,
        seed: int = 0,
        dtype: str = "float32",
        backend: str = "numpy",
        device: str | None = None,
    ) -> Network:
        """A network for one model on ``backend`` (`numpy`, the fast one,
        `reference`, the readable one, or `torch` on ``device``), parameters
        initialised from `seed`."""
        from specc.backend import build_network
        from specc.frontend.passes.fits import check_parameters_fit

        bound = self.bound_model(model, sizes)
        diags = Diagnostics()
        check_parameters_fit(bound, diags)  # refuse before allocating anything
        diags.raise_if_any(self.path, self.compiled.source)
        return build_network(bound, backend, seed=seed, dtype=dtype, device=device)

    def train(self, task: str | None = None, **options):
        """Train a task (as `specc run` does, without printing); returns a RunResult
        with `.metrics`, the trained `.net` and the `.checkpoint` path.

        Options: epochs, steps, seed, out_dir, resume, reporter, save, backend,
        time_limit (seconds)."""
        from specc.train.loop import run_task

        return run_task(self, task, **options)


def load(path: str | Path, params: Mapping[str, str] | None = None) -> Program:
    """Parse and validate a spec file; raises SpecError listing every problem.

    `params` overrides the file's declared params, each value written as in
    a spec (`{"hidden": "32", "lr": "3e-4"}`), as `--set` does."""
    return Program(compile_file(path, params), Path(path).resolve().parent)


def loads(
    text: str,
    path: str | None = None,
    base_dir: str | Path | None = None,
    params: Mapping[str, str] | None = None,
) -> Program:
    """Like `load`, from text (data paths resolve against `base_dir`)."""
    base = Path(base_dir) if base_dir is not None else None
    return Program(compile_text(text, path, base, params), base)
