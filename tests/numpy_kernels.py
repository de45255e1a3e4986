"""The fast backend's kernels built from IR nodes, by keyword, for tests that drive one
kernel on its own.

A kernel is built from its IR node (`Kernel(node, sizes, dtype)`); these
factories make that node from the op's arguments as a spec writes them, so a
test reads `RNN(4, activation="leaky_relu", slope=0.2, reverse=True)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specc.backend.numpy import kernels as k
from specc.errors import Span
from specc.ir import ops

SPAN = Span(1, 1, 1, 2)


def _node(cls: type[ops.NodeBase], inputs: int = 1, **args: Any) -> Any:
    return cls(name=cls.model_fields["op"].default, inputs=[f"x{i}" for i in range(inputs)],
               span=SPAN, **args)  # fmt: skip


def RNN(
    hidden: int,
    activation: str = "tanh",
    slope: float | None = None,
    init: str = "default",
    reverse: bool = False,
    return_last: bool = False,
) -> k.RNN:
    # model_construct: the kernels also take negative slopes, which the language refuses
    act = ops.Activation.model_construct(
        name=activation, slope=slope if activation == "leaky_relu" else None
    )
    node = _node(
        ops.Rnn, hidden=hidden, activation=act, init=init, reverse=reverse,
        return_="last" if return_last else "sequence",
    )  # fmt: skip
    return k.RNN(node)


def Dense(units: int, bias: bool = True) -> k.Dense:
    return k.Dense(_node(ops.Dense, units=units, bias=bias))


def BatchNorm(eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> k.BatchNorm:
    return k.BatchNorm(_node(ops.BatchNorm, eps=eps, momentum=momentum, affine=affine))


def Embedding(vocab: int, dim: int) -> k.Embedding:
    return k.Embedding(_node(ops.Embedding, dim=dim), {"vocab": vocab})


def OneHot(vocab: int, dtype: Any = np.float32) -> k.OneHot:
    return k.OneHot(_node(ops.OneHot), {"vocab": vocab}, dtype)


def LeakyReLU(slope: float = 0.01) -> k.LeakyReLU:
    node = ops.LeakyRelu.model_construct(name="leaky_relu", inputs=["x0"], span=SPAN, slope=slope)
    return k.LeakyReLU(node)


def ReLU() -> k.ReLU:
    return k.ReLU(_node(ops.Relu))


def Tanh() -> k.Tanh:
    return k.Tanh(_node(ops.Tanh))


def Gelu() -> k.Gelu:
    return k.Gelu(_node(ops.Gelu))


def Sigmoid() -> k.Sigmoid:
    return k.Sigmoid(_node(ops.Sigmoid))


def Softmax() -> k.Softmax:
    return k.Softmax(_node(ops.Softmax))


def Dropout(p: float = 0.5) -> k.Dropout:
    return k.Dropout(_node(ops.Dropout, p=p))


def Concat() -> k.Concat:
    return k.Concat(_node(ops.Concat, inputs=2))


def Add() -> k.Add:
    return k.Add(_node(ops.Add, inputs=2))


def LSTM(
    hidden: int,
    init: str = "default",
    reverse: bool = False,
    return_last: bool = False,
    forget_bias: float = 1.0,
) -> k.LSTM:
    node = _node(
        ops.Lstm, hidden=hidden, init=init, reverse=reverse, forget_bias=forget_bias,
        return_="last" if return_last else "sequence",
    )  # fmt: skip
    return k.LSTM(node)


def GRU(
    hidden: int, init: str = "default", reverse: bool = False, return_last: bool = False
) -> k.GRU:
    node = _node(
        ops.Gru, hidden=hidden, init=init, reverse=reverse,
        return_="last" if return_last else "sequence",
    )  # fmt: skip
    return k.GRU(node)
