"""specc in the editor: a language server over stdio (`specc lsp`), built on pygls.

One module per concern: `server` (documents, the debounced analysis, the
protocol's features), `diagnostics`, `hover`, `completion`, `symbols`
(definitions and references), `sizes` (what a task's data binds, for the
hover), `registry` (ops and their arguments, read off their classes) and
`convert` (spans to positions). pygls is an optional dependency: install
`specc[lsp]`.
"""
