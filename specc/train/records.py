"""The metrics a run records: the metrics file `DIR/<task>.json` and a checkpoint's copy.

Why models: `specc run` writes the metrics file for other programs (scripts,
plots, the study) to read, with the history of every evaluation (what
`specc plot` draws), and a checkpoint keeps the same record so a resumed run
carries on from it. These models are that
contract: the loop builds :class:`RunMetrics` and writes it through
:meth:`~specc.contract.Contract.document`; the checkpoint loader validates
`__metrics__` with :class:`CheckpointMetrics`; `docs/schemas/metrics.schema.json`
is generated from :class:`RunMetrics`.

Which metrics appear depends on the task's kind (see `specc.train.metrics`):
next_char has loss, bits_per_char and accuracy; tag has loss, accuracy and
per_tag (and, for words read from files, unseen_accuracy and unseen);
classify has loss and accuracy; regress has loss and mse. Losses are in
nats, or the mean squared error for mse. `baseline` holds what trivial
predictors score on the same held-out data.
"""

from __future__ import annotations

import json

from pydantic import Field

from specc.contract import Contract, Omittable
from specc.ir.spec import TaskKind


class TagScore(Contract):
    """How well one tag was predicted on the held-out words that carry it."""

    accuracy: float
    count: int


class EvalScalars(Contract):
    """The single-number metrics of one evaluation (the kind decides which are there)."""

    loss: Omittable[float] = None
    bits_per_char: Omittable[float] = None
    accuracy: Omittable[float] = None
    unseen_accuracy: Omittable[float] = Field(
        None,
        description="tag: the accuracy on the words that never occur in the training data "
        "(absent when there are none).",
    )
    mse: Omittable[float] = None


class UnseenWords(Contract):
    """The evaluated words whose string never occurs in the training data."""

    count: int
    fraction: float = Field(description="Of all the evaluated words.")


class EvalMetrics(EvalScalars):
    """One evaluation over a split; empty when there was no such split to evaluate."""

    per_tag: Omittable[dict[str, TagScore]] = None
    unseen: Omittable[UnseenWords] = None


class Baselines(Contract):
    """What trivial predictors score on the held-out data (the kind decides which)."""

    majority_accuracy: Omittable[float] = Field(
        None, description="tag: always the most common training tag."
    )
    per_word_accuracy: Omittable[float] = Field(
        None,
        description="tag: each word's most frequent training tag, the most common tag for "
        "a word never seen in training.",
    )
    per_word_unseen_accuracy: Omittable[float] = Field(
        None, description="tag: the per-word baseline on the words never seen in training."
    )
    uniform_bits_per_char: Omittable[float] = Field(
        None, description="next_char: every character equally likely."
    )
    predict_one_mse: Omittable[float] = Field(None, description="regress: always predicting 1.")


class TrainMetrics(Contract):
    """The mean training loss over the last epoch's steps; empty before the first step."""

    loss: Omittable[float] = None


class HistoryEntry(Contract):
    """One evaluation (at the end of an epoch, or every `eval_every` steps)."""

    step: int = Field(description="Training steps taken when it was evaluated.")
    epoch: int = Field(description="The epoch it fell in, from 1.")
    train_loss: float = Field(description="The mean training loss since the evaluation before.")
    val: EvalScalars = Field(description="The held-out metrics (empty without held-out data).")
    lr: Omittable[float] = Field(None, description="The learning rate of the last step before it.")
    seconds: Omittable[float] = Field(
        None, description="Training seconds when it was evaluated, resumes included."
    )


class BestRecord(Contract):
    """The evaluation with the best monitored held-out metric, kept as `DIR/<task>.best.npz`."""

    metric: str
    value: float
    step: int
    epoch: int


class RunMetrics(Contract):
    """The metrics file `DIR/<task>.json` that `specc run` writes at every checkpoint."""

    task: str = Field(description="The task's name.")
    kind: TaskKind
    steps: int = Field(description="Training steps taken so far (counting those before a resume).")
    seconds: float = Field(description="Wall-clock seconds spent training, resumes included.")
    train: TrainMetrics
    val: EvalMetrics = Field(description="The latest evaluation on the held-out split.")
    test: Omittable[EvalMetrics] = Field(
        None, description="Only when the task's data has a test split, evaluated once at the end."
    )
    history: list[HistoryEntry] = Field(
        [], description="Every evaluation so far, in order (resumes included)."
    )
    best: Omittable[BestRecord] = Field(
        None, description="The best evaluation so far, when there is held-out data."
    )
    baseline: Omittable[Baselines] = Field(
        None, description="What trivial predictors score on the held-out data, to judge val by."
    )
    stopped_early: Omittable[bool] = Field(
        None, description="True when early_stop ended the run before its length."
    )
    time_limited: Omittable[bool] = Field(
        None, description="True when `--time-limit` ended the run before its length."
    )
    params: Omittable[dict[str, str]] = Field(
        None,
        description="The values of the spec's params the run used (after --set), as spec "
        "text; absent when it uses none.",
    )

    def checkpoint_record(self) -> CheckpointMetrics:
        """The record a checkpoint keeps: the same keys."""
        return CheckpointMetrics.model_validate(self.document())

    def to_json(self) -> str:
        """The metrics file's text (json.dumps with indent 2, as it always was)."""
        return json.dumps(self.document(), indent=2) + "\n"


class CheckpointMetrics(Contract):
    """A checkpoint's `__metrics__`: the run's metrics so far and its history.

    `specc run` always writes every key of :class:`RunMetrics` plus `history`.
    Each is optional all the same, because a checkpoint saved through the
    Python API carries whatever metrics its caller had (`specc explain` shows
    what is there), and a run resumed from it starts its history afresh.
    """

    task: Omittable[str] = None
    kind: Omittable[TaskKind] = None
    steps: Omittable[int] = None
    seconds: Omittable[float] = None
    train: Omittable[TrainMetrics] = None
    val: Omittable[EvalMetrics] = None
    test: Omittable[EvalMetrics] = None
    params: Omittable[dict[str, str]] = None
    history: Omittable[list[HistoryEntry]] = None
    best: Omittable[BestRecord] = None
    baseline: Omittable[Baselines] = None
    stopped_early: Omittable[bool] = None
    time_limited: Omittable[bool] = None
