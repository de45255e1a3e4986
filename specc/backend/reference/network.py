"""The reference executor: run the nodes in order, then backward in reverse.

Nothing is fused, reused or overwritten: every value and every cache is kept,
and gradients meeting at a value are summed. The parameters, the public API
and the initial weights come from `specc.backend.graph.Network`, as for the
fast backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from specc.backend.graph import Loss
from specc.backend.graph import Network as GraphNetwork
from specc.backend.reference import batchnorm, elementwise, gated, layers, losses, rnn

KERNELS: dict[str, type] = {
    "embedding": layers.Embedding,
    "one_hot": layers.OneHot,
    "spell": layers.Identity,  # the letters fed with the words (`Network._reads`)
    "rnn": rnn.Rnn,
    "lstm": gated.Lstm,
    "gru": gated.Gru,
    "batchnorm": batchnorm.BatchNorm,
    "leaky_relu": elementwise.LeakyRelu,
    "relu": elementwise.Relu,
    "tanh": elementwise.Tanh,
    "gelu": elementwise.Gelu,
    "sigmoid": elementwise.Sigmoid,
    "dense": layers.Dense,
    "softmax": elementwise.Softmax,
    "dropout": layers.Dropout,
    "concat": layers.Concat,
    "add": layers.Add,
    "identity": layers.Identity,
}


class Network(GraphNetwork):
    """A model run by the reference ops (see `specc.backend.reference`)."""

    backend = "reference"
    KERNELS: ClassVar[Mapping[str, type]] = KERNELS
    LOSSES: ClassVar[Mapping[str, Loss]] = {
        "cross_entropy": losses.cross_entropy,
        "mse": losses.mse,
    }

    def _run(self, inputs, train, mask, stop_before=None):
        values: dict[str, Any] = self._prepare_inputs(inputs)
        mask = None if mask is None else np.asarray(mask, dtype=self.dtype)
        caches: dict[str, Any] = {}
        for node in self.model.nodes:
            if node.name == stop_before:
                continue
            xs = [values[name] for name in self.reads[node.name]]
            # The mask applies to ops on sequences only.
            timed = any(self.model.shape_of(name).has_time for name in node.inputs)
            values[node.name], caches[node.name] = self.kernels[node.name].forward(
                self._node_params.get(node.name, {}),
                self._node_state[node.name],
                xs,
                mask if timed else None,
                train,
                self.rng,
            )
        return values, caches

    def _backward(self, caches, upstream):
        self.flat_grads.fill(0)
        grads = dict(upstream)  # value name -> dL/d(value)
        for node in reversed(self.model.nodes):
            dy = grads.pop(node.name, None)
            if dy is None or node.name not in caches:
                continue
            dxs = self.kernels[node.name].backward(
                self._node_params.get(node.name, {}),
                caches[node.name],
                dy,
                self._node_grads.get(node.name, {}),
            )
            for src, dx in zip(self.reads[node.name], dxs, strict=True):
                if dx is not None:
                    grads[src] = grads[src] + dx if src in grads else dx
