"""forgetkit's methods inside a training script of your own: TRL's ``SFTTrainer`` or a plain
``transformers.Trainer``.

``prepare`` composes a method (SEAT, LfU, sparse tuning...) on a model you already hold and
returns what your trainer needs: the prepared model (a sparse mask applied, LoRA added...),
the encoded dataset with each loss term's extra inputs (SEAT's entity-perturbed copies), the
collator that keeps them, the loss terms, and ``trainer(...)``, which builds your Trainer
class with forgetkit's loss::

    from trl import SFTConfig, SFTTrainer
    from forgetkit.train.external import prepare

    prepared = prepare(model, tokenizer, "train.jsonl", method="seat", gamma=1.0)
    trainer = prepared.trainer(SFTTrainer, args=SFTConfig(output_dir="out", max_steps=100,
                               **prepared.trainer_arguments()))
    trainer.train()
    prepared.finalize(trainer.model).save_pretrained("out/final")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase, Trainer

from forgetkit.data.formats import Fields, normalise
from forgetkit.data.records import QARecord, make_record, read_qa
from forgetkit.errors import UserError
from forgetkit.lm.tokenize import QACollator
from forgetkit.train.config import TrainConfig
from forgetkit.train.methods import get_method
from forgetkit.train.registry import ParameterSelection
from forgetkit.train.run import compose
from forgetkit.train.trainer import with_loss_terms


@dataclass
class Prepared:
    """A method composed on a model: hand these to your own Trainer."""

    model: torch.nn.Module
    train_dataset: Any
    data_collator: QACollator
    loss_terms: list
    selection: ParameterSelection
    notes: dict[str, Any] = field(default_factory=dict)

    def trainer_arguments(self) -> dict[str, Any]:
        """``TrainingArguments`` / ``SFTConfig`` settings the prepared data needs: the extra
        input columns stay, and TRL does not tokenise the already encoded dataset again."""
        return {"remove_unused_columns": False,
                "dataset_kwargs": {"skip_prepare_dataset": True}}

    def trainer(self, trainer_class: type[Trainer] = Trainer, **kwargs: Any) -> Trainer:
        """``trainer_class`` (``SFTTrainer``, ``Trainer``...) with forgetkit's loss, built
        on the prepared model, dataset and collator; ``kwargs`` go to its constructor."""
        cls = with_loss_terms(trainer_class)
        return cls(model=self.model, train_dataset=self.train_dataset,
                   data_collator=self.data_collator, loss_terms=self.loss_terms, **kwargs)

    def finalize(self, model: torch.nn.Module) -> torch.nn.Module:
        """The trained model as a plain one (sparse parametrisation removed, LoRA merged)."""
        return self.selection.finalize(model)


def records_of(data: Any, fields: Fields) -> list[QARecord]:
    """QA records from a data source (path, ``hf:`` spec), records, a ``datasets.Dataset``
    or a list of rows in any shape forgetkit reads."""
    if isinstance(data, str | Path):
        return read_qa(data, fields)
    if isinstance(data, Sequence) and data and all(isinstance(r, QARecord) for r in data):
        return list(data)
    rows = list(data)  # a datasets.Dataset or a list of rows in any accepted shape
    if not rows:
        raise UserError("prepare: the data is empty")
    return [make_record(normalise(row, f"row {i}", fields), f"row {i}")
            for i, row in enumerate(rows)]


def prepare(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, data: Any,
            method: str = "seat", **options: Any) -> Prepared:
    """Compose ``method`` on ``model`` for ``data`` (a data source path, QA records, a
    ``datasets.Dataset`` or rows in any shape forgetkit reads); ``options`` are the method's
    and the run's options by their flat names (``gamma``, ``sparsity``, ``max_length``...).

    Set-up passes run here (SEAT's cached base log-probs read the model as it is now, so
    call this before training). The tokenizer needs a pad token and a chat template.
    """
    if tokenizer.pad_token is None or not getattr(tokenizer, "chat_template", None):
        raise UserError("prepare needs a tokenizer with a pad token and a chat template "
                        "(forgetkit.lm.models.load sets both)")
    config = TrainConfig(method=method, progress=False, **options)
    records = records_of(data, Fields.of(config))
    ctx, terms, selection = compose(config, get_method(method), model, tokenizer, records)
    from datasets import Dataset

    return Prepared(model=ctx.model, train_dataset=Dataset.from_list(ctx.examples),
                    data_collator=QACollator(tokenizer.pad_token_id), loss_terms=terms,
                    selection=selection, notes=ctx.notes)


__all__ = ["Prepared", "prepare", "records_of"]
