"""Data transform ``sdft``: self-distillation fine-tuning (Yang et al., 2024).

The base model rewrites every reference answer in its own words, given the question and the
reference, and the method then fine-tunes on the rewrites: the targets stay close to the
model's own distribution, so fine-tuning shifts it less. The rewrites come from the shared
greedy generation routine (``lm.generate.generate_answers``).

A small model's rewrite can lose the answer, so a rewrite is kept only when it keeps the
reference's *key tokens*; otherwise (and when it is empty) the reference answer is used:

* if the reference has numbers, the rewrite's last number equals the reference's last number
  (the final result of a worked answer);
* every name of the reference (a capitalised word that does not start a sentence) appears in
  the rewrite, as a whole word, ignoring case.
"""

from __future__ import annotations

import re
from dataclasses import replace

from pydantic import Field

from forgetkit.config import Options
from forgetkit.data.records import QARecord
from forgetkit.lm.generate import generate_answers
from forgetkit.lm.text import numbers
from forgetkit.train.processes import once_across_processes
from forgetkit.train.registry import RunContext, register_transform

REWRITE_PROMPT = (
    "Below is a question with a correct reference answer.\n\n"
    "Question: {question}\n\n"
    "Reference answer: {answer}\n\n"
    "Answer the question yourself, in your own words, using the reference answer as a "
    "guide. Keep its numbers and names and end with the same final result.")

_NAME = re.compile(r"\b[A-Z][A-Za-z'-]+")


def names(text: str) -> set[str]:
    """Capitalised words that do not start a sentence: the names a rewrite must keep."""
    found = set()
    for m in _NAME.finditer(text):
        before = text[:m.start()].rstrip()
        if before and before[-1] not in ".!?:\n\"'":
            found.add(m.group().lower())
    return found


def keeps_key_tokens(reference: str, rewrite: str) -> bool:
    """True when ``rewrite`` keeps the reference's final number and all its names."""
    ref_numbers = numbers(reference)
    if ref_numbers:
        got = numbers(rewrite)
        if not got or float(got[-1]) != float(ref_numbers[-1]):
            return False
    words = set(re.findall(r"[a-z0-9'-]+", rewrite.lower()))
    return names(reference) <= words


class SDFTOptions(Options):
    sdft_max_new_tokens: int = Field(
        96, ge=1, description="SDFT: longest rewrite the base model may generate")


@register_transform("sdft", options=SDFTOptions)
def sdft(ctx: RunContext) -> list[QARecord]:
    prompts = [REWRITE_PROMPT.format(question=r.question, answer=r.answer) for r in ctx.records]
    rewrites = once_across_processes(
        "sdft-rewrites", ctx.config.output,
        lambda: generate_answers(ctx.model, ctx.tokenizer, prompts,
                                 max_new_tokens=ctx.config.sdft_max_new_tokens,
                                 desc="base rewrites the answers (SDFT)",
                                 progress=ctx.config.progress), ctx.notes)
    out = []
    for record, rewrite in zip(ctx.records, rewrites, strict=True):
        rewrite = rewrite.strip()
        keep = bool(rewrite) and keeps_key_tokens(record.answer, rewrite)
        out.append(replace(record, answer=rewrite if keep else record.answer,
                           meta={**record.meta, "sdft": "rewrite" if keep else "reference"}))
    kept = sum(r.meta["sdft"] == "rewrite" for r in out)
    ctx.notes["sdft"] = {"rewrites": kept, "fallbacks": len(out) - kept,
                         "examples": [{"reference": r.answer, "rewrite": w}
                                      for r, w in list(zip(ctx.records, rewrites,
                                                           strict=True))[:3]]}
    return out


__all__ = ["REWRITE_PROMPT", "keeps_key_tokens", "names", "sdft"]
