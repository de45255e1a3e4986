"""The JSON documents inside a checkpoint, as one pydantic model.

A checkpoint `.npz` holds arrays, and beside them small JSON documents
stored as uint8 arrays under the names `__meta__`, `__model__`, `__task__`,
`__train__`, `__metrics__` and, for tasks with token data, `__vocab__` and
`__labels__` (and `__chars__` for a model that spells its words).
:class:`CheckpointDocs` is those documents as one object keyed by those names.
Why one model: `save_checkpoint` writes every document through it and
`load_checkpoint` reads every document back through it, so what is written
and what is accepted cannot drift apart, and the JSON Schema published as
`docs/schemas/checkpoint.schema.json` is generated from it.

The arrays themselves (parameters, state, optimizer arrays) are not JSON;
their names and shapes follow from the model IR and are checked in
`specc.train.checkpoint`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from specc.contract import Contract, Omittable
from specc.ir.spec import Model, Task
from specc.train.records import CheckpointMetrics

FORMAT = "specc-checkpoint"
VERSION = 1


class CheckpointMeta(Contract):
    """`__meta__`: what the file is, which format version, and the spec it came from.

    Read first, on its own, so a foreign or newer file is named as such before
    anything else in it is judged."""

    format: Literal["specc-checkpoint"]
    version: int = Field(
        ge=1,
        le=VERSION,
        description="The version of this layout; a reader refuses versions newer than it knows.",
    )
    spec_path: str | None = Field(
        description="The spec file trained, to find its data files again "
        "(null for checkpoints saved through the Python API)."
    )


class OptimizerRecord(Contract):
    """The optimizer's name and step count; its arrays are stored as `__opt__.NAME`."""

    name: str
    t: int = Field(ge=0)


class RngState(Contract):
    """numpy's `bit_generator.state` for the dropout stream (PCG64, from `default_rng`)."""

    bit_generator: str
    state: dict[str, int]
    has_uint32: int
    uinteger: int


class PlateauRecord(Contract):
    """The plateau schedule's state: its current rate, the best metric it has seen
    (absent before the first evaluation) and the evaluations since that one."""

    lr: float = Field(gt=0)
    best: Omittable[float] = None
    bad: int = Field(ge=0)


class WatchRecord(Contract):
    """The best evaluation by the monitored metric so far, and the evaluations early
    stopping has counted; absent values before the first evaluation."""

    value: Omittable[float] = None
    step: Omittable[int] = None
    epoch: Omittable[int] = None
    reference: Omittable[float] = Field(
        None, description="Early stopping's reference: the value at its last reset."
    )
    since: int = Field(0, ge=0)


class PendingLoss(Contract):
    """The training losses since the last evaluation (their sum and count), so the
    next history entry's train_loss is the same whether or not the run was resumed."""

    total: float
    count: int = Field(ge=0)


class TrainRecord(Contract):
    """`__train__`: how far training got, so a resumed run continues bit for bit."""

    step: int = Field(ge=0)
    total_steps: int = Field(ge=0)
    optimizer: OptimizerRecord
    rng: RngState | None = Field(
        description="Null when the checkpoint was saved without a generator state (Python API)."
    )
    plateau: Omittable[PlateauRecord] = None
    watch: Omittable[WatchRecord] = None
    pending: Omittable[PendingLoss] = None


def _distinct(tokens: list[str]) -> list[str]:
    seen: set[str] = set()
    for token in tokens:
        if token in seen:
            raise ValueError(f"duplicate vocabulary entry {token!r}")
        seen.add(token)
    return tokens


#: A vocabulary: tokens in id order, each once (see `specc.data.vocab.Vocab.to_json`).
Tokens = Annotated[
    list[str], AfterValidator(_distinct), Field(json_schema_extra={"uniqueItems": True})
]


class CheckpointDocs(Contract):
    """Every JSON document of one checkpoint, keyed by its array name.

    Each is stored in the `.npz` as a uint8 array holding its UTF-8 JSON text."""

    meta: CheckpointMeta = Field(alias="__meta__")
    model: Model = Field(
        alias="__model__",
        description="The model IR with its sizes bound (see `specc.ir.spec.Model`).",
    )
    task: Task = Field(
        alias="__task__", description="The task IR as trained, command-line overrides applied."
    )
    train: TrainRecord = Field(alias="__train__")
    metrics: CheckpointMetrics = Field(alias="__metrics__")
    vocab: Omittable[Tokens] = Field(
        None, alias="__vocab__", description="The input vocabulary, for token inputs."
    )
    labels: Omittable[Tokens] = Field(
        None, alias="__labels__", description="The label vocabulary, for tasks that predict labels."
    )
    chars: Omittable[Tokens] = Field(
        None,
        alias="__chars__",
        description="The characters words are spelled with, for a model that uses `spell`.",
    )


#: The document names, in the order they are written; the optional ones last.
DOCUMENTS: tuple[str, ...] = tuple(
    field.alias or name for name, field in CheckpointDocs.model_fields.items()
)
REQUIRED: tuple[str, ...] = tuple(
    field.alias or name
    for name, field in CheckpointDocs.model_fields.items()
    if field.is_required()
)
