"""A small Language Server Protocol client for the tests: `specc lsp` in a subprocess.

It speaks the protocol as an editor does (Content-Length framed JSON-RPC over
the server's stdin and stdout), so the tests exercise the real command, the
real transport and pygls underneath, not the handlers alone. Every wait is
bounded: a server that stops answering fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import queue
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from helpers import SPECC_COMMAND, checkout_env


class ServerGone(AssertionError):
    """The server closed its output or did not answer in time."""


class LspClient:
    def __init__(self, *args: str) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - read after the server exits
        self.proc = subprocess.Popen(
            [*SPECC_COMMAND, "lsp", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=checkout_env(),
        )
        self.inbox: queue.Queue[dict | None] = queue.Queue()
        self.seen: list[dict] = []  # notifications, in the order they came
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    # ----- transport ---------------------------------------------------------

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            headers: dict[str, str] = {}
            while True:
                line = out.readline()
                if not line:
                    self.inbox.put(None)
                    return
                line = line.strip()
                if not line:
                    break
                key, _, value = line.decode("ascii").partition(":")
                headers[key.lower()] = value.strip()
            self.inbox.put(json.loads(out.read(int(headers["content-length"]))))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _next(self, deadline: float) -> dict:
        try:
            message = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise ServerGone("the server did not answer in time") from None
        if message is None:
            raise ServerGone("the server closed its output")
        if "method" in message and "id" in message:  # a request from the server
            self.send({"id": message["id"], "result": None})
        elif "method" in message:
            self.seen.append(message)
        return message

    # ----- protocol ----------------------------------------------------------

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 30) -> Any:
        self.next_id += 1
        wanted = self.next_id
        self.send({"id": wanted, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline)
            if message.get("id") == wanted and "method" not in message:
                assert "error" not in message, message["error"]
                return message.get("result")

    def diagnostics(self, uri: str, version: int | None = None, timeout: float = 30) -> list:
        """The diagnostics published for `uri` (for `version`, when given)."""
        deadline = time.monotonic() + timeout
        while True:
            for message in reversed(self.seen):
                if message["method"] != "textDocument/publishDiagnostics":
                    continue
                params = message["params"]
                if params["uri"] == uri and version in (None, params.get("version")):
                    self.seen.remove(message)
                    return params["diagnostics"]
            self._next(deadline)

    def initialize(self, root: Path | None = None) -> dict:
        result = self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root.as_uri() if root else None,
                "capabilities": {},
            },
        )
        self.notify("initialized", {})
        return result

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "specc", "version": version, "text": text}},
        )

    def change(self, uri: str, text: str, version: int) -> None:
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
        )

    def at(self, method: str, uri: str, line: int, character: int, **extra: Any) -> Any:
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        return self.request(method, {**params, **extra})

    def close(self, timeout: float = 20) -> int:
        """shutdown, exit, and the server's exit status."""
        self.request("shutdown", None)
        self.notify("exit", None)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def errors_logged(self) -> str:
        """What the server wrote on stderr that looks like a failure."""
        self.stderr.seek(0)
        text = self.stderr.read().decode("utf-8", "replace")
        return text if ("Traceback" in text or "ERROR" in text) else ""
