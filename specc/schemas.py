"""Publish the JSON Schema of each contract in `docs/schemas/`.

    python -m specc.schemas            # (re)write docs/schemas/*.schema.json
    python -m specc.schemas --check    # exit status 1 if a published file is out of date

Why generated: other programs validate the explain JSON, the metrics file
and a checkpoint's documents against these files, so they come from the
pydantic models that write and read those documents and are never edited by
hand. A test regenerates them in memory and fails when a published file
differs, so a changed model cannot ship with a stale schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from specc.explain.schema import ExplainDoc
from specc.fileio import write_text
from specc.train.checkpoint_docs import CheckpointDocs
from specc.train.records import RunMetrics

#: Published file name -> the model it describes.
CONTRACTS: dict[str, type[BaseModel]] = {
    "explain.schema.json": ExplainDoc,
    "metrics.schema.json": RunMetrics,
    "checkpoint.schema.json": CheckpointDocs,
}

#: Where the schemas are published in a source checkout.
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_texts() -> dict[str, str]:
    """Each published file's exact text, generated now from its model."""
    out = {}
    for name, model in CONTRACTS.items():
        # by_alias: a checkpoint's documents are keyed by their array names (`__meta__`, ...)
        schema = {"$schema": _DIALECT, **model.model_json_schema(by_alias=True)}
        out[name] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return out


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """The published files that are missing or differ from what the models generate."""
    out = []
    for name, text in schema_texts().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file into `directory`; returns their paths."""
    paths = []
    for name, text in schema_texts().items():
        path = directory / name
        write_text(path, text)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m specc.schemas",
        description="Write (or --check) the JSON Schema of specc's published JSON documents.",
    )
    parser.add_argument(
        "--out", type=Path, default=SCHEMA_DIR, help="folder (default: %(default)s)"
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is out of date"
    )
    args = parser.parse_args(argv)
    if args.check:
        old = stale(args.out)
        for name in old:
            sys.stderr.write(f"{args.out / name} is out of date; run python -m specc.schemas\n")
        return 1 if old else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
