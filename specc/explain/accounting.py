"""Counting without running: parameters, memory and multiply-adds of a model.

Everything here is read off the checked IR (shapes and parameter shapes), so
a model can be costed before any data is loaded. Sizes the data has not bound
yet (`vocab`, `labels`) and the batch and time axes (`B`, `T`) stay symbols:
counts are small polynomials (:class:`Count`) that print as formulas such as
``161·vocab + 20,864`` and become plain integers once every symbol is known.

The rules, stated once:

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
  embedding and one_hot 0. A dense layer on vectors (B, N) runs once per
  sequence, not per token, and is counted per sequence. Backward ≈ 2×
  forward: every matrix product x·W needs two of the same size, one for the
  gradient of x and one for the gradient of W.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specc.frontend.passes.shapes import param_shapes, state_shapes
from specc.ir.ops import NodeBase, Shape
from specc.ir.spec import Model, Task

BYTES_PER_SCALAR = 4  # float32

#: How many arrays the size of the parameters each optimizer keeps.
OPTIMIZER_ARRAYS_RULE = "adam: 2 per parameter; sgd with momentum: 1; sgd: 0; adagrad: 1"

#: Symbols in the order formulas print them: batch and time first.
_SYMBOL_ORDER = {"B": 0, "T": 1}


def _monomial_key(mono: tuple[str, ...]) -> tuple:
    return (-len(mono), [(_SYMBOL_ORDER.get(s, 2), s) for s in mono])


class Count:
    """A polynomial with integer coefficients in size symbols (`vocab`, `B`, ...).

    `Count(5)` is the number 5; `Count.symbol("vocab") * 32 + 8` is 32·vocab + 8.
    """

    __slots__ = ("terms",)

    def __init__(self, value: int = 0, terms: dict[tuple[str, ...], int] | None = None) -> None:
        self.terms: dict[tuple[str, ...], int] = {}
        if terms:
            self.terms = {k: v for k, v in terms.items() if v}
        if value:
            self.terms[()] = self.terms.get((), 0) + value

    @classmethod
    def symbol(cls, name: str) -> Count:
        return cls(terms={(name,): 1})

    @classmethod
    def of_dim(cls, dim: int | str) -> Count:
        """A dimension: a number, a symbol, or a sum such as ``vocab + 64`` (concat)."""
        if isinstance(dim, int):
            return cls(dim)
        total = cls()
        for part in str(dim).split("+"):
            part = part.strip()
            total = total + (cls(int(part)) if part.isdigit() else cls.symbol(part))
        return total

    @classmethod
    def product(cls, dims: tuple) -> Count:
        out = cls(1)
        for d in dims:
            out = out * cls.of_dim(d)
        return out

    def _coerce(self, other: Count | int) -> Count:
        return other if isinstance(other, Count) else Count(other)

    def __add__(self, other: Count | int) -> Count:
        other = self._coerce(other)
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms.get(k, 0) + v
        return Count(terms=terms)

    __radd__ = __add__

    def __mul__(self, other: Count | int) -> Count:
        other = self._coerce(other)
        terms: dict[tuple[str, ...], int] = {}
        for k1, v1 in self.terms.items():
            for k2, v2 in other.terms.items():
                k = tuple(sorted(k1 + k2, key=lambda s: (_SYMBOL_ORDER.get(s, 2), s)))
                terms[k] = terms.get(k, 0) + v1 * v2
        return Count(terms=terms)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            other = Count(other)
        return isinstance(other, Count) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.terms.items())))

    def __repr__(self) -> str:
        return f"Count({self.text()!r})"

    @property
    def symbols(self) -> list[str]:
        found = {s for mono in self.terms for s in mono}
        return sorted(found, key=lambda s: (_SYMBOL_ORDER.get(s, 2), s))

    @property
    def value(self) -> int | None:
        """The number, or None while a symbol is unbound."""
        if any(mono for mono in self.terms):
            return None
        return self.terms.get((), 0)

    def subs(self, values: dict[str, int]) -> Count:
        out = Count()
        for mono, coeff in self.terms.items():
            term = Count(coeff)
            for s in mono:
                term = term * (values[s] if s in values else Count.symbol(s))
            out = out + term
        return out

    def text(self) -> str:
        """``161·vocab + 20,864``; a plain number with thousands separators when bound."""
        if not self.terms:
            return "0"
        parts = []
        for mono in sorted(self.terms, key=_monomial_key):
            coeff = self.terms[mono]
            factors = ([] if coeff == 1 and mono else [f"{coeff:,}"]) + list(mono)
            parts.append("·".join(factors))
        return " + ".join(parts).replace("+ -", "- ")


def needs(count: Count) -> str:
    """`needs vocab` / `needs batch, seq_len`: what an unbound count waits for."""
    words = {"B": "batch", "T": "seq_len"}
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


def _macs(model: Model, node: NodeBase) -> tuple[Count, Count]:
    ins = [model.shape_of(n) for n in node.inputs]
    if node.op == "rnn":
        n, h = Count.of_dim(ins[0].feature), Count.of_dim(node.hidden)
        return n * h + h * h, Count()
    if node.op == "dense":
        mac = Count.of_dim(ins[0].feature) * Count.of_dim(node.units)
        return (mac, Count()) if ins[0].has_time else (Count(), mac)
    return Count(), Count()


def _kept(model: Model, node: NodeBase, out: Count) -> Count:
    """Scalars backward keeps beyond the graph's values (see the module docstring)."""
    if node.op == "rnn":
        steps = Count.symbol("B") * Count.symbol("T") * Count.of_dim(node.hidden)
        return steps * 2 if node.return_ == "last" else steps
    if node.op in ("batchnorm", "relu", "leaky_relu", "dropout"):
        return out
    return Count()


def node_info(model: Model, node: NodeBase) -> NodeInfo:
    assert node.shape is not None, "shapes are inferred before explain"
    params = param_shapes(model, node)
    state = {
        k: tuple(model.sizes.get(d, d) if isinstance(d, str) else d for d in v)
        for k, v in state_shapes(model, node).items()
    }
    out = Count() if node.op == "identity" else Count.product(node.shape.dims)
    token, sequence = _macs(model, node)
    return NodeInfo(
        node=node,
        shape=node.shape,
        params=params,
        state=state,
        param_count=sum((Count.product(s) for s in params.values()), Count()),
        state_count=sum((Count.product(s) for s in state.values()), Count()),
        macs_token=token,
        macs_sequence=sequence,
        activations=out + _kept(model, node, out),
    )


# ----- per model --------------------------------------------------------------


def optimizer_arrays(task: Task) -> int:
    """Arrays of the parameters' size the task's optimizer keeps (see OPTIMIZER_ARRAYS_RULE)."""
    opt = task.optimizer
    if opt.name == "adam":
        return 2
    if opt.name == "sgd":
        return 1 if opt.momentum > 0 else 0
    return 1  # adagrad: the sum of squared gradients


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
        return sorted(found - {"B", "T"})

    @property
    def batch_values(self) -> dict[str, int]:
        if self.task is None:
            return {}
        return {"B": self.task.batch, "T": task_steps(self.task)[0]}

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
