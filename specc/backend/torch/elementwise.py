"""Elementwise ops and softmax, as torch operations (autograd differentiates them)."""

from __future__ import annotations

from specc.backend.torch.lib import torch
from specc.backend.torch.op import Op


class Relu(Op):
    """y = max(x, 0)"""

    def forward(self, params, state, xs, mask, train, rng):
        return torch.relu(xs[0]), None


class LeakyRelu(Op):
    """y = x if x > 0 else slope·x"""

    def forward(self, params, state, xs, mask, train, rng):
        x = xs[0]
        return torch.where(x > 0, x, self.node.slope * x), None


class Gelu(Op):
    """y = ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), torch's tanh approximation."""

    def forward(self, params, state, xs, mask, train, rng):
        return torch.nn.functional.gelu(xs[0], approximate="tanh"), None


class Tanh(Op):
    """y = tanh(x)"""

    def forward(self, params, state, xs, mask, train, rng):
        return torch.tanh(xs[0]), None


class Sigmoid(Op):
    """y = σ(x)"""

    def forward(self, params, state, xs, mask, train, rng):
        return torch.sigmoid(xs[0]), None


class Softmax(Op):
    """y_i = e^x_i / Σ_j e^x_j over the last axis."""

    def forward(self, params, state, xs, mask, train, rng):
        return torch.softmax(xs[0], dim=-1), None
