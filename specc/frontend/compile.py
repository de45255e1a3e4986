"""Spec text to checked IR: parse, lower, resolve, validate, infer shapes.

Each stage collects its errors; a later stage runs only on what the earlier
ones could make sense of, so one typo does not hide the others and does not
cause a cascade of follow-on errors.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from specc.errors import Diagnostic, Diagnostics, SpecError, render_diagnostic
from specc.frontend import surface as s
from specc.frontend.lower import lower
from specc.frontend.passes.fits import check_parameters_fit
from specc.frontend.passes.params import bind_params
from specc.frontend.passes.resolve import resolve_file
from specc.frontend.passes.shapes import check_task_fit, infer_shapes
from specc.frontend.passes.validate import validate_input, validate_node
from specc.frontend.passes.validate_sweep import check_candidates, validate_sweep
from specc.frontend.passes.validate_task import validate_task
from specc.frontend.syntax import parse
from specc.ir.spec import Model, Spec

MAX_SPEC_BYTES = 20_000_000


@dataclass
class Compiled:
    """The checked IR with the text and surface form it came from."""

    ir: Spec
    surface: s.SpecFile
    source: str
    path: str | None
    warnings: list[Diagnostic] = field(default_factory=list)

    def render_warnings(self) -> str:
        """The warnings as `PATH:LINE:COL: warning: ...` blocks, or '' when there are none."""
        return "".join(
            render_diagnostic(w, self.path, self.source).replace(": error: ", ": warning: ", 1)
            + "\n"
            for w in self.warnings
        )


def read_spec(path: str | Path) -> str:
    """Read a spec file as UTF-8, refusing what is not a readable text file."""
    p = Path(path)
    if not p.exists():
        raise SpecError("no such file", path=str(path))
    if p.is_dir():
        raise SpecError("is a directory, not a spec file", path=str(path))
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", path=str(path)) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(
            f"file is {len(data)} bytes; specs are limited to {MAX_SPEC_BYTES}",
            path=str(path),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at byte offset "
            f"{exc.start}, line {line})",
            path=str(path),
        ) from None


def compile_text(
    text: str,
    path: str | None = None,
    base_dir: Path | None = None,
    params: Mapping[str, str] | None = None,
    *,
    check_sweeps: bool = True,
) -> Compiled:
    """All front-end passes; raises SpecError listing every problem found.

    `params` overrides declared params (`--set NAME=VALUE`, values as spec text);
    `check_sweeps` also compiles the file with each value a sweep may try.

    The cyclic garbage collector is paused meanwhile: a large spec makes
    millions of short-lived, acyclic objects (tokens, tree nodes, IR nodes),
    and repeated collections over them cost more than all the passes."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _compile_text(text, path, base_dir, dict(params or {}), check_sweeps)
    finally:
        if paused:
            gc.enable()


def _compile_text(
    text: str,
    path: str | None,
    base_dir: Path | None,
    overrides: dict[str, str],
    check_sweeps: bool,
) -> Compiled:
    if "\x00" in text:
        offset = text.index("\x00")
        raise SpecError(
            f"binary data (NUL byte at offset {offset}); a spec is a text file",
            path=path,
        )
    text = text.replace("\r\n", "\n").removeprefix("\ufeff")  # editors may add a BOM
    tree, comments = parse(text, path)
    surface = lower(tree, comments)
    diags = Diagnostics()
    bound = bind_params(surface, overrides, diags)
    resolved = resolve_file(bound.spec, diags)
    models: dict[str, Model] = {}
    # Every model name in file order, built or not: a task naming a model that failed
    # validation gets no second "no model named" error. The first of a name counts.
    declared: dict[str, None] = {}
    for rm in resolved:
        first = rm.decl.name not in declared
        declared.setdefault(rm.decl.name, None)
        inputs = [validate_input(d, diags) for d in rm.inputs]
        nodes = [validate_node(n, diags) for n in rm.nodes]
        if any(x is None for x in inputs) or any(n is None for n in nodes):
            continue
        model = Model(
            name=rm.decl.name,
            inputs=inputs,
            nodes=nodes,
            outputs=[name for name, _ in rm.outputs],
            span=rm.decl.span,
        )
        if first:
            models[rm.decl.name] = infer_shapes(model, diags)
            check_parameters_fit(models[rm.decl.name], diags)
    tasks = []
    task_names: set[str] = set()
    for item in bound.spec.items:
        if isinstance(item, s.TaskDecl):
            task_names.add(item.name)
            task = validate_task(item, declared, base_dir, diags)
            if task is None:
                continue
            used = bound.params_of(f"task:{task.name}", f"model:{task.model}")
            tasks.append(task.model_copy(update={"params": used}) if used else task)
            model = models.get(task.model)
            if model is not None and all(n.shape is not None for n in model.nodes):
                check_task_fit(task, model, diags)
    sweeps = []
    candidates = []
    by_name = {t.name: t for t in reversed(tasks)}  # the first of a name counts
    for item in bound.spec.items:
        if isinstance(item, s.SweepDecl):
            got = validate_sweep(item, set(bound.values), by_name, task_names, diags)
            if got is not None:
                sweeps.append(got[0])
                candidates.extend(got[1])
    bound.annotate(diags)
    diags.raise_if_any(path, text)
    if check_sweeps and candidates:

        def compile_with(name: str, value: str) -> None:
            _compile_text(text, path, base_dir, {**overrides, name: value}, False)

        check_candidates(candidates, compile_with, diags)
        diags.raise_if_any(path, text)
    spec = Spec(models=list(models.values()), tasks=tasks, params=bound.values, sweeps=sweeps)
    return Compiled(ir=spec, surface=surface, source=text, path=path, warnings=bound.warnings)


def compile_file(path: str | Path, params: Mapping[str, str] | None = None) -> Compiled:
    text = read_spec(path)
    return compile_text(text, str(path), Path(path).resolve().parent, params)
