"""Held-out evaluation in eval mode (running statistics, no dropout)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from specc.backend.numpy.network import Network
from specc.data.synthetic import ADDING_BASELINE_MSE
from specc.train.prepare import Batch, Prepared


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _real(b: Batch) -> np.ndarray:
    return np.ones(b.targets.shape, bool) if b.mask is None else b.mask > 0


def _scores(net: Network, batch: Batch) -> np.ndarray:
    """Scores before the softmax, in evaluation mode, in float64 for the sums."""
    return net.scores(batch.feeds(net.model.inputs[0].name), batch.mask).astype(np.float64)


def evaluate(net: Network, prepared: Prepared, batches: list[Batch]) -> dict[str, Any]:
    """The kind's metrics over `batches`: loss in nats plus accuracy or mse. A task
    trained carrying state (`Prepared.carried`) is evaluated the same way: the
    batches in order, each row's state carried from zero at the first."""
    if prepared.carried and batches:
        with net.carrying(net.zero_state(len(batches[0].inputs))):
            return _metrics(net, prepared, batches)
    return _metrics(net, prepared, batches)


def _metrics(net: Network, prepared: Prepared, batches: list[Batch]) -> dict[str, Any]:
    if prepared.kind == "regress":
        total, count = 0.0, 0
        for b in batches:
            pred = _scores(net, b)
            err = pred.reshape(b.targets.shape) - b.targets
            total += float(np.sum(err * err))
            count += err.size
        mse = total / max(count, 1)
        return {"loss": mse, "mse": mse}
    labels = prepared.labels
    n_classes = prepared.sizes.get("labels") or prepared.sizes.get("vocab", 0)
    nll, known, correct, count = 0.0, 0, 0, 0
    unseen_correct, unseen_count, judged_unseen = 0, 0, False
    per_tag_correct = np.zeros(n_classes, dtype=np.int64)
    per_tag_total = np.zeros(n_classes, dtype=np.int64)
    for b in batches:
        logp = log_softmax(_scores(net, b))
        real = _real(b)
        targets = b.targets
        seen = real & (targets >= 0)
        safe = np.where(seen, targets, 0)
        picked = np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
        nll -= float(np.sum(picked[seen]))
        known += int(seen.sum())
        hit = (np.argmax(logp, axis=-1) == targets) & seen
        correct += int(hit.sum())
        count += int(real.sum())
        if b.unseen is not None:
            judged_unseen = True
            unseen_correct += int(np.sum(hit & b.unseen))
            unseen_count += int(np.sum(real & b.unseen))
        np.add.at(per_tag_total, safe[seen], 1)
        np.add.at(per_tag_correct, safe[hit], 1)
    loss = nll / max(known, 1)
    metrics: dict[str, Any] = {"loss": loss, "accuracy": correct / max(count, 1)}
    if prepared.kind == "next_char":
        metrics = {
            "loss": loss,
            "bits_per_char": loss / math.log(2),
            "accuracy": metrics["accuracy"],
        }
    elif labels is not None and prepared.kind == "tag":
        if judged_unseen:
            if unseen_count:
                metrics["unseen_accuracy"] = unseen_correct / unseen_count
            metrics["unseen"] = {"count": unseen_count, "fraction": unseen_count / max(count, 1)}
        metrics["per_tag"] = {
            labels.tokens[i]: {
                "accuracy": per_tag_correct[i] / per_tag_total[i],
                "count": int(per_tag_total[i]),
            }
            for i in range(len(labels))
            if per_tag_total[i] > 0
        }
    return metrics


def baseline(prepared: Prepared) -> dict[str, float]:
    """What a model that learned nothing scores, to judge a result against.

    For tagging with words, also what a lookup table scores: each held-out word
    gets its most frequent training tag, and a word never seen in training the
    most common tag (`per_word_accuracy`, and `per_word_unseen_accuracy` on the
    unseen words alone). A tagger is worth its cost only by what it adds to that."""
    if prepared.kind == "next_char" and prepared.vocab is not None:
        return {"uniform_bits_per_char": math.log2(len(prepared.vocab))}
    if prepared.kind == "tag" and prepared.val and prepared.labels is not None:
        counts = np.zeros(len(prepared.labels), dtype=np.int64)
        for b in prepared.train_batches():
            counts += np.bincount(b.targets[_real(b) & (b.targets >= 0)], minlength=len(counts))
        top = int(np.argmax(counts))
        hit = sum(int(np.sum((b.targets == top) & _real(b))) for b in prepared.val)
        real = sum(b.tokens for b in prepared.val)
        out = {"majority_accuracy": hit / max(real, 1)}
        if prepared.word_tags and prepared.val_sentences:
            out.update(_per_word(prepared.word_tags, prepared.labels.tokens[top], prepared))
        return out
    if prepared.kind == "regress":
        return {"predict_one_mse": ADDING_BASELINE_MSE}
    return {}


def _per_word(word_tags: dict[str, str], common: str, prepared: Prepared) -> dict[str, float]:
    """The per-word most-frequent-tag baseline on the held-out sentences."""
    hit = unseen_hit = unseen = words = 0
    for sentence in prepared.val_sentences:
        for word, gold in sentence:
            known = word_tags.get(word)
            right = (known or common) == gold
            words += 1
            hit += right
            if known is None:
                unseen += 1
                unseen_hit += right
    out = {"per_word_accuracy": hit / max(words, 1)}
    if unseen:
        out["per_word_unseen_accuracy"] = unseen_hit / unseen
    return out
