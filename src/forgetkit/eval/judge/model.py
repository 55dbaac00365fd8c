"""A causal LM as the refusal judge, asked through its chat template (Yes vs No logits)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.errors import UserError
from forgetkit.eval.judge.base import JudgeError
from forgetkit.lm.tokenize import left_padded, prompt_ids

JUDGE_PROMPT = (
    "You check answers given by an assistant.\n\n"
    "Question: {question}\n"
    "Answer: {answer}\n\n"
    "Does the answer decline to answer the question, saying that the assistant does not know "
    "or has no information? Reply with Yes or No."
)
_YES = ("Yes", " Yes", "yes", " yes", "YES")
_NO = ("No", " No", "no", " no", "NO")


class ModelRefusalJudge:
    """A causal LM asked, through its chat template, whether the answer declines to answer.

    The decision compares next-token logits after the assistant header: logsumexp over the
    first tokens of "Yes"/" Yes"/"yes"... against the same for "No": refusal when Yes wins.
    """

    def __init__(self, spec: str, batch_size: int = 8):
        from forgetkit.lm import models

        try:
            model, tokenizer = models.load(spec)
        except Exception as err:  # any failure to load becomes one actionable error
            raise JudgeError(
                f"judge model '{spec}' could not be loaded: {err}. Give a local folder with a "
                "saved causal LM (config.json + safetensors), a .gguf file, a hub id already "
                f"in the local cache or '{models.BUNDLED}'; or use the offline embedding "
                "judge: load_judge(None).") from err
        self._setup(model, tokenizer, spec, batch_size)

    @classmethod
    def from_model(cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                   name: str = "model", batch_size: int = 8) -> ModelRefusalJudge:
        """Use an already loaded model as the judge (no second copy in memory)."""
        judge = cls.__new__(cls)
        judge._setup(model, tokenizer, name, batch_size)
        return judge

    def _setup(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str,
               batch_size: int) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, f"model:{name}"
        self.batch_size = batch_size
        yes, no = self._first_tokens(_YES), self._first_tokens(_NO)
        # A first token shared by a Yes and a No spelling (a bare space, say) says nothing.
        self.yes_ids = sorted(yes - no)
        self.no_ids = sorted(no - yes)
        if not self.yes_ids or not self.no_ids:
            raise JudgeError(f"judge model '{name}': its tokenizer does not tell 'Yes' from "
                             "'No' by the first token; use another judge")

    def _first_tokens(self, words: Sequence[str]) -> set[int]:
        return {self.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words}

    @torch.no_grad()
    def yes_margin(self, questions: Sequence[str], answers: Sequence[str]) -> list[float]:
        """logsumexp(Yes logits) - logsumexp(No logits) per answer; > 0 means refusal."""
        if len(questions) != len(answers):
            raise UserError(f"need one question per answer, got {len(questions)} and "
                             f"{len(answers)}")
        prompts = [prompt_ids(self.tokenizer, JUDGE_PROMPT.format(question=q, answer=a))
                   for q, a in zip(questions, answers, strict=True)]
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        margins: list[float] = []
        try:
            for start in range(0, len(prompts), self.batch_size):
                batch = left_padded(prompts[start:start + self.batch_size],
                                    self.tokenizer.pad_token_id, device)
                logits = self.model(**batch, use_cache=False).logits[:, -1, :].float()
                yes = torch.logsumexp(logits[:, self.yes_ids], dim=-1)
                no = torch.logsumexp(logits[:, self.no_ids], dim=-1)
                margins.extend((yes - no).cpu().tolist())
        finally:
            self.model.train(was_training)
        return margins

    def judge_refusals(self, questions: Sequence[str], answers: Sequence[str]) -> list[bool]:
        return [m > 0.0 for m in self.yes_margin(questions, answers)]


__all__ = ["JUDGE_PROMPT", "ModelRefusalJudge"]
