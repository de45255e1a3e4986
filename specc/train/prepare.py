"""A task's data, ready to train on: split, vocabularies, sizes and batches.

Batches are a pure function of (seed, epoch, index), never of what ran
before, so a run resumed at step k sees exactly the batches an uninterrupted
run would have seen. A next_char task with ``state = carry`` reads its
windows in order instead of shuffled (`Prepared.carried`): batch k+1 continues
batch k row by row, and the loop carries each row's state from one to the next.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from specc.data.conllu import load_conllu
from specc.data.spelling import char_vocab, spell
from specc.data.synthetic import adding_problem, copy_memory, parity
from specc.data.tagged import load_tagged
from specc.data.text import builtin_text, load_text
from specc.data.vocab import WORD_SPECIALS, Vocab
from specc.errors import DataError, SpecError
from specc.ir.ops import Embedding, Spell, spelling_feed
from specc.ir.ops.lookup import DEFAULT_MIN_COUNT
from specc.ir.spec import Model, Task

#: Evaluation looks at no more than this many target positions, to stay quick.
MAX_EVAL_TOKENS = 250_000


@dataclass
class Batch:
    inputs: np.ndarray  # token ids (B, T) or floats (B, T, N)
    targets: np.ndarray
    mask: np.ndarray | None = None  # (B, T) 1.0 real / 0.0 padding
    tokens: int = 0  # real target positions, for weighting means
    unseen: np.ndarray | None = None  # (B, T) held-out words absent from training
    chars: np.ndarray | None = None  # (B, T, C) each word's letters, for `spell`

    def feeds(self, name: str) -> dict[str, np.ndarray]:
        """What a network's `inputs` take for this batch, its tokens input being ``name``."""
        if self.chars is None:
            return {name: self.inputs}
        return {name: self.inputs, spelling_feed(name): self.chars}


@dataclass
class Prepared:
    """Everything the loop and the demos need from a task's data."""

    kind: str
    sizes: dict[str, int]
    steps_per_epoch: int
    make_batch: Callable[[int, int], Batch]  # (epoch, index) -> batch
    val: list[Batch]
    test: list[Batch] = field(default_factory=list)
    vocab: Vocab | None = None
    labels: Vocab | None = None
    chars: Vocab | None = None  # the letters of words, when the model spells them
    val_text: str = ""  # next_char: held-out text, for priming demos
    train_text: str = ""
    val_sentences: list[list[tuple[str, str]]] = field(default_factory=list)
    # each training word's most frequent training tag: the per-word baseline,
    # and the set of words that count as seen
    word_tags: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # things the user should know
    #: next_char with state = carry: training windows in order, each row one stream
    #: continued by the same row of the next batch (from zero state each epoch), and
    #: `val` likewise, to be evaluated in order carrying state
    carried: bool = False

    def batch(self, epoch: int, index: int) -> Batch:
        return self.make_batch(epoch, index)

    def train_batches(self, epoch: int = 0):
        """One epoch of training batches, in that epoch's order."""
        for i in range(self.steps_per_epoch):
            yield self.make_batch(epoch, i)


@functools.lru_cache(maxsize=8)
def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order an epoch visits its n batches (or rows) in: a pure function of
    (seed, epoch), drawn once per epoch rather than once per step."""
    order = np.random.default_rng([seed, epoch, 7]).permutation(n)
    order.flags.writeable = False
    return order


def _resolve(base_dir: Path | None, rel: str) -> Path:
    p = Path(rel)
    return p if p.is_absolute() or base_dir is None else base_dir / p


def prepare(task: Task, base_dir: Path | None, model: Model | None = None) -> Prepared:
    """Read and split the task's data; build vocabularies from the training part.

    ``model`` (the task's model) says how to read words: whether it spells them
    (`spell`) and which words its word embedding knows (`min_count`, `unk`)."""
    src = task.data
    if src.source == "text":
        return _next_char(task, base_dir)
    if src.source in ("tagged", "conllu"):
        return _tagging(task, base_dir, WordReading.of(model))
    if src.source == "copy":
        return _copy(task)
    if src.source == "adding":
        return _adding(task)
    if src.source == "parity":
        return _parity(task)
    raise SpecError(f"data source {src.source} is not supported for {task.kind} tasks")


# ----- next_char -------------------------------------------------------------------


def _next_char(task: Task, base_dir: Path | None) -> Prepared:
    src = task.data
    if src.builtin is not None:
        try:
            text = builtin_text(src.builtin)
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        origin = f"builtin text '{src.builtin}'"
    else:
        path = _resolve(base_dir, src.path)
        text = load_text(path)
        origin = str(path)
    cut = int(len(text) * task.split)
    train_text, val_text = text[:cut], text[cut:]
    need = task.batch * (task.seq_len + 1)
    if len(train_text) < need:
        raise DataError(
            origin,
            f"the training part has {len(train_text)} characters, fewer than one batch "
            f"needs (batch {task.batch} x (seq_len {task.seq_len} + 1) = {need}); "
            "use a longer text or a smaller batch or seq_len",
        )
    vocab = Vocab.build(train_text)
    unseen = sorted({c for c in val_text if c not in vocab})
    notes = []
    if unseen:
        shown = "".join(unseen[:10])
        notes.append(
            f"{len(unseen)} character(s) of the held-out text never occur in training "
            f"({shown!r}...); they are left out of evaluation"
        )
        val_text_known = "".join(c for c in val_text if c in vocab)
    else:
        val_text_known = val_text
    ids = vocab.encode(train_text)
    length = len(ids) // task.batch
    streams = ids[: length * task.batch].reshape(task.batch, length)
    spe = (length - 1) // task.seq_len
    seq, seed = task.seq_len, task.seed
    carried = task.state == "carry"

    def make(epoch: int, index: int) -> Batch:
        # carried: in order, so each row continues where the same row of the last batch ended
        start = (index if carried else int(_epoch_order(seed, epoch, spe)[index])) * seq
        x = streams[:, start : start + seq]
        y = streams[:, start + 1 : start + seq + 1]
        return Batch(x, y, None, x.size)

    return Prepared(
        kind="next_char",
        sizes={"vocab": len(vocab)},
        steps_per_epoch=spe,
        make_batch=make,
        val=_char_windows(vocab.encode(val_text_known), task.batch, seq),
        vocab=vocab,
        val_text=val_text_known,
        train_text=train_text,
        notes=notes,
        carried=carried,
    )


def _char_windows(ids: np.ndarray, batch: int, seq: int) -> list[Batch]:
    rows = max(1, min(batch, (len(ids) - 1) // (seq + 1)))
    length = len(ids) // rows
    if length < 2:
        return []
    streams = ids[: length * rows].reshape(rows, length)
    out, tokens = [], 0
    for start in range(0, length - 1, seq):
        stop = min(start + seq, length - 1)
        x, y = streams[:, start:stop], streams[:, start + 1 : stop + 1]
        out.append(Batch(x, y, None, x.size))
        tokens += x.size
        if tokens >= MAX_EVAL_TOKENS:
            break
    return out


# ----- tagging ---------------------------------------------------------------------


def _read_sentences(task: Task, base_dir: Path | None, rel: str) -> list[list[tuple[str, str]]]:
    path = _resolve(base_dir, rel)
    if task.data.source == "conllu":
        sentences = load_conllu(path, column=task.data.column)
    else:
        sentences = load_tagged(path)
    if not sentences:
        raise DataError(path, "no sentences found")
    return sentences


@dataclass(frozen=True)
class WordReading:
    """How a tagging model reads its words, from its `spell` and word `embedding` steps."""

    spelled: bool = False
    nfd: bool = False
    min_count: int = DEFAULT_MIN_COUNT
    unk: float = 0.0

    @classmethod
    def of(cls, model: Model | None) -> WordReading:
        """Read off the model; the checks (`specc.frontend.passes.shapes`) made sure its
        spell steps agree, as do its embeddings with word options, all of words."""
        if model is None:
            return cls()
        spells = [n for n in model.nodes if isinstance(n, Spell)]
        words = [n for n in model.nodes if isinstance(n, Embedding) and n.word_options]
        reading = cls(spelled=bool(spells), nfd=any(n.nfd for n in spells))
        if words:
            reading = replace(reading, min_count=words[0].words_min_count, unk=words[0].unk)
        return reading


def _tagging(task: Task, base_dir: Path | None, reading: WordReading | None = None) -> Prepared:
    reading = reading or WordReading()
    src = task.data
    sentences = _read_sentences(task, base_dir, src.path)
    dev = getattr(src, "dev", None)
    test_file = getattr(src, "test", None)
    if dev:
        train, val = sentences, _read_sentences(task, base_dir, dev)
    else:
        order = np.random.default_rng([task.seed, 11]).permutation(len(sentences))
        cut = max(1, round(len(sentences) * task.split))
        if cut >= len(sentences):
            raise DataError(
                _resolve(base_dir, src.path),
                f"{len(sentences)} sentence(s) cannot be split into training and held-out "
                "parts; add sentences or give a dev= file",
            )
        train = [sentences[i] for i in sorted(order[:cut])]
        val = [sentences[i] for i in sorted(order[cut:])]
    test = _read_sentences(task, base_dir, test_file) if test_file else []
    # words seen fewer than min_count times (by default: once) are <unk> in training,
    # so <unk> is learned for new words
    train_words = [w for s in train for w, _ in s]
    words = Vocab.build(train_words, specials=WORD_SPECIALS, min_count=reading.min_count)
    labels = Vocab.build(t for s in train for _, t in s)
    word_tags = _most_frequent_tags(train, labels)
    chars = char_vocab(train_words, reading.nfd) if reading.spelled else None
    notes = []
    unseen = sorted({t for s in val + test for _, t in s if t not in labels})
    if unseen:
        notes.append(
            f"held-out tags never seen in training: {', '.join(unseen)}; "
            "those words count as errors and are left out of the loss"
        )
    lengths = np.array([len(s) for s in train])
    by_length = np.argsort(lengths, kind="stable")
    chunks = [by_length[i : i + task.batch] for i in range(0, len(train), task.batch)]

    def encode(sents: list[list[tuple[str, str]]]) -> list[_Encoded]:
        return [_encode_sentence(s, words, labels, chars, reading.nfd) for s in sents]

    encoded = encode(train)
    seed = task.seed
    rarest = _rarest(train_words, words, reading.min_count) if reading.unk > 0 else None

    def make(epoch: int, index: int) -> Batch:
        order = _epoch_order(seed, epoch, len(chunks))
        chunk = int(order[index])
        batch = _pad([encoded[i] for i in chunks[chunk]])
        if rarest is not None:
            _unk_rarest(batch, rarest, reading.unk, words.unk_id, [seed, epoch, chunk, 13])
        return batch

    def fixed(sents: list[list[tuple[str, str]]]) -> list[Batch]:
        enc = encode(sents)
        idx = np.argsort([len(s) for s in sents], kind="stable")
        out = []
        for j in range(0, len(sents), task.batch):
            rows = idx[j : j + task.batch]
            batch = _pad([enc[i] for i in rows])
            batch.unseen = _unseen_mask([sents[i] for i in rows], word_tags, batch.targets.shape)
            out.append(batch)
        return out

    sizes = {"vocab": len(words), "labels": len(labels)}
    if chars is not None:
        sizes["chars"] = len(chars)
    return Prepared(
        kind="tag",
        sizes=sizes,
        steps_per_epoch=len(chunks),
        make_batch=make,
        val=fixed(val),
        test=fixed(test) if test else [],
        vocab=words,
        labels=labels,
        chars=chars,
        val_sentences=val,
        word_tags=word_tags,
        notes=notes,
    )


def _most_frequent_tags(sentences: list[list[tuple[str, str]]], labels: Vocab) -> dict[str, str]:
    """Each word's most frequent tag in `sentences`; a tie goes to the tag that is
    more frequent overall (earlier in `labels`), so the table is deterministic."""
    counts: dict[str, Counter[str]] = {}
    for sentence in sentences:
        for word, tag in sentence:
            counts.setdefault(word, Counter())[tag] += 1
    return {word: max(tags, key=lambda t: (tags[t], -labels[t])) for word, tags in counts.items()}


def _unseen_mask(sentences, known: dict[str, str], shape: tuple[int, ...]) -> np.ndarray:
    """True at each word whose string never occurs in training. Judged by the string,
    not the id: a word seen in training may still be looked up as <unk>."""
    mask = np.zeros(shape, dtype=bool)
    for i, sentence in enumerate(sentences):
        mask[i, : len(sentence)] = [w not in known for w, _ in sentence]
    return mask


#: One sentence as ids: words (T,), tags (T,), and letters (T, C) when spelled.
_Encoded = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def _encode_sentence(
    sentence, words: Vocab, labels: Vocab, chars: Vocab | None = None, nfd: bool = False
) -> _Encoded:
    x = words.encode([w for w, _ in sentence])
    y = np.array([labels.get(t, -1) for _, t in sentence], dtype=np.int64)
    c = spell([w for w, _ in sentence], chars, nfd) if chars is not None else None
    return x, y, c


def _rarest(train_words: list[str], words: Vocab, min_count: int) -> np.ndarray:
    """Which word ids were seen exactly ``min_count`` times in training, the rarest the
    table keeps (with min_count 1: the words seen once), as a flag per id."""
    counts = np.bincount(words.encode(train_words), minlength=len(words))
    rarest = counts == min_count
    rarest[: len(WORD_SPECIALS)] = False
    return rarest


def _unk_rarest(batch: Batch, rarest: np.ndarray, p: float, unk: int | None, key) -> None:
    """Replace each occurrence of a rarest word by `<unk>` with probability ``p``,
    drawn from ``key`` (seed, epoch, batch) so a resumed run draws the same."""
    assert unk is not None, "word tables have <unk>"
    hit = rarest[batch.inputs] & (np.random.default_rng(key).random(batch.inputs.shape) < p)
    batch.inputs = np.where(hit, unk, batch.inputs)


def _pad(rows: list[_Encoded]) -> Batch:
    """Right-pad to the longest row (and the longest word); padding holds id 0 and a
    mask of 0."""
    width = max(len(x) for x, _, _ in rows)
    x = np.zeros((len(rows), width), dtype=np.int64)
    y = np.full((len(rows), width), -1, dtype=np.int64)
    mask = np.zeros((len(rows), width))
    for i, (xi, yi, _) in enumerate(rows):
        x[i, : len(xi)] = xi
        y[i, : len(yi)] = yi
        mask[i, : len(xi)] = 1.0
    chars = None
    if rows[0][2] is not None:
        longest = max(c.shape[1] for _, _, c in rows)  # type: ignore[union-attr]
        chars = np.zeros((len(rows), width, longest), dtype=np.int64)
        for i, (_, _, ci) in enumerate(rows):
            chars[i, : ci.shape[0], : ci.shape[1]] = ci  # type: ignore[union-attr]
    return Batch(x, y, mask, int(mask.sum()), chars=chars)


# ----- synthetic ---------------------------------------------------------------------


def _split_rows(n: int, split: float) -> int:
    cut = round(n * split)
    if cut < 1 or cut >= n:
        raise SpecError(
            f"{n} samples cannot be split at {split} into training and held-out parts; "
            "raise samples"
        )
    return cut


def _row_batches(x: np.ndarray, y: np.ndarray, task: Task):
    n = len(x)
    spe = -(-n // task.batch)
    seed = task.seed

    def make(epoch: int, index: int) -> Batch:
        order = _epoch_order(seed, epoch, n)
        rows = np.sort(order[index * task.batch : (index + 1) * task.batch])
        return Batch(x[rows], y[rows], None, int(y[rows].size))

    return spe, make


def _fixed_rows(x: np.ndarray, y: np.ndarray, batch: int) -> list[Batch]:
    out, tokens = [], 0
    for i in range(0, len(x), batch):
        out.append(Batch(x[i : i + batch], y[i : i + batch], None, int(y[i : i + batch].size)))
        tokens += out[-1].tokens
        if tokens >= MAX_EVAL_TOKENS:
            break
    return out


def _split_samples(task: Task, x: np.ndarray, y: np.ndarray, kind: str, **fields) -> Prepared:
    """A synthetic task's samples: the first part trains in shuffled batches, the
    rest is held out; ``fields`` are the task's sizes and vocabularies."""
    cut = _split_rows(len(x), task.split)
    spe, make = _row_batches(x[:cut], y[:cut], task)
    val = _fixed_rows(x[cut:], y[cut:], task.batch)
    return Prepared(kind=kind, steps_per_epoch=spe, make_batch=make, val=val, **fields)


def _copy(task: Task) -> Prepared:
    src = task.data
    x, y = copy_memory(src.length, src.symbols, src.samples, task.seed)
    symbols = ["_", *[str(i) for i in range(1, src.symbols + 1)], ":"]
    return _split_samples(
        task,
        x,
        y,
        "tag",
        sizes={"vocab": src.symbols + 2, "labels": src.symbols + 1},
        vocab=Vocab(symbols),
        labels=Vocab(symbols[:-1]),
    )


def _adding(task: Task) -> Prepared:
    x, y = adding_problem(task.data.length, task.data.samples, task.seed)
    return _split_samples(task, x, y, "regress", sizes={})


def _parity(task: Task) -> Prepared:
    x, y = parity(task.data.length, task.data.samples, task.seed)
    return _split_samples(
        task,
        x,
        y,
        "classify",
        sizes={"vocab": 2, "labels": 2},
        vocab=Vocab(["0", "1"]),
        labels=Vocab(["even", "odd"]),
    )


# ----- fitting the model to the data --------------------------------------------------


def check_output_fits(model: Model, prepared: Prepared) -> None:
    """A model that fixed its output size by hand must agree with the data."""
    out = model.shape_of(model.outputs[0])
    want = {"next_char": "vocab", "tag": "labels", "classify": "labels"}.get(prepared.kind)
    if want is None:
        return
    have = out.dims[-1]
    size = prepared.sizes.get(want)
    if isinstance(have, int) and size is not None and have != size:
        what = "characters" if want == "vocab" else "labels"
        raise SpecError(
            f"model '{model.name}' outputs {have} classes but the data has {size} {what}; "
            f"write dense(units={want}) so the size follows the data"
        )


def task_sizes(program, task: str | Task) -> dict[str, int]:
    """The sizes (`vocab`, `labels`, `chars`) a task's data binds, by reading the data."""
    t = program.task(task) if isinstance(task, str) else task
    return prepare(t, program.base_dir, program.model(t.model)).sizes
