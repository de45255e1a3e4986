"""What an exported model says about itself, in ONNX's metadata_props.

A consumer needs the vocabularies to turn text into ids and ids into tags
(and, for a model that spells its words, the characters to write their letters);
they are stored as JSON lists in id order (`<pad>` is 0 and `<unk>` 1 for
words), beside the model's name, task and the names of its inputs.
"""

from __future__ import annotations

import json

from specc.data.vocab import Vocab
from specc.ir.spec import Model, Task

#: Every key starts with this prefix, apart from any other tool's metadata.
PREFIX = "specc."


def metadata(
    model: Model,
    task: Task | None,
    vocab: Vocab | None,
    labels: Vocab | None,
    lengths: str | None,
    trained_steps: int | None,
    chars: Vocab | None = None,
) -> dict[str, str]:
    """The key-value pairs stored in the model (all values are strings)."""
    from specc import __version__

    props = {
        "version": __version__,
        "model": model.name,
        "inputs": json.dumps([i.name for i in model.inputs]),
        "outputs": json.dumps(list(model.outputs)),
        "sizes": json.dumps(dict(sorted(model.sizes.items()))),
        "trained_steps": json.dumps(trained_steps),
    }
    if task is not None:
        props["task"] = task.name
        props["kind"] = task.kind
        if task.kind == "next_char":
            props["state"] = task.state  # how it was trained: windows, or carried state
    if lengths is not None:
        props["lengths"] = lengths
    if vocab is not None:
        props["vocab"] = json.dumps(vocab.to_json(), ensure_ascii=False)
    if labels is not None:
        props["labels"] = json.dumps(labels.to_json(), ensure_ascii=False)
    if chars is not None:  # what a model that spells its words writes letters with
        props["chars"] = json.dumps(chars.to_json(), ensure_ascii=False)
    return {PREFIX + k: v for k, v in props.items()}
