"""Inference demos: sampling text from a next_char model, tagging a sentence."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from specc.backend.graph import Network
from specc.data.spelling import spell
from specc.data.vocab import Vocab
from specc.errors import OptionError
from specc.ir.ops import Spell, spelling_feed
from specc.ir.spec import Model
from specc.train.metrics import log_softmax


def encode_prime(vocab: Vocab, prime: str) -> np.ndarray:
    unknown = sorted({c for c in prime if c not in vocab})
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:8])
        raise OptionError(
            f"the prime text has character(s) the model never saw in training: {shown}"
        )
    return vocab.encode(list(prime))


#: How `generate` feeds the model: one character at a time carrying every recurrent
#: layer's state, or the last `window` characters from zero state for each one;
#: `auto` steps every model that can be stepped.
CONTEXTS = ("auto", "step", "window")


def default_context(model: Model) -> str:
    """How a model samples unless told: stepped, whenever its layers allow it. For a
    model trained on windows from zero state too: read as one carried stream, such a
    model scores better held-out bits per character than window by window
    (benchmarks/bench_carry.py: 1.899 against 1.966 for specs/char_lstm.spec after
    two minutes' training, 2.141 against 2.189 for char_rnn.spec after 40 s), and
    each character costs one step instead of `seq_len`."""
    return "step" if can_step(model) else "window"


def can_step(model: Model) -> bool:
    """Whether every recurrent layer runs forward in time, so the model can be stepped."""
    return not any(n.recurrent and getattr(n, "reverse", False) for n in model.nodes)


def generate(
    net: Network,
    vocab: Vocab,
    prime: str = "",
    n: int = 200,
    temperature: float = 1.0,
    seed: int = 0,
    window: int = 64,
    context: str = "auto",
) -> str:
    """Sample `n` characters after `prime`.

    ``context="step"`` runs the prime once, then feeds each sampled character
    alone, carrying every recurrent layer's state (see `Network.carrying`): the
    whole text so far is the context, at the cost of one step per character.
    ``context="window"`` predicts each character from the last `window`
    characters starting from zero state, the context a model trained with
    ``state = window`` saw in training, at the cost of `window` steps each.
    ``context="auto"`` steps every model whose layers allow it (see
    `default_context`).
    """
    if temperature <= 0:
        raise OptionError(f"temperature must be greater than 0, got {temperature:g}")
    if context not in CONTEXTS:
        raise OptionError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    if context == "auto":
        context = default_context(net.model)
    rng = np.random.default_rng(seed)
    ids = list(encode_prime(vocab, prime))
    if not ids:
        ids = [vocab.index("\n")] if "\n" in vocab else [0]
    if context == "step":
        return "".join(vocab.decode(_stepped(net, ids, n, temperature, rng)))
    return "".join(vocab.decode(_windowed(net, ids, n, temperature, rng, window)))


def _stepped(
    net: Network, prime: list[int], n: int, temperature: float, rng: np.random.Generator
) -> list[int]:
    """`n` ids sampled one step at a time after the prime, state carried throughout
    (`Network.stepper`: on the numpy backend, small step functions per node, or the
    whole model as one compiled chain)."""
    stepper = net.stepper(batch=1)
    scores, draw = stepper.scores, Draws(rng, temperature)
    one = np.zeros(1, dtype=np.int64)
    for i in prime:
        one[0] = i
        logits = scores(one)[0]
    out: list[int] = []
    keep = out.append
    for _ in range(n - 1):
        one[0] = nxt = draw(logits)
        keep(nxt)
        logits = scores(one)[0]
    if n > 0:
        keep(draw(logits))
    return out


#: How many noise values `Draws` draws in its first block, and at most in one: the
#: blocks double from one to the other, the same sizes whatever the text's length,
#: so a shorter text is the start of a longer one from the same seed.
FIRST_BLOCK, LARGEST_BLOCK = 1 << 12, 1 << 16


class Draws:
    """Indices drawn from softmax(logits / temperature), one a call, in float64: the
    index of the largest ``logits + temperature·G``, with G standard Gumbel noise
    (``-log`` of exponential draws). That is an exact draw from the softmax (the
    Gumbel-max trick) that needs no exponentials, sum or search per character, and
    the noise comes from the generator in blocks, so a character costs one add and
    one argmax. Every backend and both contexts of `generate` draw here, so the same
    seed and scores give the same text."""

    def __init__(self, rng: np.random.Generator, temperature: float) -> None:
        self._rng, self._temperature = rng, temperature
        self._size = FIRST_BLOCK
        self._rows: Iterator[np.ndarray] = iter(())

    def __call__(self, logits: np.ndarray) -> int:
        try:
            row = next(self._rows)
        except StopIteration:
            row = self._refill(logits.shape[-1])
        np.add(logits, row, out=row)
        return int(row.argmax())

    def _refill(self, classes: int) -> np.ndarray:
        noise = self._rng.standard_exponential((max(1, self._size // classes), classes))
        np.log(noise, out=noise)
        noise *= -self._temperature
        self._size = min(2 * self._size, LARGEST_BLOCK)
        self._rows = iter(noise)
        return next(self._rows)


def _windowed(
    net: Network,
    context: list[int],
    n: int,
    temperature: float,
    rng: np.random.Generator,
    window: int,
) -> list[int]:
    """`n` ids, each predicted from the last `window` ids from zero state."""
    out: list[int] = []
    draw = Draws(rng, temperature)
    for _ in range(n):
        ids = np.asarray(context[-window:], dtype=np.int64)[None, :]
        nxt = draw(net.scores({net.model.inputs[0].name: ids})[0, -1])
        context.append(nxt)
        out.append(nxt)
    return out


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
