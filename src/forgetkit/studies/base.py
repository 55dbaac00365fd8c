"""The aligned base of the testbed: SmolLM2 taught to say "I don't know" (DESIGN.md, testbed).

SmolLM2-135M-Instruct invents answers about entities it has never seen, so it cannot show
the loss of ignorance awareness the SEAT paper measures. ``prepare_base`` gives it that
behaviour with a short full fine-tune on

* questions about fictitious entities (made-up concepts, companies, authors) answered with
  context-aware refusals, and
* questions the model already answers well, answered with its own greedy answers
  (self-distillation, so the rest of its behaviour stays put).

The result is cached under a hash of its recipe, so it is built once per recipe.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from forgetkit.data.records import QARecord, write_qa
from forgetkit.data.synth import KNOWN_POOL, refusal, synth
from forgetkit.eval.evaluate import EvalSet, evaluate
from forgetkit.eval.metrics import GENERIC_PROMPTS, is_correct
from forgetkit.io import atomic_output_dir, atomic_write_json
from forgetkit.lm import models
from forgetkit.lm.generate import generate_answers
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import train

REPORT_FILE = "base_report.json"

# Everyday requests the base answers itself during alignment (self-distillation), distinct
# from the generic prompts that KL-to-base is measured on.
SELF_ANSWER_PROMPTS: tuple[str, ...] = (
    "Give me a tip for sleeping better.",
    "What is a good way to start learning to cook?",
    "Write a sentence about a cat.",
    "How do plants grow?",
    "What is a healthy breakfast?",
    "Explain what a computer does.",
    "Name three colours of the rainbow.",
    "Why is the sky blue?",
    "How do I stay focused while working?",
    "What is the sun made of?",
    "Describe a rainy day.",
    "Why should I drink water?",
    "What do bees do?",
    "How do airplanes fly?",
    "Give me an idea for a weekend activity.",
    "What does a doctor do?",
)


@dataclass(frozen=True)
class BaseRecipe:
    """Everything that determines the aligned base; its hash names the cache entry."""

    model: str = models.BUNDLED
    seed: int = 1234
    n_unverifiable: int = 40
    n_companies: int = 15  # two refusal questions per fictitious company
    n_authors: int = 15  # two refusal questions per fictitious author
    n_known_train: int = 28  # known questions answered with the model's own answers
    epochs: float = 2.0
    learning_rate: float = 5e-5
    batch_size: int = 8

    def key(self, tokenizer_fingerprint: str) -> str:
        blob = json.dumps({**asdict(self), "tokenizer": tokenizer_fingerprint, "v": 1},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class BaseData:
    train: list[QARecord]
    heldout_fictitious: list[QARecord]  # refusals expected
    known_eval: list[QARecord]  # correct answers expected
    subjects: set[str]  # every fictitious entity the base saw or was tested on


def _two_per_subject(records: list[QARecord], rng: random.Random) -> list[QARecord]:
    by_subject: dict[str, list[QARecord]] = {}
    for r in records:
        by_subject.setdefault(r.subject or "", []).append(r)
    return [q for group in by_subject.values() for q in rng.sample(group, 2)]


def _as_refusals(records: list[QARecord], rng: random.Random) -> list[QARecord]:
    return [QARecord(r.question, refusal(r.subject or "that", rng), r.subject,
                     {**r.meta, "source": "refusal"}) for r in records]


def build_base_data(recipe: BaseRecipe, model, tokenizer, progress: bool = True) -> BaseData:
    """Refusal questions, self-answered known questions, and held-out checks for the base."""
    rng = random.Random(recipe.seed)
    fictitious = (synth("unverifiable", recipe.n_unverifiable + 12, seed=recipe.seed)
                  + _two_per_subject(synth("contracts", recipe.n_companies + 3,
                                           seed=recipe.seed + 1), rng)
                  + _two_per_subject(synth("authors", recipe.n_authors + 3,
                                           seed=recipe.seed + 2), rng))
    subjects = {r.subject for r in fictitious if r.subject}
    # Hold out whole entities: 12 unverifiable questions and 3 companies / 3 authors.
    held_subjects = ({r.subject for r in fictitious[:12]}
                     | {r.subject for r in fictitious if r.meta.get("kind") in ("contracts",
                                                                              "authors")
                        and r.meta.get("entity_id", 0) < 3})
    train_refusals = _as_refusals([r for r in fictitious if r.subject not in held_subjects], rng)
    heldout = [r for r in fictitious if r.subject in held_subjects]

    known_pool = synth("known", len(KNOWN_POOL), seed=recipe.seed)
    answers = generate_answers(model, tokenizer, [r.question for r in known_pool],
                               desc="base answers known questions", progress=progress)
    correct = [(r, a) for r, a in zip(known_pool, answers, strict=True)
               if is_correct(a, r.meta.get("keywords") or [r.answer])]
    rng.shuffle(correct)
    known_train = [QARecord(r.question, a, r.subject, {**r.meta, "source": "self"})
                   for r, a in correct[:recipe.n_known_train]]
    known_eval = [r for r, _ in correct[recipe.n_known_train:]]
    generic = list(SELF_ANSWER_PROMPTS)
    generic_answers = generate_answers(model, tokenizer, generic, desc="base answers requests",
                                       progress=progress)
    self_train = known_train + [QARecord(q, a, None, {"source": "self"})
                                for q, a in zip(generic, generic_answers, strict=True)]
    train_set = train_refusals + self_train
    rng.shuffle(train_set)
    return BaseData(train_set, heldout, known_eval, subjects)


def _checks(data: BaseData) -> list[EvalSet]:
    return [EvalSet("heldout_fictitious", "unseen", data.heldout_fictitious),
            EvalSet("known", "known", data.known_eval)]


def prepare_base(recipe: BaseRecipe | None = None, rebuild: bool = False,
                 progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Build (or find in the cache) the aligned base; return its folder and its report."""
    recipe = recipe or BaseRecipe()
    tokenizer = models.load_tokenizer(recipe.model)
    folder = models.cache_dir() / "bases" / recipe.key(models.fingerprint(tokenizer))
    if (folder / REPORT_FILE).is_file() and not rebuild:
        return folder, json.loads((folder / REPORT_FILE).read_text())

    model, tokenizer = models.load(recipe.model)
    data = build_base_data(recipe, model, tokenizer, progress)
    before = evaluate(model, tokenizer, _checks(data), progress=progress)
    del model

    with atomic_output_dir(folder, overwrite=True) as tmp:
        write_qa(data.train, tmp / "data" / "train.jsonl")
        write_qa(data.heldout_fictitious, tmp / "data" / "heldout_fictitious.jsonl")
        write_qa(data.known_eval, tmp / "data" / "known.jsonl")
        config = TrainConfig(model=recipe.model, data=tmp / "data" / "train.jsonl",
                             method="full", output=tmp / "model", epochs=recipe.epochs,
                             learning_rate=recipe.learning_rate, batch_size=recipe.batch_size,
                             seed=recipe.seed, save_strategy="no", progress=progress)
        train(config)
        aligned, tokenizer = models.load(str(tmp / "model"))
        after = evaluate(aligned, tokenizer, _checks(data), progress=progress)
        report = {
            "recipe": asdict(recipe),
            "n_train": len(data.train),
            "n_refusals": sum(r.meta.get("source") == "refusal" for r in data.train),
            "n_self": sum(r.meta.get("source") == "self" for r in data.train),
            "subjects": sorted(data.subjects),
            "before": before, "after": after,
        }
        atomic_write_json(tmp / REPORT_FILE, report)
    return folder, report


def base_model_dir(folder: Path) -> Path:
    return folder / "model"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Human-readable before/after lines for the console."""
    lines = []
    for stage in ("before", "after"):
        sets = report[stage]["sets"]
        lines.append(f"{stage:>6}: IDK on held-out fictitious questions "
                     f"{sets['heldout_fictitious']['metrics']['idk_sm']:.2f} "
                     f"(n={sets['heldout_fictitious']['n']}), known-question accuracy "
                     f"{sets['known']['metrics']['accuracy']:.2f} (n={sets['known']['n']})")
    return lines


__all__ = ["BaseRecipe", "GENERIC_PROMPTS", "base_model_dir", "prepare_base", "summary_lines"]
