"""What every op declaration is made of: shapes, costs, the rnn activation, and NodeBase."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from specc.errors import Span
from specc.ir.count import Count

#: A size argument: a positive number, or a symbol the task binds from its data.
SIZE_SYMBOLS = ("vocab", "labels", "chars")
SizeSymbol = Literal["vocab", "labels", "chars"]
#: The vocabularies token ids may index: the input's own tokens (`vocab`), or the
#: characters `spell` writes each word with (`chars`).
IdIndex = Literal["vocab", "chars"]
Size = Annotated[int, Field(gt=0)] | SizeSymbol

#: Concrete parameter or buffer shapes, by name, once every size is bound.
Shapes = dict[str, tuple[int, ...]]

#: A dimension of a shape: a number, "B"/"T" for batch and time, "C" for the letters of
#: a word (the longest word of a batch), or a size symbol.
Dim = int | str


class ShapeError(Exception):
    """A step cannot take its input; the shapes pass reports it at the step."""

    def __init__(self, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.help = help


class Shape(BaseModel):
    """Symbolic shape of a value; `ids` marks integer token ids rather than floats,
    and `index` the vocabulary those ids index (an embedding's table follows it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    dims: tuple[Dim, ...]
    ids: bool = False
    index: IdIndex = "vocab"

    @property
    def feature(self) -> Dim:
        return self.dims[-1]

    @property
    def has_time(self) -> bool:
        return len(self.dims) >= 2 and self.dims[1] == "T"

    @property
    def has_letters(self) -> bool:
        """(B, T, C, ...): a value per letter of each word (see `spell`)."""
        return len(self.dims) >= 3 and self.dims[:3] == ("B", "T", "C")

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


def need_floats(op: str, x: Shape) -> None:
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
    #: Trait: carries a cell state c_t beside h_t (`explain --unroll` draws it).
    cell_state: ClassVar[bool] = False
    #: A gated layer's gates per hidden unit, one letter each, in parameter order.
    gates: ClassVar[str] = ""

    def attrs(self) -> dict[str, Any]:
        """Arguments as the user would write them (aliases, plain values)."""
        data = self.model_dump(
            by_alias=True, exclude=set(NodeBase.model_fields) | {"op"}, exclude_none=True
        )
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
        need_floats(self.op, x)  # type: ignore[attr-defined]
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
