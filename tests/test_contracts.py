"""The published JSON contracts: explain JSON, metrics file, checkpoint documents.

Each document a real run or explain writes must validate through its model
and come back out unchanged (so the model describes exactly what is
written), the schemas in docs/schemas/ must be what the models generate now,
and a checkpoint whose JSON was tampered with is refused in one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specc
import specc.schemas as schemas
from specc.cli.main import main
from specc.contract import Contract, Omittable
from specc.errors import CheckpointError
from specc.explain.schema import ExplainDoc
from specc.train.checkpoint import load_checkpoint, save_checkpoint
from specc.train.checkpoint_docs import DOCUMENTS, CheckpointDocs
from specc.train.loop import run_task
from specc.train.records import CheckpointMetrics, RunMetrics

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

# A tagger with held-out and test splits, so every key of the metrics file appears.
TAGGER = """
model tagger {
    input  words : tokens
    output tags  = words -> embedding(dim=8) -> rnn(hidden=8) -> batchnorm
        -> dense(units=labels) -> softmax
}
task tiny_tags : tag {
    model = tagger
    data  = conllu("sample.conllu", dev="sample.conllu", test="sample.conllu")
    batch = 4
    steps = 3
}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny training run: its result, checkpoint and metrics file."""
    tmp = tmp_path_factory.mktemp("contracts")
    shutil.copy(SPECS / "data" / "sample.conllu", tmp / "sample.conllu")
    (tmp / "t.spec").write_text(TAGGER)
    return run_task(specc.load(tmp / "t.spec"), out_dir=tmp / "out")


def _docs(path: Path) -> dict[str, bytes]:
    """The JSON documents of a checkpoint, as the bytes stored."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k].tobytes() for k in DOCUMENTS if k in data.files}


def _rewrite(src: Path, dst: Path, key: str, change) -> Path:
    """A copy of checkpoint `src` whose JSON document `key` went through `change`."""
    data = dict(np.load(src, allow_pickle=False))
    doc = json.loads(data[key].tobytes())
    new = change(doc)  # changes `doc` in place, or returns a replacement
    doc = doc if new is None else new
    data[key] = np.frombuffer(json.dumps(doc).encode(), np.uint8)
    np.savez(dst, **data)
    return dst


# ----- round trips ------------------------------------------------------------


def test_metrics_file_round_trips_through_its_model(run):
    text = run.metrics_path.read_text(encoding="utf-8")
    record = RunMetrics.model_validate_json(text)
    assert record.test is not None and record.val.per_tag  # every key was exercised
    assert record.to_json() == text
    assert record.document() == json.loads(text)
    # what run_task returns is the same record, timed a moment later
    assert {**record.document(), "seconds": run.metrics["seconds"]} == run.metrics


def test_checkpoint_documents_round_trip_through_their_model(run, tmp_path):
    stored = _docs(run.checkpoint)
    # token data: __vocab__ and __labels__ too (__chars__ only where a model spells)
    assert set(stored) == set(DOCUMENTS) - {"__chars__"}
    docs = CheckpointDocs.model_validate_json(
        json.dumps({k: json.loads(v) for k, v in stored.items()})
    )
    assert {k: json.dumps(v).encode() for k, v in docs.document().items()} == stored
    assert docs.metrics.history and docs.train.rng is not None
    # load and save again: the same documents, byte for byte
    again = tmp_path / "again.npz"
    save_checkpoint(again, load_checkpoint(run.checkpoint))
    assert _docs(again) == stored


def test_explain_json_round_trips_through_its_model(run, capsys):
    for target in [*SPECS.glob("*.spec"), run.checkpoint]:
        assert main(["explain", str(target), "--format", "json"]) == 0
        out = capsys.readouterr().out
        doc = ExplainDoc.model_validate_json(out)
        assert json.dumps(doc.document(), indent=2, ensure_ascii=False) + "\n" == out, target
    assert doc.checkpoint is not None and doc.checkpoint.metrics.history


def test_a_partial_metrics_record_keeps_just_its_keys():
    assert CheckpointMetrics.model_validate({"val": {"loss": 1.5}}).document() == {
        "val": {"loss": 1.5}
    }


def test_contracts_refuse_unknown_keys_wrong_types_and_nulls_where_absent_is_meant():
    good = {"task": "t", "kind": "tag", "steps": 1, "seconds": 0.5, "train": {}, "val": {}}
    RunMetrics.model_validate(good)
    for bad in (
        {**good, "extra": 1},
        {**good, "steps": "1"},
        {**good, "kind": "poetry"},
        {**good, "val": {"loss": "low"}},
        {k: v for k, v in good.items() if k != "seconds"},
    ):
        with pytest.raises(ValueError):
            RunMetrics.model_validate(bad)
    assert "test" not in RunMetrics.model_validate({**good, "test": None}).document()


# ----- published schemas ----------------------------------------------------------


def test_published_schemas_are_what_the_models_generate():
    generated = schemas.schema_texts()
    assert set(generated) == {p.name for p in schemas.SCHEMA_DIR.glob("*.schema.json")}
    for name, text in generated.items():
        published = (schemas.SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert published == text, (
            f"docs/schemas/{name} is out of date; regenerate it: python -m specc.schemas"
        )


def test_the_schema_check_notices_a_changed_model(tmp_path, monkeypatch):
    schemas.write(tmp_path)
    assert schemas.stale(tmp_path) == []
    assert schemas.main(["--check", "--out", str(tmp_path)]) == 0

    class Grown(Contract):
        task: str
        note: Omittable[str] = None

    monkeypatch.setitem(schemas.CONTRACTS, "metrics.schema.json", Grown)
    assert schemas.stale(tmp_path) == ["metrics.schema.json"]
    assert schemas.main(["--check", "--out", str(tmp_path)]) == 1
    optional = json.loads(schemas.schema_texts()["metrics.schema.json"])
    assert optional["required"] == ["task"] and optional["properties"]["note"] == {
        "title": "Note",
        "type": "string",
    }


# ----- tampered checkpoints ---------------------------------------------------------


def _step_to_text(doc):
    doc["step"] = "seven"


def _t_negative(doc):
    doc["optimizer"]["t"] = -1


def _loss_to_text(doc):
    doc["val"]["loss"] = "low"


def _history_step_to_float(doc):
    doc["history"][0]["step"] = 1.5


def _spec_path_to_number(doc):
    doc["spec_path"] = 5


def _vocab_of_numbers(doc):
    return [1, 2, 3]


def _vocab_twice(doc):
    return doc + doc[:1]


@pytest.mark.parametrize(
    ("key", "change", "words"),
    [
        ("__train__", _step_to_text, "training record '__train__' is damaged (step: "),
        ("__train__", _t_negative, "training record '__train__' is damaged (optimizer.t: "),
        ("__metrics__", _loss_to_text, "'__metrics__' is damaged (val.loss: "),
        ("__metrics__", _history_step_to_float, "'__metrics__' is damaged (history.0.step: "),
        ("__meta__", _spec_path_to_number, "'__meta__' is damaged (spec_path: "),
        ("__vocab__", _vocab_of_numbers, "vocabulary is damaged (0: "),
        ("__labels__", _vocab_twice, "vocabulary is damaged ("),
    ],
)
def test_tampered_document_is_refused_in_one_line_naming_the_file(
    run, tmp_path, key, change, words
):
    bad = _rewrite(run.checkpoint, tmp_path / "bad.npz", key, change)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    text = err.value.render()
    assert text.startswith(f"{bad}: error: ") and words in text, text
    assert "\n" not in text


def test_tampered_checkpoint_is_refused_by_the_cli_in_one_line(run, tmp_path):
    bad = _rewrite(run.checkpoint, tmp_path / "bad.npz", "__train__", _step_to_text)
    res = subprocess.run(
        [sys.executable, "-m", "specc.cli", "explain", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f"{bad}: error: training record '__train__' is damaged "
        "(step: Input should be a valid integer)"
    )


def test_newer_and_foreign_metadata_keep_their_own_messages(run, tmp_path):
    def version(v):
        return lambda doc: doc.update(version=v)

    cases = [
        (version(2), "written by a newer specc (format version 2; this specc reads up to 1)"),
        (version(0), "'__meta__' is damaged (version: "),
        (lambda doc: doc.update(format="other"), "not a specc checkpoint (unknown format)"),
        (lambda doc: [], "not a specc checkpoint (unknown format)"),
    ]
    for change, words in cases:
        bad = _rewrite(run.checkpoint, tmp_path / "bad.npz", "__meta__", change)
        with pytest.raises(CheckpointError, match=None) as err:
            load_checkpoint(bad)
        assert words in err.value.render(), err.value.render()
