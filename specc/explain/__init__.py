"""explain: the IR as people and tools read it, without running the model.

`specc explain` shows a model's graph as a rich table (`text`), as JSON (the
contract in `schema`, published as docs/schemas/explain.schema.json),
Graphviz DOT or a Mermaid flowchart (`export`), draws an rnn unrolled over
time (`unroll`), and costs the model: parameters, memory and multiply-adds
(`accounting`). `command` holds the CLI glue.
"""

from specc.explain.accounting import Count, NodeInfo, Report, analyse
from specc.explain.export import model_json, to_dot, to_json, to_mermaid
from specc.explain.text import model_view
from specc.explain.unroll import unroll_lines

__all__ = [
    "Count",
    "NodeInfo",
    "Report",
    "analyse",
    "model_json",
    "model_view",
    "to_dot",
    "to_json",
    "to_mermaid",
    "unroll_lines",
]
