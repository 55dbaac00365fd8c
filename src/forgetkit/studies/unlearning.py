"""``forgetkit demo --unlearn``: KIF and its baselines against the retain-model oracle.

aligned base (cached, ``studies/base.py``) -> the authors setting (``unlearn.setting``: 10
authors x 20 questions, two authors forgotten: 40 forget questions) -> the *knowing* model
(full fine-tuning on every author) and the *retain* oracle (same recipe, retain authors
only), both cached (``references``) -> ``unlearn`` the knowing model with each method (kif,
ga, graddiff, npo, idk; their default options) -> ``unlearning_suite`` with the knowing model
as the original -> one table: forget quality, model utility, leakage, latent trace and
relearned leak side by side. Results go to ``<output>/unlearn/``.

Time on a 2-core CPU, from one full fine-tuning step of SmolLM2-135M at batch 8 x 64 tokens
taking about 4 s (the authors' examples are 44-60 tokens long):

* default: knowing model 25 steps x 8 epochs and oracle 20 x 8, 360 steps, trained once
  and reused by every later run with the same recipe; five unlearning runs of 25 steps
  each (5 epochs over 40 forget questions; graddiff, npo, idk and kif also run the retain
  partners, kif mines its signatures first); seven evaluations (about 350 teacher-forced
  answers, 300 generations and a 5-step relearning attack each). Measured times are in
  the README.
* quick: 5 authors x 6 questions, one forgotten; 56 training steps ~4 min, three
  unlearning runs of 5 steps ~2.5 min, five evaluations ~4.5 min: about 12 min.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from forgetkit.data.records import QARecord, read_qa, write_qa
from forgetkit.errors import UserError
from forgetkit.eval import tofu
from forgetkit.eval.unlearning import ORIGINAL, RETAIN, unlearning_suite
from forgetkit.io import atomic_write_json
from forgetkit.lm import models
from forgetkit.studies.base import base_model_dir, prepare_base
from forgetkit.studies.study import (
    Timings,
    drop_merged_weights,
    load_results,
    progress_logger,
    publish,
    results_folder,
    training_seed,
    with_train_seed,
)
from forgetkit.studies.unlearning_report import render_results
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import RUN_FILE, train
from forgetkit.unlearn.config import UnlearnConfig
from forgetkit.unlearn.methods import UNLEARNING_METHODS, get_unlearning
from forgetkit.unlearn.run import unlearn
from forgetkit.unlearn.setting import UnlearningSetting, build_setting, subjects, write_setting

METHODS = ("kif", "ga", "graddiff", "npo", "idk")
RECIPE_FILE = "demo_recipe.json"  # written into a cached model's folder once it is complete
KNOWING = "knowing"


@dataclass(frozen=True)
class UnlearnPlan:
    """Sizes, methods and hyperparameters of an unlearning demo run."""

    seed: int = 7  # the data, the knowing model and the oracle
    # training seed (data order, adapters, masks, perturbations); None: ``seed``
    train_seed: int | None = None
    n_authors: int = 10
    # The same attributes for every author, drawn with the seed; 20 is every attribute.
    questions_per_author: int = 20
    # 2 authors x 20 questions = 40 forget questions, the size of TOFU's smallest forget set
    # (forget01: 2 of its 200 authors). Forget quality is a KS test on one truth ratio per
    # question; at 40 it separates two models from D = 0.33, at 10 only from D = 0.70,
    # more than the knowing model's own D = 0.5 from the oracle (tofu.ks_detectable).
    forget_authors: int = 2
    methods: tuple[str, ...] = METHODS
    # Knowing model and oracle: full fine-tuning of the aligned base. The SEAT demo's 5e-5
    # for 12 epochs learned 24 contract questions to ROUGE-1 0.82; here 200 facts compete
    # and each is seen 8 times, so the rate is doubled (per-fact step mass under the linear
    # schedule 8 x 1e-4 / 2 against 12 x 5e-5 / 2) to memorise them within the time budget.
    epochs: float = 8.0
    learning_rate: float = 1e-4
    batch_size: int = 8
    # Options given to every unlearning run; empty = the methods' defaults (docs/kif.md).
    unlearn_options: dict[str, Any] = field(default_factory=dict)
    # Evaluation: a few questions of every retain author (utility and the readout's fit),
    # world facts from the base's held-out known questions (they join model utility).
    retain_eval_per_author: int = 3
    n_known: int = 20
    relearn_steps: int = 5
    max_new_tokens: int = 48
    keep_weights: bool = False  # unlearned weights are ~0.5 GB each; run records are kept


DEFAULT = UnlearnPlan()
QUICK = UnlearnPlan(n_authors=5, questions_per_author=6, forget_authors=1,
                    methods=("kif", "ga", "idk"),
                    retain_eval_per_author=6, n_known=10)


def plan_for(quick: bool = False, full: bool = False) -> UnlearnPlan:
    if full:
        raise UserError("--full has no unlearning variant; run --unlearn (every method) or "
                         "--unlearn --quick")
    return QUICK if quick else DEFAULT


def check_plan(plan: UnlearnPlan) -> None:
    """Refuse a plan that cannot run, before any model is loaded."""
    unknown = [m for m in plan.methods if m not in UNLEARNING_METHODS]
    if unknown:
        raise UserError(f"unknown unlearning method(s) {unknown}; choose from "
                         f"{sorted(UNLEARNING_METHODS)}")
    if len(set(plan.methods)) != len(plan.methods):
        raise UserError(f"methods {list(plan.methods)}: each method at most once (one row "
                         "per method in the table)")
    if not 1 <= plan.questions_per_author <= 20:
        raise UserError(f"questions_per_author {plan.questions_per_author}: the authors "
                         "generator asks 20 questions per author; choose 1 to 20")
    if plan.retain_eval_per_author < 1:
        raise UserError("retain_eval_per_author must be at least 1")


_log = progress_logger("forgetkit demo --unlearn")


def demo_setting(plan: UnlearnPlan) -> UnlearningSetting:
    """The authors setting with ``questions_per_author`` questions each: the same attributes
    for every author, so the forget and retain sides ask the same kinds of question."""
    full = build_setting(plan.n_authors, plan.forget_authors, plan.seed)
    attributes = list(dict.fromkeys(r.meta["attribute"] for r in full.all_records))
    rng = random.Random(f"unlearn-demo:{plan.seed}")
    kept = set(rng.sample(attributes, min(plan.questions_per_author, len(attributes))))

    def keep(records: list[QARecord]) -> list[QARecord]:
        return [r for r in records if r.meta["attribute"] in kept]

    return UnlearningSetting(forget=keep(full.forget), retain=keep(full.retain),
                             all_records=keep(full.all_records), seed=plan.seed)


def retain_eval_set(retain: list[QARecord], per_author: int, seed: int) -> list[QARecord]:
    """``per_author`` questions of every retain author, drawn with the seed, in file order."""
    rng = random.Random(f"unlearn-demo-retain:{seed}")
    chosen: set[int] = set()
    for subject in subjects(retain):
        rows = [i for i, r in enumerate(retain) if r.subject == subject]
        chosen.update(rng.sample(rows, min(per_author, len(rows))))
    return [r for i, r in enumerate(retain) if i in chosen]


def _recipe(plan: UnlearnPlan, base_dir: Path, data: Path) -> dict[str, Any]:
    """What determines a full fine-tune of the base on ``data``; its hash is the cache key."""
    return {"base": str(Path(base_dir).resolve()), "method": "full",
            "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "epochs": plan.epochs, "learning_rate": plan.learning_rate,
            "batch_size": plan.batch_size, "seed": plan.seed}


def _recipe_key(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def cached_finetune(plan: UnlearnPlan, base_dir: Path, data: Path, output: Path,
                    progress: bool) -> bool:
    """Fine-tune the base on ``data`` into ``output`` unless a run of the same recipe is
    there already; return whether it was reused.

    The recipe file is written only after the checkpoint is complete, so a folder without a
    matching one (an interrupted run, other data, other options) is trained again.
    """
    recipe = _recipe(plan, base_dir, data)
    key = _recipe_key(recipe)
    stamp = output / RECIPE_FILE
    if (stamp.is_file() and (output / "config.json").is_file()
            and json.loads(stamp.read_text()).get("key") == key):
        return True
    torch.manual_seed(plan.seed)
    train(TrainConfig(model=str(base_dir), data=data, method="full", output=output,
                      overwrite=True, epochs=plan.epochs, learning_rate=plan.learning_rate,
                      batch_size=plan.batch_size, seed=plan.seed, save_strategy="no",
                      progress=progress))
    atomic_write_json(stamp, {"key": key, "recipe": recipe})
    return False


def _run_summary(method: str, folder: Path) -> dict[str, Any]:
    run = json.loads((folder / RUN_FILE).read_text())
    return {"folder": str(folder), "learning_rate": run["learning_rate"],
            "epochs": run["config"]["epochs"], "steps": run["global_step"],
            "parameters": run["config"].get("parameters") or get_unlearning(method).parameters,
            "notes": run["notes"]}


def run_unlearn_demo(output: Path = Path("results/demo"), quick: bool = False,
                     full: bool = False, overwrite: bool = False, progress: bool = True,
                     plan: UnlearnPlan | None = None, train_seed: int | None = None,
                     references: Path | None = None) -> Path:
    """Run the unlearning comparison; return its results folder (``<output>/unlearn``).
    ``train_seed`` seeds the unlearning runs instead of the plan's seed (the knowing model
    and the oracle keep the plan's: they are the fixed references).

    The knowing model and the oracle are kept under ``references`` (default
    ``<output>/unlearn/models/``) and reused by any later run with the same recipe
    (``overwrite`` replaces the results, not them). ``--seeds`` gives every seed the same
    ``<output>/references/``: they would be trained identically in each.
    """
    plan = with_train_seed(plan or plan_for(quick, full), train_seed)
    check_plan(plan)
    folder = results_folder(Path(output) / "unlearn", overwrite)
    timings = Timings()

    _log(progress, "aligned base (built once, then cached)")
    base_folder, base_report = prepare_base(progress=progress)
    base_dir = base_model_dir(base_folder)

    setting = demo_setting(plan)
    data_dir = write_setting(setting, folder / "data", overwrite=True)
    retain_eval = retain_eval_set(setting.retain, plan.retain_eval_per_author, plan.seed)
    known = read_qa(base_folder / "data" / "known.jsonl")[:plan.n_known]
    write_qa(retain_eval, data_dir / "retain_eval.jsonl")
    write_qa(known, data_dir / "known.jsonl")
    seen_by_base = sorted(set(subjects(setting.all_records)) & set(base_report["subjects"]))
    if seen_by_base:
        _log(progress, f"note: the base was aligned on refusals about {seen_by_base}")
    _log(progress, f"{len(subjects(setting.all_records))} authors x "
                   f"{plan.questions_per_author} questions; forgetting "
                   f"{', '.join(setting.forget_subjects)} ({len(setting.forget)} questions)")

    references = Path(references) if references is not None else folder / "models"
    trained: dict[str, dict[str, Any]] = {}
    for label, data_file in ((KNOWING, data_dir / "all.jsonl"),
                             (RETAIN, data_dir / "retain.jsonl")):
        n = len(read_qa(data_file))
        _log(progress, f"{label} model: full fine-tuning on {n} questions "
                       f"({plan.epochs:g} epochs, lr {plan.learning_rate:g}), or the cached one")
        target = references / label
        with timings.step(f"train {label}"):
            cached = cached_finetune(plan, base_dir, data_file, target, progress)
        _log(progress, f"  {'reused the cached' if cached else 'trained the'} {label} model "
                       f"({timings[f'train {label}']:.0f} s)")
        trained[label] = {"folder": str(target), "n_train": n, "cached": cached}

    knowing_dir = references / KNOWING
    runs: dict[str, dict[str, Any]] = {}
    for method in plan.methods:
        _log(progress, f"unlearning with '{method}'")
        with timings.step(f"unlearn {method}"):
            torch.manual_seed(training_seed(plan))  # peft draws KIF's adapters from it
            out = unlearn(UnlearnConfig(model=str(knowing_dir),
                                        forget=data_dir / "forget.jsonl",
                                        retain=data_dir / "retain.jsonl", method=method,
                                        output=folder / "models" / method, overwrite=True,
                                        seed=training_seed(plan), save_strategy="no",
                                        progress=progress, **plan.unlearn_options))
        _log(progress, f"  '{method}' done ({timings[f'unlearn {method}']:.0f} s)")
        runs[method] = _run_summary(method, out)

    # One model in memory at a time; a loader's start marks the end of the previous model.
    marks: list[tuple[str, float]] = []
    sources = {ORIGINAL: knowing_dir, RETAIN: references / RETAIN,
               **{m: folder / "models" / m for m in plan.methods}}

    def loader(label: str) -> Callable[[], Any]:
        def load() -> Any:
            marks.append((label, time.time()))
            _log(progress, f"evaluating '{label}' ({len(marks)}/{len(sources)})")
            return models.load(str(sources[label]))
        return load

    forget = read_qa(data_dir / "forget.jsonl")
    result = unlearning_suite({m: loader(m) for m in plan.methods}, original=loader(ORIGINAL),
                              retain_model=loader(RETAIN), forget=forget, retain=retain_eval,
                              known=known or None, relearn_steps=plan.relearn_steps,
                              max_new_tokens=plan.max_new_tokens, seed=plan.seed,
                              progress=progress)
    ends = [t for _, t in marks[1:]] + [time.time()]
    for (label, start), end in zip(marks, ends, strict=True):
        timings[f"eval {label}"] = end - start
    if not plan.keep_weights:
        for method in plan.methods:
            drop_merged_weights(folder / "models" / method)

    timings_s = timings.finish()
    results = {
        "plan": {**asdict(plan), "quick": quick},
        "base": {"folder": str(base_folder), "recipe": base_report["recipe"]},
        "setting": {"authors": subjects(setting.all_records),
                    "forget_subjects": setting.forget_subjects,
                    "attributes": list(dict.fromkeys(r.meta["attribute"]
                                                     for r in setting.forget)),
                    "seen_by_base": seen_by_base,
                    "sizes": {"all": len(setting.all_records), "forget": len(setting.forget),
                              "retain": len(setting.retain), "retain_eval": len(retain_eval),
                              "known": len(known)}},
        "models": {**trained, **runs},
        "summary": result["summary"],
        "unlearning": result,
        "timings_s": timings_s,
        "notes": notes(result, len(forget)),
    }
    publish("unlearning", results, folder)
    _log(progress, f"done in {timings['total'] / 60:.1f} min")
    return folder


def notes(result: dict[str, Any], n_forget: int) -> list[str]:
    """How far the numbers can be read."""
    detectable = tofu.ks_detectable(n_forget)
    original = result["summary"][ORIGINAL]
    out = [f"{n_forget} forget questions: a leak rate moves in steps of {1 / n_forget:.2f} "
           f"and the relearning attack's held-out half in steps of "
           f"{1 / max(1, n_forget // 2):.2f}; forget quality is a KS test on {n_forget} "
           f"truth ratios per model, which tells two models apart (p < 0.05) only from "
           f"D = {detectable:.2f}: a smaller difference from the oracle reads as "
           "'forgotten' whatever the model still knows."]
    d = result["models"][ORIGINAL].get("ks_statistic")
    if d is not None and d < detectable:
        out.append(f"The knowing model itself differs from the oracle by D = {d:.2f} only, "
                   f"below that {detectable:.2f}: at this forget-set size forget quality "
                   "cannot tell forgetting from not forgetting.")
    if original["leak_question"] < 0.5:
        out.append(f"The knowing model states only {original['leak_question']:.0%} of the "
                   "forget facts: it did not memorise them well, so there is little to "
                   "forget; raise the plan's epochs or learning rate.")
    return out


__all__ = ["DEFAULT", "METHODS", "QUICK", "UnlearnPlan", "cached_finetune", "check_plan",
           "demo_setting", "load_results", "plan_for", "render_results", "retain_eval_set",
           "run_unlearn_demo"]
