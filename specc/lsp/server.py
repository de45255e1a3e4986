"""The language server: documents, the debounced analysis, and the protocol's features.

Each open document is analysed by the front end (`specc.frontend.analysis`)
on open and save at once and on change after a short pause, in one worker
thread, so typing never queues a compile per keystroke and the event loop
stays free to answer. Requests that need the analysis (hover, definitions)
wait for the one in flight, so they answer about the text the client has.
Every handler catches what it did not foresee, logs it to the client and
answers "nothing": the server outlives any input.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from specc import __version__
from specc.api import Program
from specc.errors import SpecError
from specc.frontend.analysis import Analysis, analyse_text, format_text
from specc.lsp.completion import complete
from specc.lsp.convert import Text
from specc.lsp.diagnostics import to_protocol
from specc.lsp.hover import hover_text
from specc.lsp.sizes import Bound, SizeCache
from specc.lsp.symbols import Index, Symbol, build_index

log = logging.getLogger(__name__)

#: Seconds of quiet after a change before the document is analysed again.
DEBOUNCE_S = 0.3

TRIGGERS = [">", "(", ",", "=", ":", " "]

_INCREMENTAL = types.TextDocumentSyncKind.Incremental


@dataclass
class Document:
    """What the server knows of one open document, from its latest analysis."""

    version: int | None = None
    analysis: Analysis | None = None
    text: Text | None = None
    index: Index = field(default_factory=Index)  # the last text that parsed
    program: Program | None = None
    bound: dict[str, Bound] = field(default_factory=dict)
    pending: asyncio.Task | None = None


@dataclass
class Result:
    analysis: Analysis
    text: Text
    program: Program | None
    bound: dict[str, Bound]


class SpeccServer(LanguageServer):
    """pygls's server with specc's documents and one analysis worker."""

    def __init__(self, debounce: float = DEBOUNCE_S) -> None:
        super().__init__("specc", __version__, text_document_sync_kind=_INCREMENTAL)
        self.debounce = debounce
        self.docs: dict[str, Document] = {}
        self.sizes = SizeCache()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="specc-analysis")

    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or types.PositionEncodingKind.Utf16)

    def schedule(self, uri: str, delay: float) -> None:
        """Analyse `uri` after `delay` seconds, replacing any analysis not yet started."""
        doc = self.docs.setdefault(uri, Document())
        if doc.pending is not None and not doc.pending.done():
            doc.pending.cancel()
        doc.pending = asyncio.get_running_loop().create_task(self._analyse(uri, delay))

    async def _analyse(self, uri: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        source = self.workspace.get_text_document(uri)
        text, version = source.source, source.version
        path = to_fs_path(uri)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self.worker, self._work, text, path, self.encoding)
        doc = self.docs.get(uri)
        if doc is None:  # closed meanwhile
            return
        doc.version, doc.analysis, doc.text = version, result.analysis, result.text
        doc.program, doc.bound = result.program, result.bound
        if result.analysis.surface is not None:
            doc.index = build_index(result.analysis.surface)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri, version=version, diagnostics=to_protocol(result.analysis, result.text)
            )
        )

    def _work(self, text: str, path: str | None, encoding: str) -> Result:
        base = Path(path).parent if path and Path(path).parent.is_dir() else None
        analysis = analyse_text(text, path, base)
        program, bound = None, {}
        if analysis.compiled is not None:
            program = Program(analysis.compiled, base)
            if base is not None:
                bound = self.sizes.for_models(program)
        return Result(analysis, Text.of(analysis.source, encoding, analysis.bom), program, bound)

    async def current(self, uri: str) -> Document | None:
        """The document's state once the analysis in flight (if any) is done."""
        doc = self.docs.get(uri)
        if doc is None:
            return None
        if doc.pending is not None and not doc.pending.done():
            try:
                await asyncio.shield(doc.pending)
            except asyncio.CancelledError:  # replaced by a newer edit: wait for that one
                return await self.current(uri)
        return doc

    def symbol_at(self, doc: Document, pos: types.Position) -> Symbol | None:
        """The symbol at the cursor, if the word there is still that symbol's name (the
        index may be from the last text that parsed)."""
        if doc.text is None:
            return None
        word = doc.text.word_at(pos)
        if word is None:
            return None
        line, column = doc.text.to_chars(pos)
        symbol = doc.index.at(line, column)
        return symbol if symbol is not None and symbol.name == word[0] else None


def guarded(default=None):
    """Answer `default` and log instead of letting a bug in a handler escape."""

    def wrap(fn):
        @functools.wraps(fn)
        async def run(ls: SpeccServer, params):
            try:
                return await fn(ls, params)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("specc lsp: %s failed", fn.__name__)
                ls.window_log_message(
                    types.LogMessageParams(
                        type=types.MessageType.Error,
                        message=f"specc: {fn.__name__} failed: {exc!r}",
                    )
                )
                return default

        return run

    return wrap


def _places(doc: Document, uri: str, symbol: Symbol, declaration: bool) -> list[types.Location]:
    assert doc.text is not None
    spans = ([symbol.definition] if declaration else []) + symbol.references
    return [types.Location(uri=uri, range=doc.text.range(span)) for span in spans]


def make_server(debounce: float = DEBOUNCE_S) -> SpeccServer:
    """A server with every feature registered (a fresh one per call, for tests)."""
    server = SpeccServer(debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @guarded()
    async def did_open(ls: SpeccServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @guarded()
    async def did_change(ls: SpeccServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, ls.debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @guarded()
    async def did_save(ls: SpeccServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)  # a data file may have appeared

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @guarded()
    async def did_close(ls: SpeccServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        doc = ls.docs.pop(uri, None)
        if doc is not None and doc.pending is not None:
            doc.pending.cancel()
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @guarded()
    async def hover(ls: SpeccServer, params: types.HoverParams) -> types.Hover | None:
        doc = await ls.current(params.text_document.uri)
        if doc is None or doc.analysis is None:
            return None
        symbol = ls.symbol_at(doc, params.position)
        if symbol is None or doc.text is None:
            return None
        value = hover_text(symbol, doc.program, doc.bound)
        word = doc.text.word_at(params.position)
        if value is None or word is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=value),
            range=doc.text.range(word[1]),
        )

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS)
    )
    @guarded()
    async def completion(ls: SpeccServer, params: types.CompletionParams) -> types.CompletionList:
        uri = params.text_document.uri
        source = ls.workspace.get_text_document(uri).source.replace("\r\n", "\n")
        text = Text.of(source.removeprefix("\ufeff"), ls.encoding, source.startswith("\ufeff"))
        doc = ls.docs.get(uri) or Document()
        items = complete(text.upto(params.position), doc.index)
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @guarded()
    async def definition(ls: SpeccServer, params: types.DefinitionParams):
        doc = await ls.current(params.text_document.uri)
        symbol = ls.symbol_at(doc, params.position) if doc else None
        if symbol is None or doc is None:
            return None
        return _places(doc, params.text_document.uri, symbol, True)[:1]

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    @guarded()
    async def references(ls: SpeccServer, params: types.ReferenceParams):
        doc = await ls.current(params.text_document.uri)
        symbol = ls.symbol_at(doc, params.position) if doc else None
        if symbol is None or doc is None:
            return None
        declaration = params.context.include_declaration
        return _places(doc, params.text_document.uri, symbol, declaration)

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    @guarded()
    async def formatting(ls: SpeccServer, params: types.DocumentFormattingParams):
        source = ls.workspace.get_text_document(params.text_document.uri).source
        try:
            formatted = format_text(source)
        except SpecError:
            return None  # `specc fmt` refuses text that does not parse; so does the editor
        if formatted == source:
            return []
        end = types.Position(line=len(source.split("\n")), character=0)
        whole = types.Range(start=types.Position(line=0, character=0), end=end)
        return [types.TextEdit(range=whole, new_text=formatted)]

    return server


def serve(debounce: float = DEBOUNCE_S) -> None:
    """Run the server over stdin and stdout until the client says exit."""
    make_server(debounce).start_io()
