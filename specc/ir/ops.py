"""The op registry: every op a model may use, declared once.

Each op is a frozen pydantic class. Its fields are its arguments (with their
defaults and ranges); its methods give its shape rule (`infer`), its
parameters and buffers (`param_shapes`, `state_shapes`, `init_params`,
`init_state`), its equation, and its cost (`cost`: multiply-adds and the
activations backward keeps); its class variables are its traits (`recurrent`).
Validation, shape inference, explain, the memory guard and diagnose read
these; each backend finds its kernel by the op's name (`op`) and builds it
from the node. Adding an op means adding one class here, one kernel per
backend, its tests and its entry in docs/language.md (see
docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from specc.errors import Span
from specc.ir.count import Count
from specc.ir.init import linear_params, rnn_params

#: A size argument: a positive number, or a symbol the task binds from its data.
SIZE_SYMBOLS = ("vocab", "labels")
SizeSymbol = Literal["vocab", "labels"]
Size = Annotated[int, Field(gt=0)] | SizeSymbol

#: Concrete parameter or buffer shapes, by name, once every size is bound.
Shapes = dict[str, tuple[int, ...]]

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


@dataclass(frozen=True)
class Cost:
    """What one node costs, as symbolic counts (see specc.ir.accounting for the rules).

    ``macs_token``: forward multiply-adds per time step of one sequence;
    ``macs_sequence``: forward multiply-adds once per sequence (ops on vectors);
    ``kept``: scalars backward keeps beyond the graph's values, for one batch.
    """

    macs_token: Count = dataclasses.field(default_factory=Count)
    macs_sequence: Count = dataclasses.field(default_factory=Count)
    kept: Count = dataclasses.field(default_factory=Count)


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
    #: Trait: carries a hidden state over time (diagnose measures its gradient flow,
    #: `explain --unroll` draws it unrolled).
    recurrent: ClassVar[bool] = False

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

    def init_params(self, shapes: Shapes, rng: np.random.Generator, dtype: Any) -> dict:
        """Initial values of the parameters, given their bound ``shapes``. Every backend
        starts from these, so the same seed gives the same weights everywhere."""
        return {}

    def init_state(self, shapes: Shapes, dtype: Any) -> dict:
        """Initial buffers (deterministic: a reset never depends on a seed)."""
        return {}

    def cost(self, ins: list[Shape]) -> Cost:
        """Multiply-adds and kept activations; elementwise ops cost nothing here."""
        return Cost()

    def _out_count(self) -> Count:
        assert self.shape is not None, "shapes are inferred before costing"
        return Count.product(self.shape.dims)

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

    def init_params(self, shapes, rng, dtype):
        # N(0, 1), as torch.nn.Embedding: rows start at unit scale per feature.
        return {"E": rng.standard_normal(shapes["E"]).astype(dtype)}

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
    recurrent: ClassVar[bool] = True

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

    def init_params(self, shapes, rng, dtype):
        n_in, hidden = shapes["W_xh"]
        return rnn_params(self.init, n_in, hidden, rng, dtype)

    def cost(self, ins):
        n, h = Count.of_dim(ins[0].feature), Count.of_dim(self.hidden)
        # backward keeps act'(pre) of every step, and with return=last every state too
        steps = Count.symbol("B") * Count.symbol("T") * h
        return Cost(macs_token=n * h + h * h, kept=steps * 2 if self.return_ == "last" else steps)

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

    def init_params(self, shapes, rng, dtype):
        if not self.affine:
            return {}
        (n,) = shapes["gamma"]
        return {"gamma": np.ones(n, dtype=dtype), "beta": np.zeros(n, dtype=dtype)}

    def init_state(self, shapes, dtype):
        (n,) = shapes["running_mean"]
        return {"running_mean": np.zeros(n, dtype=dtype), "running_var": np.ones(n, dtype=dtype)}

    def cost(self, ins):
        return Cost(kept=self._out_count())  # the normalised input

    def equation(self):
        if self.affine:
            return "y = γ·(x − μ_B)/√(σ²_B + ε) + β"
        return "y = (x − μ_B)/√(σ²_B + ε)"


class LeakyRelu(NodeBase):
    op: Literal["leaky_relu"] = "leaky_relu"
    slope: float = Field(0.01, ge=0)
    summary: ClassVar[str] = "passes positives, scales negatives by a small slope"

    def cost(self, ins):
        return Cost(kept=self._out_count())  # its derivative

    def equation(self):
        if self.slope > 1:  # max() would pick the scaled side for positive x
            return f"y = x if x > 0 else {self.slope:g}·x"
        return f"y = max(x, {self.slope:g}·x)"


class Relu(NodeBase):
    op: Literal["relu"] = "relu"
    summary: ClassVar[str] = "zeroes negatives"

    def cost(self, ins):
        return Cost(kept=self._out_count())  # its mask

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

    def init_params(self, shapes, rng, dtype):
        n_in, units = shapes["W"]
        return linear_params(n_in, units, self.bias, rng, dtype)

    def cost(self, ins):
        mac = Count.of_dim(ins[0].feature) * Count.of_dim(self.units)
        return Cost(macs_token=mac) if ins[0].has_time else Cost(macs_sequence=mac)

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

    def cost(self, ins):
        return Cost(kept=self._out_count())  # its mask

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


def _size_fields(cls: type[NodeBase]) -> tuple[str, ...]:
    return tuple(
        name for name, f in cls.model_fields.items() if SizeSymbol in get_args(f.annotation)
    )


#: Which fields of which op are sizes that a task's data may bind (read off the
#: fields declared as `Size`).
SIZE_FIELDS: dict[str, tuple[str, ...]] = {
    op: fields for op, cls in OP_CLASSES.items() if (fields := _size_fields(cls))
}

#: The allowed values of an rnn's arguments, for kernels that check them.
RNN_ACTIVATIONS: tuple[str, ...] = get_args(Activation.model_fields["name"].annotation)
RNN_INITS: tuple[str, ...] = get_args(Rnn.model_fields["init"].annotation)
