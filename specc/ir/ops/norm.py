"""Normalisation."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from specc.ir.ops.base import Cost, NodeBase, ShapeError, need_floats


class BatchNorm(NodeBase):
    op: Literal["batchnorm"] = "batchnorm"
    eps: float = Field(1e-5, gt=0)
    momentum: float = Field(0.1, ge=0, le=1)
    affine: bool = True
    summary: ClassVar[str] = "normalises each feature over the batch (and time)"

    def infer(self, ins):
        x = ins[0]
        need_floats("batchnorm", x)
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
