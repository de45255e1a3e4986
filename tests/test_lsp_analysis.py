"""The front end's no-raise entry for editors (`specc.frontend.analysis`) says what
`specc check` says: the same diagnostics, with only missing data files moved to
warnings, for the example specs and for mutants of the fuzz suite."""

from __future__ import annotations

import random

import pytest

import specc
from specc.errors import SpecError
from specc.frontend.analysis import analyse_text, format_text

from helpers import SPECS
from mutants import CHARS, MUTATIONS, VOCAB, apply_mutation


def _check(text: str) -> list:
    """The diagnostics `specc check` prints for `text` in the specs folder."""
    try:
        specc.loads(text, path="x.spec", base_dir=SPECS)
    except SpecError as err:
        return [(d.message, d.span, d.help) for d in err.diagnostics]
    return []


def _agrees(text: str) -> None:
    got = analyse_text(text, "x.spec", SPECS)
    both = [(d.message, d.span, d.help) for d in got.errors + got.warnings]
    assert sorted(both, key=repr) == sorted(_check(text), key=repr)
    assert all(d.message.startswith("data file ") for d in got.warnings)
    assert (got.compiled is not None) == (not got.errors)


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.spec")), ids=lambda p: p.name)
def test_example_specs_have_no_diagnostics(path) -> None:
    got = analyse_text(path.read_text(encoding="utf-8"), str(path), SPECS)
    assert (got.errors, got.warnings) == ([], [])
    assert got.compiled is not None and got.surface is not None


def test_a_missing_data_file_is_a_warning_and_the_ir_is_still_there() -> None:
    text = (SPECS / "tagger.spec").read_text(encoding="utf-8").replace("sample.conllu", "no.conllu")
    got = analyse_text(text, "x.spec", SPECS)
    assert got.errors == []
    assert [d.message for d in got.warnings] == ["data file 'data/no.conllu' not found"]
    assert got.compiled is not None  # hover and definitions keep working
    _agrees(text)


def test_mutants_get_the_diagnostics_of_specc_check() -> None:
    rng = random.Random(5)
    seeds = [p.read_text(encoding="utf-8") for p in sorted(SPECS.glob("*.spec"))]
    for _ in range(60):
        text = rng.choice(seeds)
        for _ in range(rng.randint(1, 4)):
            text = apply_mutation(
                text,
                rng.choice(MUTATIONS),
                rng.randrange(1 << 30),
                rng.randrange(1 << 30),
                rng.choice(VOCAB),
                rng.choice(CHARS),
            )
        _agrees(text)


def test_format_text_is_the_canonical_layout_and_refuses_what_does_not_parse() -> None:
    text = format_text((SPECS / "char_rnn.spec").read_text(encoding="utf-8"))
    assert format_text(text) == text
    assert format_text(text.replace("\n", "\r\n")) == text  # as `specc fmt` reads it
    with pytest.raises(SpecError):
        format_text("model m {")
