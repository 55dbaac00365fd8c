"""``forgetkit demo``: the SEAT paper's experiment in miniature, on the embedded model.

aligned base (cached) -> synthetic knowledge (contracts; authors with ``--full``) ->
fine-tune with each method -> evaluate FT score, IDK on unseen questions (made-up concepts,
held-out entities of the same kind, and of the other kind: the cross-dataset case),
known-question accuracy and KL to the base -> results.json, results.md, PNG charts.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from forgetkit.data.records import QARecord, read_qa, write_qa
from forgetkit.data.synth import synth
from forgetkit.eval.evaluate import EvalSet, evaluate, headline
from forgetkit.eval.ignorance import answers_from_evaluation, ignorance_suite, pca_figure
from forgetkit.eval.judge import load_judge
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.io import atomic_write_json
from forgetkit.lm import models
from forgetkit.studies.base import base_model_dir, prepare_base
from forgetkit.studies.repair import (
    REPAIRS_ALL,
    REPAIRS_DEFAULT,
    REPAIRS_QUICK,
    repair_finetune,
)
from forgetkit.studies.study import (
    Timings,
    choose_plan,
    load_results,
    progress_logger,
    publish,
    results_folder,
    training_seed,
    with_train_seed,
)
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import RUN_FILE, train

KINDS = ("contracts", "authors")

# Learning rates for 12 epochs on ~24 questions of a 135M model (DESIGN.md, testbed): the
# papers' 1e-5 / 2e-5 learn nothing in that budget here. Sparse methods move 20% of the
# weights and get a larger rate, as the SEAT paper does (1e-5 full vs 2e-5 sparse); 6e-4 is
# where `forgetkit sweep` found SEAT learning the facts (3e-4 learned a third of them).
DEMO_LEARNING_RATES = {"full": 5e-5, "lora": 3e-4, "sparse": 6e-4, "seat": 6e-4,
                       "full-kl": 5e-5, "ewc": 5e-5, "replay": 5e-5, "rtuning": 5e-5,
                       "clora": 3e-4}


@dataclass(frozen=True)
class DemoPlan:
    """Sizes, methods and hyperparameters of a demo run."""

    seed: int = 7  # the data
    # training seed (data order, adapters, masks, perturbations); None: ``seed``
    train_seed: int | None = None
    datasets: tuple[str, ...] = ("contracts",)
    methods: tuple[str, ...] = ("full", "lora", "seat")
    n_train_questions: int = 24  # drawn from n_train_entities entities
    n_train_entities: int = 2
    # 60 questions per unseen set: an IDK difference of 0.2 between two models, paired on
    # the same questions, has a 95% interval that excludes 0 unless over 60% of the
    # questions go different ways (README, "How far the numbers can be read")
    n_heldout_entities: int = 3
    n_heldout_questions: int = 60
    n_unverifiable: int = 60
    epochs: float = 12.0
    batch_size: int = 8
    learning_rates: dict[str, float] = field(default_factory=lambda: dict(DEMO_LEARNING_RATES))
    # options of one method's runs; LoRA as in the SEAT paper's baseline: r 8, alpha 32
    method_options: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"lora": {"lora_alpha": 32.0}})
    sparsity_sweep: tuple[float, ...] = ()  # extra seat runs, one per sparsity
    # post-hoc repairs of the first dataset's `full` run (studies/repair.py)
    repair_methods: tuple[str, ...] = REPAIRS_DEFAULT
    # the training monitor (train/monitor.py): the curves of every run; None turns it off
    monitor_every: int | None = 12
    monitor_size: int = 8


DEFAULT = DemoPlan()
QUICK = DemoPlan(methods=("full", "lora"), n_train_questions=16, n_train_entities=1,
                 n_heldout_entities=1, n_heldout_questions=12, n_unverifiable=12, epochs=6.0,
                 repair_methods=REPAIRS_QUICK)
FULL = DemoPlan(datasets=KINDS, methods=("full", "lora", "sparse", "seat", "full-kl", "ewc",
                                         "replay", "rtuning", "clora"),
                sparsity_sweep=(0.5, 0.9, 0.95), repair_methods=REPAIRS_ALL)


def plan_for(quick: bool = False, full: bool = False) -> DemoPlan:
    return choose_plan(DEFAULT, {"quick": (quick, QUICK), "full": (full, FULL)},
                       "choose --quick or --full, not both")


_log = progress_logger("forgetkit demo")


def _entities(kind: str, plan: DemoPlan, exclude: set[str]) -> tuple[list[QARecord], ...]:
    """Training questions and held-out questions of one kind, on disjoint entities."""
    rng = random.Random(f"{plan.seed}:{kind}")
    records = [r for r in synth(kind, plan.n_train_entities + plan.n_heldout_entities + 2,
                                seed=plan.seed) if r.subject not in exclude]
    subjects = list(dict.fromkeys(r.subject for r in records))
    train_s = set(subjects[:plan.n_train_entities])
    held_s = set(subjects[plan.n_train_entities:plan.n_train_entities
                          + plan.n_heldout_entities])
    train_pool = [r for r in records if r.subject in train_s]
    held_pool = [r for r in records if r.subject in held_s]
    return (rng.sample(train_pool, min(plan.n_train_questions, len(train_pool))),
            rng.sample(held_pool, min(plan.n_heldout_questions, len(held_pool))))


def demo_data(plan: DemoPlan, exclude_subjects: set[str],
              known: list[QARecord]) -> dict[str, list[QARecord]]:
    """Every question set of the demo, none about an entity the base was built with."""
    data: dict[str, list[QARecord]] = {}
    for kind in KINDS:
        data[f"train_{kind}"], data[f"heldout_{kind}"] = _entities(kind, plan, exclude_subjects)
    data["unverifiable"] = [r for r in synth("unverifiable", plan.n_unverifiable * 2,
                                             seed=plan.seed + 1)
                            if r.subject not in exclude_subjects][:plan.n_unverifiable]
    data["known"] = known
    return data


def eval_sets(data: dict[str, list[QARecord]], trained_on: str) -> list[EvalSet]:
    """The sets a model fine-tuned on ``trained_on`` is scored on (names without the kind,
    so tables line up across datasets; ``heldout_other`` is the cross-dataset case)."""
    other = next(k for k in KINDS if k != trained_on)
    return [EvalSet("train", "ft", data[f"train_{trained_on}"]),
            EvalSet("unverifiable", "unseen", data["unverifiable"]),
            EvalSet("heldout_same", "unseen", data[f"heldout_{trained_on}"]),
            EvalSet("heldout_other", "unseen", data[f"heldout_{other}"]),
            EvalSet("known", "known", data["known"])]


@dataclass(frozen=True)
class Run:
    """One fine-tuning run of the demo."""

    dataset: str
    method: str
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)


def runs_of(plan: DemoPlan) -> list[Run]:
    runs = [Run(d, m, m) for d in plan.datasets for m in plan.methods]
    runs += [Run(plan.datasets[0], "seat", f"seat@{s:g}", {"sparsity": s})
             for s in plan.sparsity_sweep]
    return runs


def run_demo(output: Path = Path("results/demo"), quick: bool = False, full: bool = False,
             overwrite: bool = False, progress: bool = True,
             plan: DemoPlan | None = None, repair_all: bool = False,
             train_seed: int | None = None) -> Path:
    """Run the whole demo; return the results folder. ``repair_all``: repair the full
    fine-tune with every repair method, not only the default ones; ``train_seed``: train
    with this seed instead of the plan's."""
    plan = with_train_seed(plan or plan_for(quick, full), train_seed)
    if repair_all:
        plan = replace(plan, repair_methods=REPAIRS_ALL)
    output = results_folder(output, overwrite)
    timings = Timings()

    _log(progress, "aligned base (built once, then cached)")
    with timings.step("prepare_base"):
        base_folder, base_report = prepare_base(progress=progress)
        base_dir = base_model_dir(base_folder)
    for stage in ("before", "after"):
        sets = base_report[stage]["sets"]
        _log(progress, f"  base {stage} alignment: IDK on held-out fictitious "
                       f"{sets['heldout_fictitious']['metrics']['idk_sm']:.2f}, known accuracy "
                       f"{sets['known']['metrics']['accuracy']:.2f}")

    data = demo_data(plan, set(base_report["subjects"]),
                     read_qa(base_folder / "data" / "known.jsonl"))
    data_dir = output / "data"
    for name, records in data.items():
        write_qa(records, data_dir / f"{name}.jsonl")

    with timings.step("eval_base"):
        base_model, base_tok = models.load(str(base_dir))
        reference_lp = next_token_logprobs(base_model, base_tok)
        judge = load_judge(None)
        evaluations: dict[str, dict[str, Any]] = {}
        ignorance: dict[str, dict[str, Any]] = {}
        activations: dict[str, dict[str, Any]] = {}
        base_activations: dict[tuple[str, ...], Any] = {}  # read once, shared by every model

        def assess(key: str, model, tok, dataset: str) -> None:
            """The shared generation pass, then the ignorance suite reading its answers."""
            sets = eval_sets(data, dataset)
            ev = evaluate(model, tok, sets, reference_logprobs=reference_lp, progress=progress,
                          judge=judge)
            acts: dict[str, Any] = {}
            ign = ignorance_suite(model, tok, base_model, base_tok, sets,
                                  answers=answers_from_evaluation(ev), judge=judge,
                                  progress=progress, activations_out=acts,
                                  base_cache=base_activations)
            evaluations[key], ignorance[key] = ev, ign
            activations[key] = {k: acts[k] for k in ("known", "train", "unverifiable")}

        for dataset in plan.datasets:
            _log(progress, f"evaluating the base on the {dataset} sets")
            assess(f"{dataset}/base", base_model, base_tok, dataset)

    curves: dict[str, dict[str, Any] | None] = {}
    for run in runs_of(plan):
        n = len(data[f"train_{run.dataset}"])
        _log(progress, f"fine-tuning '{run.label}' on {n} {run.dataset} questions "
                       f"({plan.epochs:g} epochs)")
        with timings.step(f"train {run.dataset}/{run.label}"):
            config = TrainConfig(model=str(base_dir),
                                 data=data_dir / f"train_{run.dataset}.jsonl",
                                 method=run.method,
                                 output=output / "models" / run.dataset / run.label,
                                 overwrite=True, epochs=plan.epochs, batch_size=plan.batch_size,
                                 learning_rate=plan.learning_rates.get(run.method),
                                 seed=training_seed(plan), save_strategy="no",
                                 progress=progress, **monitor_options(plan, data_dir, run.dataset),
                                 **{**plan.method_options.get(run.method, {}),
                                    **run.overrides})
            trained_dir = train(config)
            curves[f"{run.dataset}/{run.label}"] = run_record(trained_dir).get("monitor")
        with timings.step(f"eval {run.dataset}/{run.label}"):
            model, tokenizer = models.load(str(trained_dir))
            assess(f"{run.dataset}/{run.label}", model, tokenizer, run.dataset)
            del model

    repair_results = None
    if plan.repair_methods and "full" in plan.methods:  # DG-Hard: repair the full fine-tune
        dataset = plan.datasets[0]
        repair_results, repaired = repair_finetune(
            base_dir, output / "models" / dataset / "full", output / "models" / dataset /
            "repaired", plan.repair_methods, eval_sets(data, dataset),
            evaluations[f"{dataset}/base"], evaluations[f"{dataset}/full"], reference_lp,
            judge=judge, dataset=dataset, progress=progress, timings=timings)
        evaluations.update({f"{dataset}/repaired/{m}": ev for m, ev in repaired.items()})

    for dataset in plan.datasets:  # SEAT Figure 2: one panel per model
        panels = {k.split("/", 1)[1]: v for k, v in activations.items()
                  if k.startswith(f"{dataset}/") and "@" not in k}
        pca_figure(panels, output / f"pca_{dataset}.png", fit_on="unverifiable",
                   layer=pca_layer(base_model))
    timings_s = timings.finish()
    results = {
        "plan": {**asdict(plan), "quick": quick, "full": full},
        "base": {"folder": str(base_folder), "recipe": base_report["recipe"],
                 "before": headline(base_report["before"]),
                 "after": headline(base_report["after"])},
        "sizes": {name: len(records) for name, records in data.items()},
        "models": {name: {**headline(ev), "ias": ignorance[name]["ias"]["model"],
                          "ia_reduction": ignorance[name]["ia_reduction"]}
                   for name, ev in evaluations.items() if name in ignorance},  # repaired: below
        "drift": {name: {s: {"l2": v["drift_l2"], "along_ignorance": v["drift_along_ignorance"]}
                         for s, v in ign["sets"].items()}
                  for name, ign in ignorance.items()},
        "judge": judge.name,
        "curves": {k: v for k, v in curves.items() if v},
        "repair": repair_results,
        "timings_s": timings_s,
    }
    atomic_write_json(output / "evaluations.json", {"evaluations": evaluations,
                                                    "ignorance": ignorance})
    for dataset in plan.datasets:  # the same evaluations, as an audit with intervals
        audit_study(output, dataset, evaluations, eval_sets(data, dataset), base_dir,
                    judge.name)
    publish("seat", results, output)
    _log(progress, f"done in {timings['total'] / 60:.1f} min")
    return output


def monitor_options(plan: DemoPlan, data_dir: Path, dataset: str) -> dict[str, Any]:
    """The monitor of every run: the training questions, the demo's unverifiable questions
    and its held-out entities of the same kind, the known questions (``monitor_size`` of
    each, every ``monitor_every`` steps)."""
    if plan.monitor_every is None:
        return {}
    return {"monitor_every": plan.monitor_every, "monitor_size": plan.monitor_size,
            "monitor_unseen": [data_dir / "unverifiable.jsonl",
                               data_dir / f"heldout_{dataset}.jsonl"],
            "monitor_known": [data_dir / "known.jsonl"]}


def run_record(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / RUN_FILE).read_text())


def audit_study(output: Path, dataset: str, evaluations: dict[str, dict[str, Any]],
                sets: list, base_dir: Path, judge: str) -> None:
    """``audit_<dataset>/``: the base, each fine-tune and each repair of the full fine-tune
    on ``dataset``, as ``forgetkit audit`` reports them (intervals, paired differences from
    the base, repair scores, question browser), from the evaluations the study made."""
    from forgetkit.audit.run import audit_folder

    info: dict[str, dict[str, Any]] = {}
    chosen: dict[str, dict[str, Any]] = {}
    for key, ev in evaluations.items():
        ds, _, name = key.partition("/")
        if ds != dataset or "@" in name:
            continue
        if name == "base":
            label, entry = "base", {"spec": str(base_dir), "role": "base"}
        elif name.startswith("repaired/"):
            method = name.split("/", 1)[1]
            label = f"full+{method}"
            entry = {"spec": str(output / "models" / dataset / "repaired" / method),
                     "role": "repaired", "of": "full", "method": method}
        else:
            label, entry = name, {"spec": str(output / "models" / dataset / name),
                                  "role": "finetuned"}
        info[label], chosen[label] = entry, ev
    info = {"base": info.pop("base"), **info}
    chosen = {label: chosen[label] for label in info}
    audit_folder(info, sets, chosen, output / f"audit_{dataset}",
                 {"base": str(base_dir), "judge": judge, "study": "seat", "dataset": dataset})


def pca_layer(model) -> int:
    """Hidden-state index of the PCA pictures: two thirds of the way up the stack, where
    the known / unknown separation of the aligned base is clear."""
    return (2 * models.num_layers(model)) // 3


__all__ = ["DEFAULT", "FULL", "QUICK", "DemoPlan", "audit_study", "demo_data", "load_results",
           "plan_for", "run_demo", "runs_of"]
