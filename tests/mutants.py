"""The fuzz suite's mutations of spec text, shared by the tests that feed mutants to
the front end (test_fuzz.py) and to the language server (test_lsp.py).

Each mutation is deterministic given its arguments, so a failing mutant can be
rebuilt from the seed and the numbers that made it.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|->|-?[0-9][\w.+-]*|\w+|\s+|.', re.S)

#: Words a mutation may insert: every kind of token, plus values at the edges.
VOCAB = [
    *("model", "task", "input", "output", "true", "false"),
    *("->", "=", ":", "(", ")", "[", "]", "{", "}", ",", "#", '"', "\\", "\n", " "),
    *("embedding", "one_hot", "rnn", "batchnorm", "leaky_relu", "relu", "tanh", "sigmoid"),
    *("dense", "softmax", "dropout", "concat", "add", "identity"),
    *("tokens", "sequence", "vector", "vocab", "labels", "hidden", "units", "dim", "x"),
    *("text", "tagged", "conllu", "adding", "copy", "sgd", "adam", "adagrad"),
    *("next_char", "tag", "classify", "regress", "epochs", "steps", "generate"),
    *("0", "-1", "1.5", "3e-3", ".5", "-0", "1e999", "99999999999999999999999"),
    *('""', '"data/sample.conllu"', '"\\"\\\\"', '"a/b/../c"', "[1, [2]]", "f(g(h(1)))"),
    "model m { }",
    "(a, b) -> concat",
    "output y",
]

#: Characters a mutation may insert (no lone surrogates: files are written as UTF-8).
CHARS = [*'(){}[]=,:->#"\\\n\r\t x0.9e-_aZ', "é", "→", "\ufeff", "\x00", "\x0c", "😀"]

MUTATIONS = (
    "delete_token",
    "duplicate_token",
    "swap_tokens",
    "replace_token",
    "insert_token",
    "delete_char",
    "insert_char",
    "replace_char",
    "repeat_char",
    "truncate",
)


def apply_mutation(text: str, op: str, a: int, b: int, word: str, char: str) -> str:
    """One mutation, with positions taken modulo the text's length (deterministic)."""
    if op.endswith("token"):
        toks = _TOKEN.findall(text)
        if not toks:
            return text + word
        i, j = a % len(toks), b % len(toks)
        if op == "delete_token":
            del toks[i]
        elif op == "duplicate_token":
            toks.insert(i, toks[i])
        elif op == "replace_token":
            toks[i] = word
        elif op == "insert_token":
            toks.insert(i, word)
        return "".join(toks)
    if op == "swap_tokens":
        toks = _TOKEN.findall(text)
        if toks:
            i, j = a % len(toks), b % len(toks)
            toks[i], toks[j] = toks[j], toks[i]
        return "".join(toks)
    n = len(text)
    i = a % (n + 1)
    if op == "delete_char":
        return text[:i] + text[i + 1 :]
    if op == "insert_char":
        return text[:i] + char + text[i:]
    if op == "replace_char":
        return text[:i] + char + text[i + 1 :]
    if op == "repeat_char":
        return text[:i] + char * (1 + b % 400) + text[i:]
    return text[:i]  # truncate
