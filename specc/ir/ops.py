"""The op registry: every op a model may use, listed once.

Each op is a frozen pydantic class whose fields are its arguments (with their
defaults and ranges), and whose methods give its shape rule, its parameter
shapes and its equation. Validation, shape inference, explain and the backend
all derive from `OP_CLASSES`; adding an op means adding one class here and
one kernel in the backend.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from specc.errors import Span

#: A size argument: a positive number, or a symbol the task binds from its data.
SIZE_SYMBOLS = ("vocab", "labels")
Size = Annotated[int, Field(gt=0)] | Literal["vocab", "labels"]

#: A dimension of a shape: a number, "B"/"T" for batch and time, or a size symbol.
Dim = int | str


class ShapeError(Exception):
    """A step cannot take its input; the shapes pass reports it at the step."""

    def __init__(self, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.help = help


class Shape(BaseModel):
    """Symbolic shape of a value; `ids` marks integer token ids rather than floats."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    dims: tuple[Dim, ...]
    ids: bool = False

    @property
    def feature(self) -> Dim:
        return self.dims[-1]

    @property
    def has_time(self) -> bool:
        return len(self.dims) >= 2 and self.dims[1] == "T"

    def with_feature(self, n: Dim) -> Shape:
        return Shape(dims=(*self.dims[:-1], n))

    def text(self) -> str:
        return "(" + ", ".join(str(d) for d in self.dims) + ")"


class Activation(BaseModel):
    """An rnn's nonlinearity: `tanh` or `leaky_relu(slope=0.1)`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    name: Literal["tanh", "sigmoid", "relu", "leaky_relu"] = "tanh"
    slope: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _slope_only_for_leaky(self) -> Activation:
        if self.name != "leaky_relu" and self.slope is not None:
            raise ValueError(f"'slope' applies only to leaky_relu, not {self.name}")
        return self

    @property
    def leak(self) -> float:
        """The negative-side slope actually used (leaky_relu's default is 0.01)."""
        if self.name == "leaky_relu":
            return 0.01 if self.slope is None else self.slope
        return 0.0

    def text(self) -> str:
        if self.slope is not None:
            return f"leaky_relu(slope={self.slope:g})"
        return self.name

    def formula(self, arg: str) -> str:
        return {
            "tanh": f"tanh({arg})",
            "sigmoid": f"σ({arg})",
            "relu": f"max({arg}, 0)",
            "leaky_relu": f"max({arg}, {self.leak:g}·({arg}))",
        }[self.name]


def _need_floats(op: str, x: Shape) -> None:
    if x.ids:
        raise ShapeError(
            f"{op} expects float features but its input holds token ids {x.text()}",
            "map the ids to vectors first with embedding(dim=...) or one_hot",
        )


class NodeBase(BaseModel):
    """What every node has: its name, where its inputs come from, and its span."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)
    name: str
    inputs: list[str]
    span: Span
    shape: Shape | None = None

    #: (fewest, most) inputs; most None means any number.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    #: One line a person reads in explain.
    summary: ClassVar[str] = ""

    def attrs(self) -> dict[str, Any]:
        """Arguments as the user would write them (aliases, plain values)."""
        data = self.model_dump(by_alias=True, exclude=set(NodeBase.model_fields) | {"op"})
        if isinstance(getattr(self, "activation", None), Activation):
            data["activation"] = self.activation.text()
        return data

    def non_default_attrs(self) -> dict[str, Any]:
        out = {}
        for key, field in type(self).model_fields.items():
            if key in NodeBase.model_fields or key == "op":
                continue
            value = getattr(self, key)
            if field.is_required() or value != field.default:
                out[field.alias or key] = value.text() if isinstance(value, Activation) else value
        return out

    def infer(self, ins: list[Shape]) -> Shape:
        x = ins[0]
        _need_floats(self.op, x)  # type: ignore[attr-defined]
        return x

    def param_shapes(self, ins: list[Shape]) -> dict[str, tuple[Dim, ...]]:
        return {}

    def state_shapes(self, ins: list[Shape]) -> dict[str, tuple[Dim, ...]]:
        return {}

    def equation(self) -> str:
        return ""


class Embedding(NodeBase):
    op: Literal["embedding"] = "embedding"
    dim: Size
    summary: ClassVar[str] = "looks up a learned vector for each token id"

    def infer(self, ins):
        x = ins[0]
        if not x.ids:
            raise ShapeError(
                f"embedding expects token ids but its input is float features {x.text()}",
                "embedding reads a `tokens` input; use dense(units=...) on float features",
            )
        return Shape(dims=(*x.dims, self.dim))

    def param_shapes(self, ins):
        return {"E": ("vocab", self.dim)}

    def equation(self):
        return "y = E[x]"


class OneHot(NodeBase):
    op: Literal["one_hot"] = "one_hot"
    summary: ClassVar[str] = "encodes each token id as a vector of zeros with a one"

    def infer(self, ins):
        x = ins[0]
        if not x.ids:
            raise ShapeError(
                f"one_hot expects token ids but its input is float features {x.text()}"
            )
        return Shape(dims=(*x.dims, "vocab"))

    def equation(self):
        return "y = onehot(x)"


class Rnn(NodeBase):
    op: Literal["rnn"] = "rnn"
    hidden: Size
    activation: Activation = Activation()
    init: Literal["default", "xavier", "orthogonal", "identity"] = "default"
    reverse: bool = False
    return_: Literal["sequence", "last"] = Field("sequence", alias="return")
    summary: ClassVar[str] = "a simple recurrent layer, unrolled over time"

    def infer(self, ins):
        x = ins[0]
        _need_floats("rnn", x)
        if not x.has_time or len(x.dims) != 3:
            raise ShapeError(
                f"rnn expects a sequence (B, T, N) but its input has shape {x.text()}",
                "an rnn needs a time axis: feed it a sequence, not a vector",
            )
        if self.return_ == "last":
            return Shape(dims=("B", self.hidden))
        return Shape(dims=("B", "T", self.hidden))

    def param_shapes(self, ins):
        n = ins[0].feature
        return {"W_xh": (n, self.hidden), "W_hh": (self.hidden, self.hidden), "b": (self.hidden,)}

    def equation(self):
        prev = "h_{t+1}" if self.reverse else "h_{t-1}"
        pre = f"x_t·W_xh + {prev}·W_hh + b"
        if self.activation.name == "leaky_relu":  # the argument appears twice: name it once
            leak = self.activation.leak
            act = f"max(a_t, {leak:g}·a_t)" if leak <= 1 else f"(a_t if a_t > 0 else {leak:g}·a_t)"
            return f"h_t = {act},  a_t = {pre}"
        return "h_t = " + self.activation.formula(pre)


class BatchNorm(NodeBase):
    op: Literal["batchnorm"] = "batchnorm"
    eps: float = Field(1e-5, gt=0)
    momentum: float = Field(0.1, ge=0, le=1)
    affine: bool = True
    summary: ClassVar[str] = "normalises each feature over the batch (and time)"

    def infer(self, ins):
        x = ins[0]
        _need_floats("batchnorm", x)
        if len(x.dims) not in (2, 3):
            raise ShapeError(f"batchnorm expects (B, N) or (B, T, N), got {x.text()}")
        return x

    def param_shapes(self, ins):
        n = ins[0].feature
        return {"gamma": (n,), "beta": (n,)} if self.affine else {}

    def state_shapes(self, ins):
        n = ins[0].feature
        return {"running_mean": (n,), "running_var": (n,)}

    def equation(self):
        if self.affine:
            return "y = γ·(x − μ_B)/√(σ²_B + ε) + β"
        return "y = (x − μ_B)/√(σ²_B + ε)"


class LeakyRelu(NodeBase):
    op: Literal["leaky_relu"] = "leaky_relu"
    slope: float = Field(0.01, ge=0)
    summary: ClassVar[str] = "passes positives, scales negatives by a small slope"

    def equation(self):
        if self.slope > 1:  # max() would pick the scaled side for positive x
            return f"y = x if x > 0 else {self.slope:g}·x"
        return f"y = max(x, {self.slope:g}·x)"


class Relu(NodeBase):
    op: Literal["relu"] = "relu"
    summary: ClassVar[str] = "zeroes negatives"

    def equation(self):
        return "y = max(x, 0)"


class Tanh(NodeBase):
    op: Literal["tanh"] = "tanh"
    summary: ClassVar[str] = "squashes into (-1, 1)"

    def equation(self):
        return "y = tanh(x)"


class Sigmoid(NodeBase):
    op: Literal["sigmoid"] = "sigmoid"
    summary: ClassVar[str] = "squashes into (0, 1)"

    def equation(self):
        return "y = 1/(1 + e^−x)"


class Dense(NodeBase):
    op: Literal["dense"] = "dense"
    units: Size
    bias: bool = True
    summary: ClassVar[str] = "a fully connected layer on the last axis"

    def infer(self, ins):
        x = ins[0]
        _need_floats("dense", x)
        return x.with_feature(self.units)

    def param_shapes(self, ins):
        n = ins[0].feature
        shapes: dict[str, tuple[Dim, ...]] = {"W": (n, self.units)}
        if self.bias:
            shapes["b"] = (self.units,)
        return shapes

    def equation(self):
        return "y = x·W + b" if self.bias else "y = x·W"


class Softmax(NodeBase):
    op: Literal["softmax"] = "softmax"
    summary: ClassVar[str] = "turns scores into a probability distribution"

    def equation(self):
        return "y_i = e^x_i / Σ_j e^x_j"


class Dropout(NodeBase):
    op: Literal["dropout"] = "dropout"
    p: float = Field(ge=0, lt=1)
    summary: ClassVar[str] = "zeroes a random fraction p while training"

    def equation(self):
        return f"y = x·m/(1−{self.p:g}),  m ~ Bernoulli(1−{self.p:g})"


class Concat(NodeBase):
    op: Literal["concat"] = "concat"
    arity: ClassVar[tuple[int, int | None]] = (1, None)
    summary: ClassVar[str] = "joins its inputs along the feature axis"

    def infer(self, ins):
        for x in ins:
            _need_floats("concat", x)
        lead = ins[0].dims[:-1]
        for x in ins[1:]:
            if x.dims[:-1] != lead:
                raise ShapeError(
                    "concat needs inputs that agree on all but the last axis, got "
                    + " and ".join(y.text() for y in ins)
                )
        feats = [x.feature for x in ins]
        total: Dim = (
            sum(feats)  # type: ignore[arg-type]
            if all(isinstance(f, int) for f in feats)
            else " + ".join(str(f) for f in feats)
        )
        return Shape(dims=(*lead, total))

    def equation(self):
        return "y = [x_1; x_2; …]"


class Add(NodeBase):
    op: Literal["add"] = "add"
    arity: ClassVar[tuple[int, int | None]] = (1, None)
    summary: ClassVar[str] = "sums inputs of the same shape"

    def infer(self, ins):
        for x in ins:
            _need_floats("add", x)
        for x in ins[1:]:
            if x.dims != ins[0].dims:
                raise ShapeError(
                    "add needs inputs of the same shape, got " + " and ".join(y.text() for y in ins)
                )
        return ins[0]

    def equation(self):
        return "y = x_1 + x_2 + …"


class Identity(NodeBase):
    """`a = b` with no steps: a second name for a value."""

    op: Literal["identity"] = "identity"
    summary: ClassVar[str] = "another name for its input"

    def infer(self, ins):
        return ins[0]

    def equation(self):
        return "y = x"


Node = Annotated[
    Union[  # noqa: UP007 - a Union keeps the discriminator readable
        Embedding,
        OneHot,
        Rnn,
        BatchNorm,
        LeakyRelu,
        Relu,
        Tanh,
        Sigmoid,
        Dense,
        Softmax,
        Dropout,
        Concat,
        Add,
        Identity,
    ],
    Field(discriminator="op"),
]

OP_CLASSES: dict[str, type[NodeBase]] = {
    cls.model_fields["op"].default: cls for cls in get_args(get_args(Node)[0])
}

#: Ops a user writes in a pipeline (identity only arises from `a = b`).
USER_OPS = tuple(op for op in OP_CLASSES if op != "identity")

#: Which fields of which op are sizes that a task's data may bind.
SIZE_FIELDS: dict[str, tuple[str, ...]] = {
    "embedding": ("dim",),
    "rnn": ("hidden",),
    "dense": ("units",),
}
