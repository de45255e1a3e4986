"""The fast backend's kernels by op name: forward and backward for every op a spec can use.

``KERNELS`` maps an op name in the IR to the kernel class the executor builds
from the IR node (``cls(node, sizes, dtype)``). Losses are plain functions.
"""

from __future__ import annotations

from specc.backend.numpy.activations import Gelu, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from specc.backend.numpy.base import Kernel
from specc.backend.numpy.embedding import Embedding, OneHot
from specc.backend.numpy.gru import GRU
from specc.backend.numpy.layers import Add, Concat, Dense, Dropout
from specc.backend.numpy.losses import mse, softmax_cross_entropy
from specc.backend.numpy.lstm import LSTM
from specc.backend.numpy.norm import BatchNorm
from specc.backend.numpy.rnn import RNN


class Identity(Kernel):
    """`a = b`: a second name for a value."""

    def forward(self, params, state, xs, mask, train, rng, inplace=False):
        return xs[0], None

    def backward(self, params, cache, dy, grads, inplace=False, fresh_grads=False):
        return [dy]


KERNELS: dict[str, type[Kernel]] = {
    "embedding": Embedding,
    "one_hot": OneHot,
    # `spell` passes on what the executor reads for it: the letters fed with the words
    # (`Network._reads`); being ids, they get no gradient
    "spell": Identity,
    "rnn": RNN,
    "lstm": LSTM,
    "gru": GRU,
    "batchnorm": BatchNorm,
    "leaky_relu": LeakyReLU,
    "relu": ReLU,
    "tanh": Tanh,
    "gelu": Gelu,
    "sigmoid": Sigmoid,
    "dense": Dense,
    "softmax": Softmax,
    "dropout": Dropout,
    "concat": Concat,
    "add": Add,
    "identity": Identity,
}

__all__ = [
    "GRU",
    "KERNELS",
    "LSTM",
    "RNN",
    "Add",
    "BatchNorm",
    "Concat",
    "Dense",
    "Dropout",
    "Embedding",
    "Gelu",
    "Identity",
    "Kernel",
    "LeakyReLU",
    "OneHot",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "mse",
    "softmax_cross_entropy",
]
