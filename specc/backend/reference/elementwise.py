"""Elementwise ops and softmax: y = f(x), dx = f'(x) · dy."""

from __future__ import annotations

import numpy as np

from specc.backend.reference.op import Op


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^−x), computed from tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class Relu(Op):
    """y = max(x, 0)"""

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        return np.maximum(x, 0), x

    def backward(self, params, x, dy, grads):
        return [dy * (x > 0)]


class LeakyRelu(Op):
    """y = x if x > 0 else slope·x"""

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        return np.where(x > 0, x, self.node.slope * x), x

    def backward(self, params, x, dy, grads):
        return [np.where(x > 0, dy, self.node.slope * dy)]


class Gelu(Op):
    """y = ½x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³)
    dy/dx = ½(1 + tanh u) + ½x·(1 − tanh² u)·√(2/π)·(1 + 3·0.044715·x²)"""

    C, A = np.sqrt(2 / np.pi), 0.044715

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        return 0.5 * x * (1 + np.tanh(self.C * (x + self.A * x**3))), x

    def backward(self, params, x, dy, grads):
        t = np.tanh(self.C * (x + self.A * x**3))
        du = self.C * (1 + 3 * self.A * x**2)
        return [dy * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * du)]


class Tanh(Op):
    """y = tanh(x), dy/dx = 1 − y²"""

    def forward(self, params, state, xs, mask, train, rng):
        y = np.tanh(xs[0])
        return y, y

    def backward(self, params, y, dy, grads):
        return [dy * (1 - y**2)]


class Sigmoid(Op):
    """y = σ(x), dy/dx = y (1 − y)"""

    def forward(self, params, state, xs, mask, train, rng):
        y = sigmoid(xs[0])
        return y, y

    def backward(self, params, y, dy, grads):
        return [dy * y * (1 - y)]


class Softmax(Op):
    """y_i = e^x_i / Σ_j e^x_j over the last axis; dx = y ⊙ (dy − Σ_j dy_j y_j)"""

    def forward(self, params, state, xs, mask, train, rng):
        (x,) = xs
        e = np.exp(x - x.max(axis=-1, keepdims=True))  # the same softmax, without overflow
        y = e / e.sum(axis=-1, keepdims=True)
        return y, y

    def backward(self, params, y, dy, grads):
        return [y * (dy - (dy * y).sum(axis=-1, keepdims=True))]
