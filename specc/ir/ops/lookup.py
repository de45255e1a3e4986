"""Ops that turn token ids into vectors."""

from __future__ import annotations

from typing import ClassVar, Literal

from specc.ir.ops.base import NodeBase, Shape, ShapeError, Size


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
