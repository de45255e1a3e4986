"""Gradient flow through time, and internal covariate shift, measured.

`gradient_flow` answers the question behind the vanishing gradient: how much
does the loss at the LAST step depend on the hidden state at each earlier
step t? It backpropagates only the last step's loss and reads ‖∂L_T/∂h_t‖ off
the rnn's BPTT loop. A plain sigmoid or tanh rnn shows a geometric decay;
rectified units with an identity recurrence keep the gradient alive.

`covariate_shift` trains a model with and without batchnorm and follows the
per-feature mean and variance of one layer's input on a fixed probe batch,
which is the drift Algorithm 1 of Ioffe & Szegedy removes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from specc.backend import DEFAULT_BACKEND, build_network
from specc.backend.graph import Network
from specc.errors import SpecError
from specc.ir.ops import NodeBase
from specc.ir.spec import Model, Task
from specc.train.metrics import log_softmax
from specc.train.prepare import Batch, Prepared

#: Norms are floored here before taking logs (an exact zero has no log).
FLOOR = 1e-300


@dataclass
class GradientFlow:
    """‖∂L_T/∂h_t‖ for t = 0..T-1 at one rnn node."""

    node: str
    grad_norm: np.ndarray
    label: str

    @property
    def length(self) -> int:
        return len(self.grad_norm)

    @property
    def ratio(self) -> float:
        """grad_norm[0] / grad_norm[T-1]: what survives the whole sequence."""
        last = self.grad_norm[-1]
        return float(self.grad_norm[0] / last) if last > 0 else float("nan")

    @property
    def decay_per_step(self) -> float:
        """Geometric-mean factor by which the gradient shrinks per step back in time."""
        if self.length < 2 or not self.ratio > 0:
            return float("nan")
        return float(math.exp(math.log(self.ratio) / (self.length - 1)))

    def horizon(self, threshold: float = 1e-3) -> int | None:
        """Steps back from T-1 until the gradient first falls below threshold × its value at T."""
        last = self.grad_norm[-1]
        below = np.nonzero(self.grad_norm[::-1] < threshold * last)[0]
        return int(below[0]) if len(below) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "label": self.label,
            "T": self.length,
            "grad_norm": [float(g) for g in self.grad_norm],
            "ratio_first_to_last": _finite(self.ratio),
            "decay_per_step": _finite(self.decay_per_step),
            "horizon_1e-3": self.horizon(),
        }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def rnn_nodes(model: Model) -> list[NodeBase]:
    """The recurrent layers: those whose gradient flow through time diagnose measures
    (the layers along the letters of words run over letters, not time: left out)."""
    return [n for n in model.nodes if n.recurrent and not model.shape_of(n.inputs[0]).has_letters]


def pick_rnn(model: Model, name: str | None) -> NodeBase:
    rnns = rnn_nodes(model)
    if not rnns:
        raise SpecError(
            f"model '{model.name}' has no rnn; diagnose measures gradient flow "
            "through an rnn's time steps"
        )
    if name is None:
        return rnns[0]
    for n in rnns:
        if n.name == name:
            return n
    raise SpecError(
        f"no rnn named '{name}' in model '{model.name}' "
        f"(its rnns: {', '.join(n.name for n in rnns)})"
    )


def _last_step_upstream(net: Network, values: dict[str, np.ndarray], batch: Batch, task: Task):
    """The gradient of the loss at each row's last real step only, at its start node."""
    out = net.model.node(net.model.outputs[0])
    b_sz = batch.targets.shape[0]
    if batch.mask is not None:
        last = np.maximum(batch.mask.sum(axis=1).astype(int) - 1, 0)
    else:
        last = np.full(b_sz, batch.targets.shape[1] - 1 if batch.targets.ndim > 1 else 0)
    rows = np.arange(b_sz)
    if task.loss == "cross_entropy":
        start = out.inputs[0]
        logits = values[start]
        g = np.zeros_like(logits)
        if logits.ndim == 3:
            probs = np.exp(log_softmax(logits[rows, last]))
            tgt = batch.targets[rows, last]
            probs[rows, tgt] -= 1
            g[rows, last] = probs / b_sz
        else:
            probs = np.exp(log_softmax(logits))
            probs[rows, batch.targets] -= 1
            g[...] = probs / b_sz
        return start, g
    pred = values[out.name]
    g = np.zeros_like(pred)
    target = np.asarray(batch.targets, dtype=pred.dtype).reshape(pred.shape)
    if pred.ndim == 3:
        g[rows, last] = 2 * (pred[rows, last] - target[rows, last]) / b_sz
    else:
        g[...] = 2 * (pred - target) / pred.size
    return out.name, g


def gradient_flow(
    net: Network, batch: Batch, task: Task, rnn: str | None = None, label: str = ""
) -> GradientFlow:
    """Backpropagate the last step's loss and read ‖∂L_T/∂h_t‖ at every t."""
    node = pick_rnn(net.model, rnn)
    saved_state = {k: v.copy() for k, v in net.state.items()}
    fused = task.loss == "cross_entropy"
    out = net.model.outputs[0]
    norms = None

    def watch(name: str, dh: np.ndarray) -> None:
        nonlocal norms
        if name == node.name:  # ‖dL/dh_t‖ over the batch and the features, per t
            norms = np.sqrt(np.einsum("bth,bth->t", dh, dh))

    try:
        trace = net.trace(
            batch.feeds(net.model.inputs[0].name),
            True,
            batch.mask,
            stop_before=out if fused else None,
        )
        start, upstream = _last_step_upstream(net, trace.values, batch, task)
        net.backward(trace, {start: upstream}, watch=watch)
    finally:
        for k, v in saved_state.items():  # measuring must not move running statistics
            net.state[k][...] = v
    if norms is None:
        raise SpecError(f"the loss at the last step does not reach rnn '{node.name}'")
    return GradientFlow(node.name, np.asarray(norms, dtype=np.float64).copy(), label)


# ----- internal covariate shift ------------------------------------------------------


@dataclass
class ShiftTrace:
    """Per-feature statistics of one layer's input, sampled during training."""

    variant: str  # "with batchnorm" / "without batchnorm"
    layer: str  # the node whose input is watched
    steps: list[int] = field(default_factory=list)
    means: list[np.ndarray] = field(default_factory=list)
    variances: list[np.ndarray] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def mean_drift(self) -> list[float]:
        """RMS over features of how far each feature's mean moved since step 0,
        in units of that feature's initial standard deviation."""
        m0, s0 = self.means[0], np.sqrt(self.variances[0]) + 1e-8
        return [float(np.sqrt(np.mean(((m - m0) / s0) ** 2))) for m in self.means]

    def var_drift(self) -> list[float]:
        """Mean over features of |log(σ²_k / σ²_0)|: 0.69 means a typical 2x change."""
        v0 = self.variances[0] + 1e-12
        return [float(np.mean(np.abs(np.log((v + 1e-12) / v0)))) for v in self.variances]

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "layer": self.layer,
            "steps": self.steps,
            "mean_drift": self.mean_drift(),
            "var_drift": self.var_drift(),
            "train_loss": self.losses,
        }


def without_batchnorm(model: Model) -> Model:
    """The same graph with every batchnorm removed and its consumers rewired."""
    bns = {n.name: n.inputs[0] for n in model.nodes if n.op == "batchnorm"}
    if any(name in model.outputs for name in bns):
        raise SpecError("a batchnorm that is a model output cannot be removed for comparison")
    nodes = [
        n.model_copy(update={"inputs": [bns.get(i, i) for i in n.inputs]})
        for n in model.nodes
        if n.op != "batchnorm"
    ]
    return model.model_copy(update={"nodes": nodes})


def watched_layer(model: Model) -> tuple[str, str]:
    """(consumer node, the input it reads): the layer right after the first batchnorm."""
    for node in model.nodes:
        if node.op == "batchnorm":
            for consumer in model.nodes:
                if node.name in consumer.inputs:
                    return consumer.name, node.name
    raise SpecError(
        f"model '{model.name}' has no batchnorm to compare against; covariate shift is "
        "measured on the layer after a batchnorm, with and without it"
    )


def covariate_shift(
    model: Model,
    task: Task,
    prepared: Prepared,
    steps: int,
    every: int,
    seed: int,
    backend: str = DEFAULT_BACKEND,
    device: str | None = None,
) -> list[ShiftTrace]:
    """Train the model with and without its batchnorm on ``backend`` (in float64);
    watch the same layer's input."""
    from specc.train.loop import train_step
    from specc.train.optim import make_optimizer

    consumer, _ = watched_layer(model)
    probe = prepared.val[0] if prepared.val else prepared.batch(0, 0)
    traces = []
    for variant, m in (("with batchnorm", model), ("without batchnorm", without_batchnorm(model))):
        net = build_network(m, backend, seed=seed, dtype="float64", device=device)
        opt = make_optimizer(task.optimizer, net.flat_params.size, net.dtype)
        trace = ShiftTrace(variant, consumer)
        spe = prepared.steps_per_epoch
        for step in range(steps + 1):
            if step % every == 0:
                mean, var = _layer_input_stats(net, consumer, probe)
                trace.steps.append(step)
                trace.means.append(mean)
                trace.variances.append(var)
            if step == steps:
                break
            epoch, index = divmod(step, spe)
            loss = train_step(net, opt, prepared.batch(epoch, index), task, step)
            if step % every == 0:
                trace.losses.append(loss)
        traces.append(trace)
    return traces


def _layer_input_stats(net: Network, consumer: str, probe: Batch) -> tuple[np.ndarray, np.ndarray]:
    saved = {k: v.copy() for k, v in net.state.items()}
    node = net.model.node(consumer)
    values = net.trace(probe.feeds(net.model.inputs[0].name), True, probe.mask).values
    for k, v in saved.items():
        net.state[k][...] = v
    x = values[node.inputs[0]]
    flat = x.reshape(-1, x.shape[-1])
    if probe.mask is not None and x.ndim == 3:
        flat = flat[probe.mask.reshape(-1) > 0]
    return flat.mean(axis=0), flat.var(axis=0)
