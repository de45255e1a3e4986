"""Inference demos: sampling text from a next_char model, tagging a sentence."""

from __future__ import annotations

import numpy as np

from specc.backend.graph import Network
from specc.data.spelling import spell
from specc.data.vocab import Vocab
from specc.errors import OptionError
from specc.ir.ops import Spell, spelling_feed
from specc.train.metrics import log_softmax


def _sample(rng: np.random.Generator, p: np.ndarray) -> int:
    """``rng.choice(len(p), p=p)`` without its argument checks: the same arithmetic
    and the same draw from ``rng``, so the same index, several times faster."""
    cdf = p.cumsum()
    cdf /= cdf[-1]
    return int(cdf.searchsorted(rng.random(), side="right"))


def encode_prime(vocab: Vocab, prime: str) -> np.ndarray:
    unknown = sorted({c for c in prime if c not in vocab})
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:8])
        raise OptionError(
            f"the prime text has character(s) the model never saw in training: {shown}"
        )
    return vocab.encode(list(prime))


def generate(
    net: Network,
    vocab: Vocab,
    prime: str = "",
    n: int = 200,
    temperature: float = 1.0,
    seed: int = 0,
    window: int = 64,
) -> str:
    """Sample `n` characters after `prime`.

    The model is stateless between calls and was trained on windows that
    start from h_0 = 0, so each character is predicted from the last
    `window` characters, the same context it saw in training.
    """
    if temperature <= 0:
        raise OptionError(f"temperature must be greater than 0, got {temperature:g}")
    rng = np.random.default_rng(seed)
    context = list(encode_prime(vocab, prime))
    if not context:
        context = [vocab.index("\n")] if "\n" in vocab else [0]
    out: list[int] = []
    for _ in range(n):
        ids = np.asarray(context[-window:], dtype=np.int64)[None, :]
        logits = net.scores({net.model.inputs[0].name: ids})[0, -1].astype(np.float64) / temperature
        p = np.exp(log_softmax(logits))
        nxt = _sample(rng, p / p.sum())
        context.append(nxt)
        out.append(nxt)
    return "".join(vocab.decode(out))


def tag_words(
    net: Network,
    words: Vocab,
    labels: Vocab,
    tokens: list[str],
    top: int = 3,
    chars: Vocab | None = None,
) -> list[tuple[str, list[tuple[str, float]]]]:
    """Each word with its `top` most likely tags and their probabilities. A model that
    spells its words reads each word's letters with ``chars``, new words included."""
    if not tokens:
        raise OptionError("nothing to tag: give a sentence of one or more words")
    name = net.model.inputs[0].name
    inputs = {name: words.encode(tokens)[None, :]}
    spells = [n for n in net.model.nodes if isinstance(n, Spell)]
    if spells:
        if chars is None:
            raise OptionError(
                f"model '{net.model.name}' spells its words, but no character table was given"
            )
        inputs[spelling_feed(name)] = spell(tokens, chars, spells[0].nfd)[None]
    probs = np.exp(log_softmax(net.scores(inputs)[0].astype(np.float64)))
    result = []
    for word, row in zip(tokens, probs, strict=True):
        best = np.argsort(-row)[:top]
        result.append((word, [(labels.tokens[i], float(row[i])) for i in best]))
    return result
