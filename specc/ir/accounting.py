"""Counting without running: parameters, memory and multiply-adds of a model.

Everything here is read off the checked IR (shapes and parameter shapes), so
a model can be costed before any data is loaded. Sizes the data has not bound
yet (`vocab`, `labels`) and the batch and time axes (`B`, `T`) stay symbols:
counts are small polynomials (:class:`Count`) that print as formulas such as
``161·vocab + 20,864`` and become plain integers once every symbol is known.

The rules, which each op's `cost` (specc.ir.ops) implements for itself:

* **Parameters** are trainable scalars (`node.param_shapes`); batchnorm's
  running statistics (`node.state_shapes`) are counted apart as
  non-trainable state.
* **Memory** is float32, 4 bytes a scalar: parameters, their gradients (the
  same size), the optimizer's state (adam keeps 2 arrays per parameter, sgd
  with momentum > 0 one, plain sgd none, adagrad one), and state buffers.
* **Activation memory** for one training batch of B sequences of T steps is
  ``4 bytes × Σ_nodes (out(node) + kept(node))`` where ``out`` is the number
  of scalars in the node's output (B·T·features for a sequence, B·features
  for a vector) and ``kept`` is what backward keeps beyond the values of the
  graph: an rnn keeps the local derivative act'(pre) of every step (B·T·H)
  and, with ``return=last``, also every hidden state (another B·T·H, since
  its output holds only the last); batchnorm keeps the normalised input x̂
  (the size of its output); relu, leaky_relu and dropout keep a mask or
  derivative of the size of their output. tanh, sigmoid and softmax reuse
  their output, dense and concat their inputs, which are already counted.
  Graph inputs are data, not activations, and are left out; so are the
  transient gradient buffers of backward. It is an estimate of what the
  NumPy backend holds, not an exact figure for it.
* **Multiply-adds** count matrix products only (elementwise ops, softmax
  and normalisation are a few flops a scalar and are left out). Forward per
  token (one time step of one sequence): dense N·units, rnn N·H + H·H,
  embedding and one_hot 0. An op on letters (B, T, C, N) does its per-token
  work once per letter (C, the longest word; explain assumes
  ``ASSUMED_WORD_LENGTH``). A dense layer on vectors (B, N) runs once per
  sequence, not per token, and is counted per sequence. Backward ≈ 2×
  forward: every matrix product x·W needs two of the same size, one for the
  gradient of x and one for the gradient of W.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specc.ir.count import Count
from specc.ir.ops import NodeBase, Shape
from specc.ir.spec import Model, Task

BYTES_PER_SCALAR = 4  # float32

#: How many arrays the size of the parameters each optimizer keeps.
OPTIMIZER_ARRAYS_RULE = "adam, adamw: 2 per parameter; sgd with momentum: 1; sgd: 0; adagrad: 1"


def needs(count: Count) -> str:
    """`needs vocab` / `needs batch, seq_len`: what an unbound count waits for."""
    words = {"B": "batch", "T": "seq_len", "C": "word length"}
    return "needs " + ", ".join(dict.fromkeys(words.get(s, s) for s in count.symbols))


def human_count(n: int) -> str:
    """12_345_678 -> '12.3 M'; small numbers keep every digit."""
    if n < 100_000:
        return f"{n:,}"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:,}"


# ----- per node ---------------------------------------------------------------


@dataclass
class NodeInfo:
    """One node's figures, read off the IR."""

    node: NodeBase
    shape: Shape
    params: dict[str, tuple]
    state: dict[str, tuple]
    param_count: Count
    state_count: Count
    macs_token: Count  # forward multiply-adds per time step of one sequence
    macs_sequence: Count  # forward multiply-adds once per sequence (ops on vectors)
    activations: Count  # scalars kept for backward over one batch, in B and T

    @property
    def name(self) -> str:
        return self.node.name


def node_info(model: Model, node: NodeBase) -> NodeInfo:
    assert node.shape is not None, "shapes are inferred before explain"
    params = model.param_shapes(node)
    state = {
        k: tuple(model.sizes.get(d, d) if isinstance(d, str) else d for d in v)
        for k, v in model.state_shapes(node).items()
    }
    out = Count() if node.op == "identity" else Count.product(node.shape.dims)
    ins = [model.shape_of(n) for n in node.inputs]
    cost = node.cost(ins)
    # an op on letters (B, T, C, ...) runs its per-token work once per letter
    per_token = Count.symbol("C") if any(x.has_letters for x in ins) else Count(1)
    return NodeInfo(
        node=node,
        shape=node.shape,
        params=params,
        state=state,
        param_count=sum((Count.product(s) for s in params.values()), Count()),
        state_count=sum((Count.product(s) for s in state.values()), Count()),
        macs_token=cost.macs_token * per_token,
        macs_sequence=cost.macs_sequence,
        activations=out + cost.kept,
    )


# ----- per model --------------------------------------------------------------


def optimizer_arrays(task: Task) -> int:
    """Arrays of the parameters' size the task's optimizer keeps (see OPTIMIZER_ARRAYS_RULE)."""
    opt = task.optimizer
    if opt.name in ("adam", "adamw"):
        return 2
    if opt.name == "sgd":
        return 1 if opt.momentum > 0 else 0
    return 1  # adagrad: the sum of squared gradients


#: C for the accounting: letters in a word, a typical figure for English or Korean
#: (the longest word of a batch decides it at run time).
ASSUMED_WORD_LENGTH = 10


def task_steps(task: Task) -> tuple[int, str]:
    """T for the accounting: the data's sequence length where it has one, else seq_len."""
    length = getattr(task.data, "length", None)
    if isinstance(length, int):
        return length, f"{task.data.source} length"
    if task.kind == "next_char":
        return task.seq_len, "seq_len"
    return task.seq_len, "assumed; sentence lengths vary"


@dataclass
class Report:
    """A model's figures, with the task that sets batch, time and optimizer (if any)."""

    model: Model
    nodes: list[NodeInfo]
    task: Task | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def trainable(self) -> Count:
        return sum((n.param_count for n in self.nodes), Count())

    @property
    def non_trainable(self) -> Count:
        return sum((n.state_count for n in self.nodes), Count())

    @property
    def unbound(self) -> list[str]:
        found: set[str] = set()
        for n in self.nodes:
            found.update(Count.product(n.shape.dims).symbols)
            found.update(n.param_count.symbols)
        return sorted(found - {"B", "T", "C"})

    @property
    def batch_values(self) -> dict[str, int]:
        if self.task is None:
            return {}
        values = {"B": self.task.batch, "T": task_steps(self.task)[0]}
        if any(n.shape.has_letters for n in self.nodes):
            values["C"] = ASSUMED_WORD_LENGTH
        return values

    @property
    def macs_token(self) -> Count:
        return sum((n.macs_token for n in self.nodes), Count())

    @property
    def macs_sequence(self) -> Count:
        return sum((n.macs_sequence for n in self.nodes), Count())

    def macs_batch(self) -> Count:
        """Forward multiply-adds of one batch: B·(T·per-token + per-sequence)."""
        b, t = Count.symbol("B"), Count.symbol("T")
        return (b * (t * self.macs_token + self.macs_sequence)).subs(self.batch_values)

    def activation_scalars(self) -> Count:
        total = sum((n.activations for n in self.nodes), Count())
        return total.subs(self.batch_values)

    def optimizer_scalars(self) -> Count | None:
        if self.task is None:
            return None
        return self.trainable * optimizer_arrays(self.task)


def analyse(model: Model, task: Task | None = None) -> Report:
    """Figures for a size-bound (or partly symbolic) model with inferred shapes."""
    return Report(model=model, nodes=[node_info(model, n) for n in model.nodes], task=task)
