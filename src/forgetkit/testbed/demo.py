"""``forgetkit demo``: the SEAT paper's experiment in miniature, on the embedded model.

aligned base (cached) -> synthetic contracts -> fine-tune with each method -> evaluate
FT score, IDK on unseen questions (made-up concepts; held-out contracts of the same kind),
known-question accuracy and KL to the base -> results.json, results.md, results.png.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forgetkit import models
from forgetkit.config import TrainConfig
from forgetkit.data.records import QARecord, read_qa, write_qa
from forgetkit.data.synth import synth
from forgetkit.eval.evaluate import EvalSet, evaluate, headline
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.io import atomic_write_json, refuse_existing
from forgetkit.report.render import render_results
from forgetkit.testbed.base import base_model_dir, prepare_base
from forgetkit.train.run import train


@dataclass(frozen=True)
class DemoPlan:
    """Sizes and hyperparameters of a demo run (the default and ``--quick``)."""

    seed: int = 7
    n_train_questions: int = 30  # drawn from n_train_contracts contracts
    n_train_contracts: int = 2
    n_heldout_contracts: int = 2
    n_heldout_questions: int = 20
    n_unverifiable: int = 20
    epochs: float = 12.0
    batch_size: int = 8
    methods: tuple[str, ...] = ("full", "lora")
    learning_rates: dict[str, float] = field(
        default_factory=lambda: {"full": 5e-5, "lora": 3e-4})


QUICK = DemoPlan(n_train_questions=16, n_train_contracts=1, n_heldout_contracts=1,
                 n_heldout_questions=12, n_unverifiable=12, epochs=6.0)


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"[forgetkit demo] {message}", flush=True)


def demo_data(plan: DemoPlan, exclude_subjects: set[str]) -> dict[str, list[QARecord]]:
    """Training contracts, held-out contracts and unverifiable questions, none about an
    entity the aligned base was built with."""
    rng = random.Random(plan.seed)
    contracts = [r for r in synth("contracts", plan.n_train_contracts + plan.n_heldout_contracts
                                  + 2, seed=plan.seed) if r.subject not in exclude_subjects]
    subjects = list(dict.fromkeys(r.subject for r in contracts))
    train_subjects = set(subjects[:plan.n_train_contracts])
    held_subjects = set(subjects[plan.n_train_contracts:
                                 plan.n_train_contracts + plan.n_heldout_contracts])
    train_pool = [r for r in contracts if r.subject in train_subjects]
    held_pool = [r for r in contracts if r.subject in held_subjects]
    unverifiable = [r for r in synth("unverifiable", plan.n_unverifiable * 2, seed=plan.seed + 1)
                    if r.subject not in exclude_subjects][:plan.n_unverifiable]
    return {
        "train": rng.sample(train_pool, min(plan.n_train_questions, len(train_pool))),
        "heldout_contracts": rng.sample(held_pool, min(plan.n_heldout_questions,
                                                       len(held_pool))),
        "unverifiable": unverifiable,
    }


def run_demo(output: Path = Path("results/demo"), quick: bool = False, overwrite: bool = False,
             progress: bool = True, plan: DemoPlan | None = None) -> Path:
    """Run the whole demo; return the results folder."""
    plan = plan or (QUICK if quick else DemoPlan())
    output = Path(output)
    refuse_existing(output / "results.json", overwrite)
    started = time.time()
    timings: dict[str, float] = {}

    _log(progress, "step 1/4: aligned base (built once, then cached)")
    t0 = time.time()
    base_folder, base_report = prepare_base(progress=progress)
    base_dir = base_model_dir(base_folder)
    timings["prepare_base"] = time.time() - t0
    for stage in ("before", "after"):
        sets = base_report[stage]["sets"]
        _log(progress, f"  base {stage} alignment: IDK on held-out fictitious "
                       f"{sets['heldout_fictitious']['metrics']['idk_sm']:.2f}, known accuracy "
                       f"{sets['known']['metrics']['accuracy']:.2f}")

    _log(progress, "step 2/4: synthetic contracts (PISTOL-like)")
    data = demo_data(plan, set(base_report["subjects"]))
    data["known"] = read_qa(base_folder / "data" / "known.jsonl")
    data_dir = output / "data"
    for name, records in data.items():
        write_qa(records, data_dir / f"{name}.jsonl")
    sets = [EvalSet("train", "ft", data["train"]),
            EvalSet("unverifiable", "unseen", data["unverifiable"]),
            EvalSet("heldout_contracts", "unseen", data["heldout_contracts"]),
            EvalSet("known", "known", data["known"])]

    _log(progress, "step 3/4: evaluate the base, then fine-tune and evaluate each method")
    t0 = time.time()
    base_model, tokenizer = models.load(str(base_dir))
    reference_lp = next_token_logprobs(base_model, tokenizer)
    evaluations: dict[str, Any] = {
        "base": evaluate(base_model, tokenizer, sets, reference_logprobs=reference_lp,
                         progress=progress)}
    del base_model
    timings["eval_base"] = time.time() - t0
    for method in plan.methods:
        _log(progress, f"  fine-tuning with '{method}' ({plan.epochs:g} epochs on "
                       f"{len(data['train'])} questions)")
        t0 = time.time()
        config = TrainConfig(model=str(base_dir), data=data_dir / "train.jsonl", method=method,
                             output=output / "models" / method, overwrite=True,
                             epochs=plan.epochs, batch_size=plan.batch_size,
                             learning_rate=plan.learning_rates.get(method), seed=plan.seed,
                             save_strategy="no", progress=progress)
        trained_dir = train(config)
        timings[f"train_{method}"] = time.time() - t0
        t0 = time.time()
        model, tokenizer = models.load(str(trained_dir))
        evaluations[method] = evaluate(model, tokenizer, sets, reference_logprobs=reference_lp,
                                       progress=progress)
        del model
        timings[f"eval_{method}"] = time.time() - t0

    _log(progress, "step 4/4: report")
    timings["total"] = time.time() - started
    results = {
        "plan": {**asdict(plan), "quick": quick},
        "base": {"folder": str(base_folder), "recipe": base_report["recipe"],
                 "before": headline(base_report["before"]),
                 "after": headline(base_report["after"])},
        "sizes": {name: len(records) for name, records in data.items()},
        "models": {name: headline(ev) for name, ev in evaluations.items()},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    atomic_write_json(output / "evaluations.json", evaluations)
    atomic_write_json(output / "results.json", results)
    render_results(results, output)
    return output


def load_results(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "results.json").read_text())


__all__ = ["DemoPlan", "QUICK", "demo_data", "load_results", "run_demo"]
