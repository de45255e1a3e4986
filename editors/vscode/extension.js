// Starts `specc lsp` for .spec files. Plain JavaScript, so the folder needs no
// build step: `npm install` fetches the protocol client, `npx @vscode/vsce package`
// makes the .vsix.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate() {
  const config = vscode.workspace.getConfiguration("specc");
  const [command, ...args] = config.get("server.command", ["specc", "lsp"]);
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient(
    "specc",
    "specc language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "specc" }, { scheme: "untitled", language: "specc" }] },
  );
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
