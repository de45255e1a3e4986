"""The checked IR: models as graphs of op nodes, tasks with typed settings.

This is the contract between the front end and everything after it
(explain, the NumPy backend, checkpoints). It never refers to the parse tree,
and it round-trips through JSON, which is how checkpoints store it.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field

from specc.errors import Span
from specc.ir.ops import Node, NodeBase, Shape, Size
from specc.ir.sweep import Sweep


class _Checked(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)


class Input(_Checked):
    name: str
    type: Literal["tokens", "sequence", "vector"]
    size: Size | None = None
    span: Span

    def shape(self) -> Shape:
        if self.type == "tokens":
            return Shape(dims=("B", "T"), ids=True)
        if self.type == "sequence":
            return Shape(dims=("B", "T", self.size))
        return Shape(dims=("B", self.size))


class Model(_Checked):
    """A dataflow graph; `nodes` are in an order where inputs come first."""

    name: str
    inputs: list[Input]
    nodes: list[Node]
    outputs: list[str]
    sizes: dict[str, int] = {}
    span: Span

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def param_shapes(self, node: NodeBase) -> dict[str, tuple]:
        """The node's parameter shapes with the model's bound sizes filled in."""
        ins = [self.shape_of(n) for n in node.inputs]
        return {
            k: tuple(self.sizes.get(d, d) if isinstance(d, str) else d for d in v)
            for k, v in node.param_shapes(ins).items()
        }

    def state_shapes(self, node: NodeBase) -> dict[str, tuple]:
        """The node's buffer shapes with the model's bound sizes filled in."""
        ins = [self.shape_of(n) for n in node.inputs]
        return {
            k: tuple(self.sizes.get(d, d) if isinstance(d, str) else d for d in v)
            for k, v in node.state_shapes(ins).items()
        }

    def shape_of(self, name: str) -> Shape:
        for i in self.inputs:
            if i.name == name:
                return i.shape()
        shape = self.node(name).shape
        assert shape is not None, "shapes are inferred before use"
        return shape


# ----- data sources ---------------------------------------------------------


class TextData(_Checked):
    source: Literal["text"] = "text"
    path: str | None = None
    builtin: str | None = None
    kinds: ClassVar[tuple[str, ...]] = ("next_char",)


class TaggedData(_Checked):
    source: Literal["tagged"] = "tagged"
    path: str
    kinds: ClassVar[tuple[str, ...]] = ("tag",)


class ConlluData(_Checked):
    source: Literal["conllu"] = "conllu"
    path: str
    column: Literal["upos", "xpos"] = "upos"
    dev: str | None = None
    test: str | None = None
    kinds: ClassVar[tuple[str, ...]] = ("tag",)


class AddingData(_Checked):
    source: Literal["adding"] = "adding"
    length: int = Field(gt=1)
    samples: int = Field(1000, gt=0)
    kinds: ClassVar[tuple[str, ...]] = ("regress",)


class CopyData(_Checked):
    source: Literal["copy"] = "copy"
    length: int = Field(gt=0)
    symbols: int = Field(8, gt=0)
    samples: int = Field(1000, gt=0)
    kinds: ClassVar[tuple[str, ...]] = ("tag",)


class ParityData(_Checked):
    """Is the number of 1s in a bit string odd? A long-range classification."""

    source: Literal["parity"] = "parity"
    length: int = Field(gt=0)
    samples: int = Field(1000, gt=0)
    kinds: ClassVar[tuple[str, ...]] = ("classify",)


DataSource = Annotated[
    Union[TextData, TaggedData, ConlluData, AddingData, CopyData, ParityData],  # noqa: UP007
    Field(discriminator="source"),
]
DATA_CLASSES: dict[str, type[_Checked]] = {
    cls.model_fields["source"].default: cls for cls in get_args(get_args(DataSource)[0])
}

# ----- optimizers -----------------------------------------------------------


#: Which parameters weight decay shrinks: `weights` = the matrices (dense and rnn
#: weights, embedding tables), not the vectors (biases, batchnorm's γ and β); `all`.
DecayWhich = Literal["weights", "all"]


class Sgd(_Checked):
    name: Literal["sgd"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    decay: DecayWhich = "weights"


class Adam(_Checked):
    name: Literal["adam"] = "adam"
    lr: float = Field(1e-3, gt=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)


class AdamW(_Checked):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW."""

    name: Literal["adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)
    decay: DecayWhich = "weights"


class Adagrad(_Checked):
    name: Literal["adagrad"] = "adagrad"
    lr: float = Field(0.01, gt=0)
    eps: float = Field(1e-10, gt=0)


Optimizer = Annotated[Union[Sgd, Adam, AdamW, Adagrad], Field(discriminator="name")]  # noqa: UP007
OPTIMIZER_CLASSES: dict[str, type[_Checked]] = {
    cls.model_fields["name"].default: cls for cls in get_args(get_args(Optimizer)[0])
}

# ----- learning-rate schedules and early stopping ----------------------------
# Schedules count optimizer steps (not epochs) and follow torch.optim.lr_scheduler.


class Constant(_Checked):
    """The optimizer's lr throughout (the default)."""

    name: Literal["constant"] = "constant"


class Cosine(_Checked):
    """Linear warmup from lr/warmup to lr over `warmup` steps, then cosine annealing to
    `min_lr` at the last step (torch: LinearLR then CosineAnnealingLR, in SequentialLR)."""

    name: Literal["cosine"] = "cosine"
    warmup: int = Field(0, ge=0)
    min_lr: float = Field(0.0, ge=0)


class StepDecay(_Checked):
    """lr · factor^(step // every) (torch: StepLR)."""

    name: Literal["step"] = "step"
    every: int = Field(gt=0)
    factor: float = Field(0.1, gt=0, lt=1)


class Plateau(_Checked):
    """lr · factor after `patience` evaluations whose monitored metric did not improve
    by 1e-4 relative, never below min_lr (torch: ReduceLROnPlateau)."""

    name: Literal["plateau"] = "plateau"
    patience: int = Field(10, ge=0)
    factor: float = Field(0.1, gt=0, lt=1)
    min_lr: float = Field(0.0, ge=0)


Schedule = Annotated[
    Union[Constant, Cosine, StepDecay, Plateau],  # noqa: UP007
    Field(discriminator="name"),
]
SCHEDULE_CLASSES: dict[str, type[_Checked]] = {
    cls.model_fields["name"].default: cls for cls in get_args(get_args(Schedule)[0])
}


class Patience(_Checked):
    """Stop after `evals` evaluations in a row without the monitored metric improving
    by more than `min_delta`."""

    name: Literal["patience"] = "patience"
    evals: int = Field(gt=0)
    min_delta: float = Field(0.0, ge=0)


EARLY_STOP_CLASSES: dict[str, type[_Checked]] = {"patience": Patience}

#: The held-out metrics of each kind that `monitor` may name, the default first.
KIND_METRICS: dict[str, tuple[str, ...]] = {
    "next_char": ("loss", "bits_per_char", "accuracy"),
    "tag": ("accuracy", "loss"),
    "classify": ("accuracy", "loss"),
    "regress": ("loss", "mse"),
}
#: Metrics where higher is better; the others are losses.
HIGHER_IS_BETTER: frozenset[str] = frozenset({"accuracy"})

# ----- tasks ----------------------------------------------------------------

TaskKind = Literal["next_char", "tag", "classify", "regress"]
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
DEFAULT_LOSS = {
    "next_char": "cross_entropy",
    "tag": "cross_entropy",
    "classify": "cross_entropy",
    "regress": "mse",
}


class Task(_Checked):
    """One training job. Settings a kind does not use are refused by validation."""

    name: str
    kind: TaskKind
    model: str
    data: DataSource
    split: float = Field(0.9, gt=0, lt=1)
    seq_len: int = Field(64, gt=0)
    batch: int = Field(32, gt=0)
    epochs: int | None = Field(None, gt=0)
    steps: int | None = Field(None, gt=0)
    optimizer: Optimizer = Adam()
    loss: Literal["cross_entropy", "mse"]
    clip: float | None = Field(None, gt=0)
    seed: int = Field(0, ge=0)
    generate: int = Field(200, ge=0)
    prime: str = ""
    temperature: float = Field(1.0, gt=0)
    state: Literal["window", "carry"] = Field(
        "window",
        description="next_char: `window` starts every window from zero state; `carry` "
        "cuts the text into `batch` streams read in order and starts each window from the "
        "state the previous one ended in (truncated BPTT).",
    )
    schedule: Schedule = Constant()
    eval_every: int | None = Field(None, gt=0)
    monitor: Literal["loss", "bits_per_char", "accuracy", "mse"] | None = None
    early_stop: Patience | None = None
    params: dict[str, str] = Field(
        {},
        description="The values of the params the task and its model use, as spec text "
        "(after any --set), so a checkpoint records what it was trained with.",
    )
    span: Span

    @property
    def monitored(self) -> str:
        """The held-out metric that picks the best checkpoint, early stopping and plateau."""
        return self.monitor or KIND_METRICS[self.kind][0]

    #: Settings only some kinds accept.
    KIND_SETTINGS: ClassVar[dict[str, tuple[str, ...]]] = {
        "next_char": ("seq_len", "generate", "prime", "temperature", "state"),
        "tag": (),
        "classify": (),
        "regress": (),
    }
    COMMON_SETTINGS: ClassVar[tuple[str, ...]] = (
        "model",
        "data",
        "split",
        "batch",
        "epochs",
        "steps",
        "optimizer",
        "loss",
        "clip",
        "seed",
        "schedule",
        "eval_every",
        "monitor",
        "early_stop",
    )

    @classmethod
    def settings_for(cls, kind: str) -> tuple[str, ...]:
        return cls.COMMON_SETTINGS + cls.KIND_SETTINGS.get(kind, ())


class Spec(_Checked):
    """Everything one spec file defines, checked."""

    models: list[Model]
    tasks: list[Task]
    params: dict[str, str] = {}  # every declared param's value as used, as spec text
    sweeps: list[Sweep] = []

    def model(self, name: str) -> Model:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def sweep(self, name: str) -> Sweep:
        for w in self.sweeps:
            if w.name == name:
                return w
        raise KeyError(name)
