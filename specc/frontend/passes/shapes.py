"""Sizes and shapes: bind `vocab`/`labels`, infer every node's shape, fit tasks.

Shapes are symbolic in batch and time ("B", "T") and in any size the data has
not bound yet, so a spec can be checked and explained before any data is read.
A mismatch is reported at the step that cannot take its input.
"""

from __future__ import annotations

from specc.errors import Diagnostics
from specc.ir.ops import SIZE_FIELDS, SIZE_SYMBOLS, NodeBase, Shape, ShapeError
from specc.ir.spec import Input, Model, Task


def bind_sizes(model: Model, sizes: dict[str, int]) -> Model:
    """Replace size symbols by numbers wherever `sizes` knows them."""
    if not sizes:
        return model
    nodes = []
    for node in model.nodes:
        update = {
            f: sizes[getattr(node, f)]
            for f in SIZE_FIELDS.get(node.op, ())
            if isinstance(getattr(node, f), str) and getattr(node, f) in sizes
        }
        nodes.append(node.model_copy(update={**update, "shape": None}) if update else node)
    inputs = [
        i.model_copy(update={"size": sizes[i.size]})
        if isinstance(i.size, str) and i.size in sizes
        else i
        for i in model.inputs
    ]
    known = {k: v for k, v in sizes.items() if k in SIZE_SYMBOLS}
    return model.model_copy(
        update={"nodes": nodes, "inputs": inputs, "sizes": {**model.sizes, **known}}
    )


def _bind_dims(shape: Shape, sizes: dict[str, int]) -> Shape:
    if not sizes:
        return shape
    dims = tuple(sizes.get(d, d) if isinstance(d, str) else d for d in shape.dims)
    return shape.model_copy(update={"dims": dims})


def infer_shapes(model: Model, diags: Diagnostics) -> Model:
    """Give every node its output shape; report each step that cannot take its input."""
    shapes: dict[str, Shape | None] = {i.name: i.shape() for i in model.inputs}
    nodes: list[NodeBase] = []
    for node in model.nodes:
        ins = [shapes.get(name) for name in node.inputs]
        shape = None
        if all(x is not None for x in ins):
            try:
                shape = _bind_dims(node.infer(ins), model.sizes)  # type: ignore[arg-type]
            except ShapeError as err:
                diags.error(err.message, node.span, err.help)
        shapes[node.name] = shape
        nodes.append(node.model_copy(update={"shape": shape}))
    return model.model_copy(update={"nodes": nodes})


#: What each task kind needs of its model's output: (dims without B, feature symbol).
_OUTPUT_FIT = {
    "next_char": (("T", "vocab"), "a distribution over the vocabulary at every step (B, T, vocab)"),
    "tag": (("T", "labels"), "a distribution over the labels at every step (B, T, labels)"),
    "classify": (("labels",), "one distribution over the labels (B, labels)"),
}


def check_task_fit(task: Task, model: Model, diags: Diagnostics) -> None:
    """The model's input and output must be what the task's kind feeds and reads."""
    if len(model.inputs) != 1:
        diags.error(
            f"task '{task.name}' needs a model with one input; '{model.name}' has "
            f"{len(model.inputs)}",
            task.span,
        )
        return
    if len(model.outputs) != 1:
        diags.error(
            f"task '{task.name}' needs a model with one output; '{model.name}' has "
            f"{len(model.outputs)}",
            task.span,
        )
        return
    inp: Input = model.inputs[0]
    want_tokens = task.data.source != "adding"
    if want_tokens and inp.type != "tokens":
        diags.error(
            f"{task.data.source} data feeds token ids, but input '{inp.name}' of model "
            f"'{model.name}' is {inp.type}",
            inp.span,
            f"declare `input {inp.name} : tokens`",
        )
    if task.data.source == "adding" and (inp.type != "sequence" or inp.size not in (2, None)):
        diags.error(
            f"adding data feeds sequence[2], but input '{inp.name}' of model '{model.name}' "
            f"is {inp.type}" + (f"[{inp.size}]" if inp.size is not None else ""),
            inp.span,
            f"declare `input {inp.name} : sequence[2]`",
        )
    if task.state == "carry":
        _check_carryable(model, diags)
    out_name = model.outputs[0]
    out = model.shape_of(out_name) if _has_shape(model, out_name) else None
    if out is None:
        return
    node = _node_or_none(model, out_name)
    where = node.span if node is not None else inp.span
    if not _check_words(task, model, diags):
        return
    _check_sizes_bound(task, model, diags)
    if task.data.source == "adding" and out.dims != ("B", 1):
        diags.error(
            f"adding data has one target per sequence, so the output must be (B, 1); "
            f"'{out_name}' has {out.text()}",
            where,
            "use rnn(..., return=last) before dense(units=1)",
        )
        return
    if task.kind == "regress":
        if out.dims not in (("B", 1), ("B", "T", 1)):
            diags.error(
                f"a regress task needs an output of shape (B, 1) or (B, T, 1); "
                f"'{out_name}' has {out.text()}",
                where,
                "end the model with dense(units=1)",
            )
        return
    want, words = _OUTPUT_FIT[task.kind]
    dims = out.dims[1:]
    fits = (
        len(dims) == len(want)
        and all(
            d == w or (w not in ("T",) and isinstance(d, int))
            for d, w in zip(dims, want, strict=True)
        )
        and not out.ids
    )
    if not fits:
        diags.error(
            f"a {task.kind} task needs {words}; output '{out_name}' has {out.text()}",
            where,
            _time_axis_help(task.kind, want, out, model, out_name)
            or f"end the model with dense(units={want[-1]}) -> softmax",
        )
        return
    if task.loss == "cross_entropy" and (node is None or node.op != "softmax"):
        diags.error(
            f"cross_entropy needs a softmax output; '{out_name}' is "
            f"{node.op if node else 'an input'}",
            where,
            "end the model with -> softmax",
        )


def _check_carryable(model: Model, diags: Diagnostics) -> None:
    """`state = carry` threads each recurrent layer's state forward through the text;
    a reversed layer's first step would read a state from beyond the window's end."""
    for node in model.nodes:
        if node.recurrent and getattr(node, "reverse", False):
            diags.error(
                f"state = carry cannot carry the state of '{node.name}': it runs backward in time",
                node.span,
                "remove reverse=true, or train with the default state = window",
            )


def _time_axis_help(kind: str, want: tuple, out: Shape, model: Model, out_name: str) -> str | None:
    """The fix when the output's time axis is what is wrong, at the rnn that decides it.

    Only an rnn's `return` keeps or drops the time axis, so "end the model with
    dense -> softmax" would send the user to a line that is already right;
    name the rnn and its line instead. None when the time axis is not the problem."""
    needs_time, has_time = "T" in want, "T" in out.dims
    if needs_time == has_time:
        return None
    deciding = [n for n in _last_rnns(model, out_name) if (n.return_ == "last") == needs_time]
    if not deciding:
        return None
    where = " and ".join(f"{n.op} '{n.name}' (line {n.span.line})" for n in deciding)
    if needs_time:
        return f"a {kind} task needs an output per step; remove return=last from {where}"
    return f"a {kind} task needs one output per sequence; add return=last to {where}"


def _last_rnns(model: Model, name: str) -> list[NodeBase]:
    """The recurrent layers (rnn, lstm, gru) nearest to `name` on each path back to the
    inputs: the ones whose `return` decides whether `name` has a time axis."""
    by_name = {n.name: n for n in model.nodes}
    seen: set[str] = set()
    found: list[NodeBase] = []
    queue = [name]
    while queue:
        node = by_name.get(queue.pop(0))
        if node is None or node.name in seen:  # model inputs are not nodes
            continue
        seen.add(node.name)
        if node.recurrent:
            found.append(node)
        else:
            queue.extend(node.inputs)
    return found


#: The sizes each data source binds from its data.
SOURCE_SIZES = {
    "text": ("vocab",),
    "tagged": ("vocab", "labels", "chars"),
    "conllu": ("vocab", "labels", "chars"),
    "copy": ("vocab", "labels"),
    "adding": (),
    "parity": ("vocab", "labels"),
}


#: The data sources whose tokens are words with their strings (what `spell` reads).
WORD_SOURCES = ("tagged", "conllu")


def _check_words(task: Task, model: Model, diags: Diagnostics) -> bool:
    """`spell` and an embedding's word options need data made of words; the model's
    spell steps (and its word embeddings) must agree, since the data is read once."""
    ok = True
    spells = [n for n in model.nodes if n.op == "spell"]
    worded = [n for n in model.nodes if n.op == "embedding" and n.word_options]
    for node in [*spells, *worded]:
        if task.data.source in WORD_SOURCES:
            continue
        what = "spell" if node.op == "spell" else "min_count and unk"
        if task.kind == "next_char":
            why = "a next_char task's tokens are characters already, not words"
        else:
            why = f"{task.data.source} data has no word strings"
        diags.error(
            f"{what} needs words with their spelling, but task '{task.name}' reads "
            f"{task.data.source} data: {why}",
            node.span,
            "use tagged(...) or conllu(...) data, whose tokens are words",
        )
        ok = False
    for group, what in ((spells, "nfd"), (worded, "min_count and unk")):
        first = group[0] if group else None
        for node in group[1:]:
            if node.non_default_attrs() != first.non_default_attrs():  # type: ignore[union-attr]
                diags.error(
                    f"'{node.name}' and '{first.name}' set {what} differently, but a task "  # type: ignore[union-attr]
                    "reads its words one way",
                    node.span,
                    "give both the same arguments",
                )
                ok = False
    return ok


def _check_sizes_bound(task: Task, model: Model, diags: Diagnostics) -> None:
    """A size symbol the task's data never binds would stay unknown at run time."""
    bound = SOURCE_SIZES.get(task.data.source, SIZE_SYMBOLS)
    for node in model.nodes:
        dims = [d for shape in model.param_shapes(node).values() for d in shape]
        dims += list(node.shape.dims) if node.shape is not None else []
        for d in dims:
            if isinstance(d, str) and d in SIZE_SYMBOLS and d not in bound:
                binds = " and ".join(f"'{b}'" for b in bound) or "no sizes"
                diags.error(
                    f"'{node.name}' uses '{d}', but {task.data.source} data binds {binds}",
                    node.span,
                    "write a number instead",
                )
                return


def _has_shape(model: Model, name: str) -> bool:
    try:
        return model.shape_of(name) is not None
    except (KeyError, AssertionError):
        return False


def _node_or_none(model: Model, name: str) -> NodeBase | None:
    try:
        return model.node(name)
    except KeyError:
        return None
