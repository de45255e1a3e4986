"""Ops that turn token ids into vectors, and `spell`, which writes words as letters."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from specc.ir.ops.base import NodeBase, Shape, ShapeError, Size

#: The word options of an embedding, by default: words seen once are `<unk>`.
DEFAULT_MIN_COUNT = 2


def spelling_feed(input_name: str) -> str:
    """The key of a network's `inputs` that holds the letters (B, T, C) of the words of
    the tokens input ``input_name``: what `spell` returns."""
    return f"{input_name}:chars"


class Embedding(NodeBase):
    op: Literal["embedding"] = "embedding"
    dim: Size
    #: Words seen fewer times in training read `<unk>` (None: 2, or 1 with `unk`).
    min_count: Annotated[int, Field(gt=0)] | None = None
    #: While training, a word seen once reads `<unk>` with this probability, so the
    #: `<unk>` row learns what a new word looks like and the word's own row still trains.
    unk: float = Field(0.0, ge=0, lt=1)
    summary: ClassVar[str] = "looks up a learned vector for each token id"

    def infer(self, ins):
        x = ins[0]
        if not x.ids:
            raise ShapeError(
                f"embedding expects token ids but its input is float features {x.text()}",
                "embedding reads a `tokens` input; use dense(units=...) on float features",
            )
        if x.index != "vocab" and self.word_options:
            raise ShapeError(
                f"min_count and unk apply to an embedding of words, but this one looks up "
                f"{x.index} {x.text()}",
                "move min_count/unk to the embedding of the word ids",
            )
        return Shape(dims=(*x.dims, self.dim))

    @property
    def word_options(self) -> bool:
        """Whether the spec set min_count or unk (they shape the word table)."""
        return self.min_count is not None or self.unk > 0

    @property
    def words_min_count(self) -> int:
        """Words seen fewer times in training are left out of the table."""
        if self.min_count is not None:
            return self.min_count
        return 1 if self.unk > 0 else DEFAULT_MIN_COUNT

    def param_shapes(self, ins):
        return {"E": (ins[0].index, self.dim)}

    def init_params(self, shapes, rng, dtype):
        # N(0, 1), as torch.nn.Embedding: rows start at unit scale per feature.
        return {"E": rng.standard_normal(shapes["E"]).astype(dtype)}

    def equation(self):
        return "y = E[x]"


class OneHot(NodeBase):
    op: Literal["one_hot"] = "one_hot"
    summary: ClassVar[str] = "encodes each token id as a vector of zeros with a one"

    def infer(self, ins):
        x = ins[0]
        if not x.ids:
            raise ShapeError(
                f"one_hot expects token ids but its input is float features {x.text()}"
            )
        return Shape(dims=(*x.dims, x.index))

    def equation(self):
        return "y = onehot(x)"


def one_hot_width(node: NodeBase) -> int | str:
    """How many ids a one_hot node encodes: its output's last axis (`vocab` or `chars`,
    bound where the model's sizes are)."""
    return node.shape.dims[-1] if node.shape is not None else "vocab"


class Spell(NodeBase):
    """The letters of each word of a `tokens` input, read from the data's own words.

    A word the table does not know (`<unk>`) keeps its spelling, which is the
    point: a tagger reads a new word's letters. Its ids index `chars`, the
    characters of the training words (with `<pad>` 0 and `<unk>`); C is the
    longest word of the batch, shorter words are padded with 0.
    """

    op: Literal["spell"] = "spell"
    #: Decompose each character (Unicode NFD): a Hangul syllable becomes its jamo,
    #: an accented letter its letter and accent.
    nfd: bool = False
    summary: ClassVar[str] = "the character ids of each word, as the data spells it"

    def infer(self, ins):
        x = ins[0]
        if not x.ids or x.dims != ("B", "T") or x.index != "vocab":
            raise ShapeError(
                f"spell reads the word ids of a `tokens` input (B, T), but its input is "
                f"{'ids ' if x.ids else 'floats '}{x.text()}",
                "write `c = words -> spell -> embedding(dim=...)` on the model's tokens input",
            )
        return Shape(dims=("B", "T", "C"), ids=True, index="chars")

    def equation(self):
        return "y_{t,c} = id of letter c of word t"
