"""The explain JSON (`specc explain --format json`) as pydantic models.

Why models: the JSON is the interface other tools build on, so what each key
holds is said once, here. `specc.explain.export` fills these models from a
:class:`~specc.explain.accounting.Report` and serialises through them, so the
output cannot drift from the JSON Schema published as
`docs/schemas/explain.schema.json` (generated from :class:`ExplainDoc` by
`python -m specc.schemas`), and a reader can check a document with
`ExplainDoc.model_validate_json(text)`.

Counts that depend on a size no one bound (vocab, labels) are null; shapes
name such sizes, and "B"/"T" (batch, time), as strings.
"""

from __future__ import annotations

from pydantic import Field

from specc.contract import Contract, Omittable
from specc.train.records import CheckpointMetrics

#: A shape: numbers, "B"/"T", and unbound sizes by name or formula ("vocab + vocab").
Dims = list[int | str]

#: An op argument as the user would write it: a size, a float, a flag, a name.
Attr = bool | int | float | str


class InputDoc(Contract):
    """A model input: its name, type (tokens, sequence, vector) and shape."""

    name: str
    type: str
    shape: Dims


class NodeDoc(Contract):
    """One node of the graph (inputs are not nodes), in dataflow order."""

    name: str
    op: str
    inputs: list[str] = Field(description="The names of the inputs or nodes it reads.")
    shape: Dims
    params: int | None = Field(
        description="Trainable parameters, null while it depends on an unbound size."
    )
    attrs: dict[str, Attr] = Field(description="Every argument of the op, defaults included.")
    param_shapes: dict[str, Dims]
    state: int | None = Field(description="Non-trainable scalars (batchnorm running statistics).")


class AccountingDoc(Contract):
    """Memory and multiply-adds, estimated from the IR (float32, 4 bytes a scalar).

    The figures for a whole batch, and the optimizer's, need a task (its
    batch, sequence length and optimizer); without one they are null."""

    task: str | None
    bytes_per_scalar: int
    param_bytes: int | None
    state_bytes: int | None
    optimizer_bytes: int | None
    optimizer_arrays: int | None = Field(
        description="Arrays of the parameters' size the optimizer keeps "
        "(adam 2, sgd 0 or 1, adagrad 1)."
    )
    activation_bytes: int | None
    macs_forward_per_step: int | None
    macs_forward_per_sequence: int | None
    macs_forward_per_batch: int | None
    macs_backward_per_batch: int | None


class ModelDoc(Contract):
    """One model: its graph, parameter counts and accounting."""

    name: str
    sizes: dict[str, int] = Field(
        description="The size symbols bound (from --sizes, --task's data, or a checkpoint)."
    )
    nodes: list[NodeDoc]
    params: int | None = Field(
        description="Trainable parameters in all, null while a size is unbound."
    )
    state: int | None = Field(description="Non-trainable scalars in all.")
    inputs: list[InputDoc]
    outputs: list[str]
    unbound: list[str] = Field(description="The size symbols still unbound, sorted.")
    accounting: AccountingDoc


class RunningStats(Contract):
    """A batchnorm node's running statistics in four numbers."""

    mean_of_mean: float
    mean_of_var: float
    min_var: float
    max_var: float


class CheckpointSummary(Contract):
    """What explaining a checkpoint adds: training step, metrics, norms, statistics."""

    step: int
    metrics: CheckpointMetrics = Field(
        description="The checkpoint's metrics record as stored (see `specc.train.records`)."
    )
    param_norms: dict[str, float] = Field(
        description="Each parameter array's L2 norm, by `NODE.PARAM`."
    )
    running_stats: dict[str, RunningStats] = Field(description="Per batchnorm node.")


class ExplainDoc(Contract):
    """The whole document: every model explained, and the checkpoint if one was given."""

    models: list[ModelDoc]
    checkpoint: Omittable[CheckpointSummary] = None
