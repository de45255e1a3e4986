"""explain: the IR as people and tools read it, without running the model.

`specc explain` shows a model's graph as a rich table (`text`), as JSON (the
contract in `schema`, published as docs/schemas/explain.schema.json),
Graphviz DOT or a Mermaid flowchart (`export`), draws an rnn unrolled over
time (`unroll`); the costs come from `specc.ir.accounting`. `views` goes from
a spec file or checkpoint to these reports and views; `specc.cli.explain`
holds the options.
"""

from specc.explain.export import model_json, to_dot, to_json, to_mermaid
from specc.explain.text import model_view
from specc.explain.unroll import unroll_lines
from specc.ir.accounting import Count, NodeInfo, Report, analyse

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
