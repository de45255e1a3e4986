"""`--unroll N`: an rnn drawn over N time steps, as plain text within 80 columns.

    y_1          y_2          y_3
     ↑            ↑            ↑
h_0 = 0 ─W_hh→ h_1 ─W_hh→ h_2 ─W_hh→ h_3
     ↑ W_xh       ↑ W_xh       ↑ W_xh
    x_1          x_2          x_3

An lstm also carries its cell state c_t, drawn under h_t and linked through
the forget gate (c_t = f⊙c_{t-1} + i⊙g, h_t = o⊙tanh(c_t)); its weights hold
the four gates side by side. A gru is drawn like an rnn, with its three gates.

`reverse=true` links the states right to left and starts from the zero state
at the right end (h_{N+1} = 0, matching its equation h_t = f(.. h_{t+1} ..));
`return=last` draws only the output the rnn returns. When N steps do not fit,
the first steps, `…`, and the last step are shown.
"""

from __future__ import annotations

from specc.ir.ops import NodeBase
from specc.ir.spec import Model

WIDTH = 80
FORWARD_LINK = " ─W_hh→ "
BACKWARD_LINK = " ←W_hh─ "
ELLIPSIS = "…"
#: The lstm's cell-state links, as wide as the hidden-state links they sit under.
CELL_FORWARD = " ──f⊙─→ "
CELL_BACKWARD = " ←─f⊙── "


def _steps_shown(n: int, keep: int) -> list[int | None]:
    """1..n, or the first keep-2 steps, None for the gap, and step n."""
    if n <= keep:
        return list(range(1, n + 1))
    return [*range(1, keep - 1), None, n]


def _draw(node: NodeBase, steps: list[int | None], n: int) -> list[str]:
    reverse = node.reverse  # type: ignore[attr-defined]
    last_only = node.return_ == "last"  # type: ignore[attr-defined]
    labels = [f"h_{t}" if t is not None else ELLIPSIS for t in steps]
    zero = f"h_{n + 1} = 0" if reverse else "h_0 = 0"
    middle = "" if reverse else zero
    centres = []
    for i, label in enumerate(labels):
        if not reverse:
            middle += FORWARD_LINK
        start = len(middle)
        middle += label
        centres.append(start + (len(label) - 1) // 2)
        if reverse:
            middle += BACKWARD_LINK if i < len(labels) - 1 else BACKWARD_LINK + zero
    # The output returned with return=last: the state of the last step processed.
    returned = (1 if reverse else n) if last_only else None

    def row(cells: list[tuple[int, str]]) -> str:
        line = ""
        for centre, text in cells:
            start = max(centre - (len(text) - 1) // 2, len(line) + 1 if line else 0)
            line = line.ljust(start) + text
        return line.rstrip()

    pairs = list(zip(steps, centres, strict=True))
    if last_only:
        ys = [(c, "y") for t, c in pairs if t == returned]
    else:
        ys = [(c, ELLIPSIS if t is None else f"y_{t}") for t, c in pairs]
    up_y = [(c, "↑") for t, c in pairs if t is not None and (not last_only or t == returned)]
    xs = [(c, ELLIPSIS if t is None else f"x_{t}") for t, c in pairs]
    # "↑ W_xh" starts at the arrow rather than being centred on it.
    up_x_line = ""
    for t, c in pairs:
        if t is not None:
            up_x_line = up_x_line.ljust(c) + "↑ W_xh"
    if not node.cell_state:
        return [row(ys), row(up_y), middle, up_x_line, row(xs)]
    cells = middle.replace("h_", "c_").replace(FORWARD_LINK, CELL_FORWARD)
    cells = cells.replace(BACKWARD_LINK, CELL_BACKWARD)
    both = row([(c, "↕") for t, c in pairs if t is not None])
    return [row(ys), row(up_y), middle, both, cells, up_x_line, row(xs)]


def _factor(dim: object) -> str:
    text = str(dim)
    return f"({text})" if " " in text else text


def unroll_lines(model: Model, node: NodeBase, n: int, width: int = WIDTH) -> list[str]:
    """The picture of one recurrent node unrolled over n steps, every line ≤ width."""
    if n < 1:
        raise ValueError("n must be at least 1")
    keep = min(n, width // len(FORWARD_LINK))
    while True:
        lines = _draw(node, _steps_shown(n, keep), n)
        if max(len(s) for s in lines) <= width or keep <= 3:
            break
        keep -= 1
    x = model.shape_of(node.inputs[0])
    h = node.hidden  # type: ignore[attr-defined]
    reverse = node.reverse  # type: ignore[attr-defined]
    gates = len(node.gates) or 1
    sx = x.feature
    order = f"t = {n} … 1" if reverse else f"t = 1 … {n}"
    nx, nh = _factor(sx), _factor(h)
    wide = nh if gates == 1 else f"{gates}·{nh}"
    start = n + 1 if reverse else 0
    notes = [
        f"x_t: input at step t, {sx} features (from '{node.inputs[0]}')",
        f"h_t: hidden state, {h} features; h_{start} = 0; runs {order}",
    ]
    if node.cell_state:
        notes.append(f"c_t: cell state, {h} features; c_{start} = 0; c_t = f⊙c_prev + i⊙g")
    params = list(model.param_shapes(node))
    names = ", ".join(params[:-1]) + " and " + params[-1]
    notes += [
        f"W_xh: input → {'hidden' if gates == 1 else 'gates'}, {nx}×{wide}",
        f"W_hh: hidden → {'hidden' if gates == 1 else 'gates'}, {nh}×{wide}",
        f"the same {names} at every step",
    ]
    if x.has_letters:  # it runs along each word's letters: t counts letters
        notes.append("t counts the letters of each word; every word runs on its own")
    if node.return_ == "last":  # type: ignore[attr-defined]
        step = 1 if reverse else n
        notes.append(
            f"return=last: y = h_{step}, the last state computed, shape {node.shape.text()}"  # type: ignore[union-attr]
        )
    else:
        notes.append(f"y_t = h_t: the output is every hidden state, shape {node.shape.text()}")  # type: ignore[union-attr]
    return [*lines, "", *notes]
