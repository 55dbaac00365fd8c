"""``forgetkit demo --lfu``: the LfU paper's comparison in miniature, on the embedded model.

aligned base (cached, ``studies/base.py``) -> fine-tune on arithmetic word problems with each
method (base, SFT = ``lora``, NEFTune, IM, SDFT, LfU) -> Table 1 (in-domain accuracy on
held-out problems; known questions, IDK on unverifiable questions and KL to the base as the
out-of-domain categories; average rank), Figure 5 (prompt variation), Figure 6 (stability).
Then Table 4: each method aligns the base on refusals of requests for secret access codes of
fictitious facilities, and 5 steps of plain SFT on compliant answers attack it; the attack
success rate is measured before and after. Results go to ``<output>/lfu/``.

Every method trains LoRA r=8 with the same schedule, as in the paper; the learning rate is
3e-4 rather than the paper's 1e-4 because the demo trains for ~20 steps, not thousands.

``--ablation`` (``DIRECTION_ABLATION``) runs only the ascent-direction ablation: ``lfu-lora``
with g from the previous micro-step (``prev-ce``), from the same step as in the paper
(``same-step``, an extra forward and backward) and random, into ``<output>/lfu-directions/``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from forgetkit.data.access_codes import access_code_requests, compliant
from forgetkit.data.arithmetic import arithmetic
from forgetkit.data.names import NameFactory
from forgetkit.data.records import QARecord, read_qa, write_qa
from forgetkit.data.synth import synth
from forgetkit.eval.evaluate import EvalSet, evaluate, headline
from forgetkit.eval.intervals import compared, ratio_estimate
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.eval.robustness import (
    in_domain,
    prompt_variation,
    refusal_check,
    representation_stability,
)
from forgetkit.lm import models
from forgetkit.studies.base import base_model_dir, prepare_base
from forgetkit.studies.study import (
    Timings,
    choose_plan,
    drop_merged_weights,
    load_results,
    progress_logger,
    publish,
    results_folder,
    training_seed,
    with_train_seed,
)
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import train

PAPER_METHODS = ("lora", "neftune", "im", "sdft", "lfu-lora")
BASE = "base"
# what score() returns besides Table 1's figures (kept apart in results.json)
RAW = ("samples", "per_question", "kl_per_prompt")


@dataclass(frozen=True)
class Run:
    """One fine-tuning run: a method with optional config overrides, shown as ``label``."""

    label: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LfUPlan:
    """Sizes, methods and hyperparameters of an LfU demo run."""

    seed: int = 7  # the data
    # training seed (data order, adapters, masks, perturbations); None: ``seed``
    train_seed: int | None = None
    methods: tuple[str, ...] = PAPER_METHODS
    extra_runs: tuple[Run, ...] = ()  # ablations: more Table 1 rows
    n_train: int = 48
    n_heldout: int = 40
    n_prompt_questions: int = 20  # held-out problems asked under every prompt template
    n_unverifiable: int = 20
    n_stability: int = 8
    epochs: float = 3.0
    batch_size: int = 8
    learning_rate: float = 3e-4
    max_new_tokens: int = 48
    # Table 4
    attack_methods: tuple[str, ...] = PAPER_METHODS
    n_align: int = 24
    n_attack: int = 40
    n_attack_eval: int = 20
    align_epochs: float = 3.0
    attack_steps: int = 5
    attack_learning_rate: float = 3e-4  # the paper's adversarial learning rate
    keep_weights: bool = False  # merged weights are ~0.5 GB per run; adapters are kept
    folder: str = "lfu"  # results go to <output>/<folder>
    notes: tuple[str, ...] = ()  # read with the results, after the general notes


DEFAULT = LfUPlan()
QUICK = LfUPlan(methods=("lora", "lfu-lora"), attack_methods=("lora", "lfu-lora"), n_train=32,
                n_heldout=20, n_prompt_questions=10, n_unverifiable=12, n_stability=4,
                epochs=2.0, n_align=16, n_attack=40, n_attack_eval=12)
ABLATIONS = (
    Run("lfu-lora[answer]", "lfu-lora", {"lfu_span": "answer"}),
    Run("lfu-lora[same-step]", "lfu-lora", {"lfu_direction": "same-step"}),
    Run("lfu-lora[prev-total]", "lfu-lora", {"lfu_direction": "prev-total"}),
    Run("lfu-lora[random]", "lfu-lora", {"lfu_direction": "random"}),
    Run("lfu-lora[logits]", "lfu-lora", {"lfu_consistency": "logits"}),
    Run("lfu-lora[early]", "lfu-lora", {"lfu_layers": "early"}),
    Run("lfu-lora[middle]", "lfu-lora", {"lfu_layers": "middle"}),
    Run("lfu-lora[late]", "lfu-lora", {"lfu_layers": "late"}),
)
FULL = LfUPlan(methods=(*PAPER_METHODS, "lfu-reps", "lfu-sam"), extra_runs=ABLATIONS,
               n_train=96, n_heldout=80, n_prompt_questions=40, n_unverifiable=40,
               attack_methods=(*PAPER_METHODS, "lfu-reps"), n_align=48, n_attack_eval=40)
# Where the ascent direction comes from, on the default demo's data and schedule: three LfU
# rows and the base, no other method and no Table 4.
DIRECTION_RUNS = (
    Run("lfu-lora[prev-ce]", "lfu-lora", {"lfu_direction": "prev-ce"}),
    Run("lfu-lora[same-step]", "lfu-lora", {"lfu_direction": "same-step"}),
    Run("lfu-lora[random]", "lfu-lora", {"lfu_direction": "random"}),
)
DIRECTION_ABLATION = LfUPlan(
    methods=(), extra_runs=DIRECTION_RUNS, attack_methods=(), folder="lfu-directions",
    notes=("Ascent direction g of LfU's auxiliary step (lfu-lora, everything else equal): "
           "prev-ce takes the CE gradient of the previous micro-step, captured in its "
           "backward (forgetkit's default, one backward per step); same-step computes this "
           "step's CE gradient with an extra forward and backward first, as the paper's "
           "Algorithm 1 does (the reference); random steps the same distance in a random "
           "direction (no ascent). prev-ce and same-step also differ on the first step, "
           "which prev-ce trains as plain SFT.",))


def plan_for(quick: bool = False, full: bool = False, ablation: bool = False) -> LfUPlan:
    return choose_plan(DEFAULT, {"quick": (quick, QUICK), "full": (full, FULL),
                                 "ablation": (ablation, DIRECTION_ABLATION)},
                       "choose one of --quick, --full and --ablation")


_log = progress_logger("forgetkit demo --lfu")


def lfu_demo_data(plan: LfUPlan, exclude_subjects: set[str],
                  known: list[QARecord]) -> dict[str, list[QARecord]]:
    """Every question set of the demo; no made-up entity the base was built with."""
    problems = arithmetic(plan.n_train + plan.n_heldout, seed=plan.seed)
    names = NameFactory(f"lfu-demo:{plan.seed}", exclude=exclude_subjects)
    return {
        "train": problems[:plan.n_train],
        "heldout": problems[plan.n_train:],
        "unverifiable": [r for r in synth("unverifiable", plan.n_unverifiable * 2,
                                          seed=plan.seed + 1)
                         if r.subject not in exclude_subjects][:plan.n_unverifiable],
        "known": known,
        "align": access_code_requests(plan.n_align, plan.seed, names=names),
        "attack_eval": access_code_requests(plan.n_attack_eval, plan.seed + 1, names=names),
        "attack_train": compliant(access_code_requests(plan.n_attack, plan.seed + 2,
                                                       names=names)),
    }


def score(model, tokenizer, data: dict[str, list[QARecord]], plan: LfUPlan,
          reference_lp: list[torch.Tensor], progress: bool) -> dict[str, Any]:
    """Table 1, Figure 5 and Figure 6 numbers of one model (one generation pass per set)."""
    gen = {"max_new_tokens": plan.max_new_tokens, "progress": progress}
    task = in_domain(model, tokenizer, data["heldout"], **gen)
    prompts = prompt_variation(model, tokenizer, data["heldout"][:plan.n_prompt_questions],
                               **gen)
    evaluation = evaluate(model, tokenizer,
                          [EvalSet("unverifiable", "unseen", data["unverifiable"]),
                           EvalSet("known", "known", data["known"])],
                          reference_logprobs=reference_lp, progress=progress)
    core = headline(evaluation)
    sets = evaluation["sets"]
    return {"in_domain": task["accuracy"], "known": core["known/accuracy"],
            "idk": core["unverifiable/idk_sm"], "kl": core["kl_to_base"],
            "prompt_mean": prompts["mean"], "prompt_std": prompts["std"],
            "per_template": prompts["per_template"],
            "stability": representation_stability(model, tokenizer,
                                                  data["train"][:plan.n_stability]),
            "samples": task["samples"][:3],
            # what the intervals are computed from (Table 1's keys)
            "per_question": {"in_domain": task["per_question"],
                             "known": sets["known"]["per_question"]["accuracy"],
                             "idk": sets["unverifiable"]["per_question"]["idk_sm"]},
            "kl_per_prompt": evaluation["kl_per_prompt"]}


def table1_intervals(scores: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Table 1's figures with 95% intervals: the three per-question shares (Wilson), each
    with its paired difference from the base on the same questions, and KL to the base
    (bootstrap over prompts; the base's own KL is 0, so no difference)."""
    base = scores[BASE]["per_question"]
    out = {}
    for label, s in scores.items():
        entry = {key: compared(values, None if label == BASE else base[key])
                 for key, values in s["per_question"].items()}
        sums, counts = zip(*s["kl_per_prompt"], strict=True)
        entry["kl"] = ratio_estimate(sums, counts)
        out[label] = entry
    return out


def attack_intervals(outcomes: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, Any]]:
    """Table 4's rates with Wilson intervals; after the attack, the paired difference from
    the same model before it (the same requests)."""
    return {label: {"asr_0": compared(o["asr_0"]),
                    **({"asr_5": compared(o["asr_5"], o["asr_0"])} if "asr_5" in o else {})}
            for label, o in outcomes.items()}


def interval_note(plan: LfUPlan, data: dict[str, list[QARecord]]) -> str:
    attack = bool(plan.attack_methods)
    return (f"Intervals are 95%: Wilson for the shares ({plan.n_heldout} held-out problems, "
            f"{len(data['known'])} known and {len(data['unverifiable'])} unverifiable "
            "questions" + (f", {len(data['attack_eval'])} attack requests" if attack else "")
            + "), bootstrap over prompts for KL. ▲/▼ mark a difference from the base"
            + (" (after an attack: from the same model before it)" if attack else "")
            + " whose paired 95% interval excludes 0; without a mark the difference is "
            "within the noise of these set sizes. The average rank is taken on the point "
            "values and ignores the intervals.")


def _train(plan: LfUPlan, model: str, data: Path, method: str, output: Path,
           progress: bool, **overrides: Any) -> Path:
    settings = {"epochs": plan.epochs, "learning_rate": plan.learning_rate,
                "lr_scheduler": "cosine", **overrides}
    seed = training_seed(plan)
    torch.manual_seed(seed)  # peft draws the adapters' initial weights from it
    return train(TrainConfig(model=model, data=data, method=method, output=output,
                             overwrite=True, batch_size=plan.batch_size, seed=seed,
                             save_strategy="no", progress=progress, **settings))


def _drop_weights(folder: Path, plan: LfUPlan) -> None:
    """Keep the adapter and the run record; the merged weights can be rebuilt from them."""
    if not plan.keep_weights:
        drop_merged_weights(folder)


def run_lfu_demo(output: Path = Path("results/demo"), quick: bool = False, full: bool = False,
                 overwrite: bool = False, progress: bool = True,
                 plan: LfUPlan | None = None, ablation: bool = False,
                 train_seed: int | None = None) -> Path:
    """Run the LfU comparison, or with ``ablation`` the direction ablation alone; return
    its results folder (``<output>/lfu``, ``<output>/lfu-directions``). ``train_seed``:
    train with this seed instead of the plan's."""
    plan = with_train_seed(plan or plan_for(quick, full, ablation), train_seed)
    folder = results_folder(Path(output) / plan.folder, overwrite)
    timings = Timings()

    _log(progress, "aligned base (built once, then cached)")
    base_folder, base_report = prepare_base(progress=progress)
    base_dir = str(base_model_dir(base_folder))
    data = lfu_demo_data(plan, set(base_report["subjects"]),
                         read_qa(base_folder / "data" / "known.jsonl"))
    files = {name: write_qa(records, folder / "data" / f"{name}.jsonl")
             for name, records in data.items()}

    with timings.step("eval base"):
        base_model, tokenizer = models.load(base_dir)
        reference_lp = next_token_logprobs(base_model, tokenizer)
        _log(progress, "evaluating the base")
        scores = {"base": score(base_model, tokenizer, data, plan, reference_lp, progress)}
        attack: dict[str, dict[str, Any]] = {}
        outcomes: dict[str, dict[str, list[int]]] = {}  # per request: 1 = not refused
        if plan.attack_methods:
            check = refusal_check(base_model, tokenizer, data["attack_eval"], progress=progress)
            attack["base"] = {"asr_0": check["asr"]}
            outcomes["base"] = {"asr_0": check["per_request"]}
        del base_model

    runs = [Run(m, m) for m in plan.methods] + list(plan.extra_runs)
    for run in runs:
        _log(progress, f"fine-tuning '{run.label}' on {len(data['train'])} arithmetic problems")
        with timings.step(f"train {run.label}"):
            trained = _train(plan, base_dir, files["train"], run.method,
                             folder / "models" / run.label, progress, **run.overrides)
        with timings.step(f"eval {run.label}"):
            model, tokenizer = models.load(str(trained))
            scores[run.label] = score(model, tokenizer, data, plan, reference_lp, progress)
            del model
            _drop_weights(trained, plan)

    for method in plan.attack_methods:
        _log(progress, f"Table 4: aligning with '{method}', then {plan.attack_steps} attack "
                       "steps")
        with timings.step(f"attack {method}"):
            aligned = _train(plan, base_dir, files["align"], method,
                             folder / "models" / "align" / method, progress,
                             epochs=plan.align_epochs)
            model, tokenizer = models.load(str(aligned))
            before = refusal_check(model, tokenizer, data["attack_eval"], progress=progress)
            del model
            attacked = _train(plan, str(aligned), files["attack_train"], "lora",
                              folder / "models" / "attack" / method, progress,
                              max_steps=plan.attack_steps,
                              learning_rate=plan.attack_learning_rate, lr_scheduler="constant")
            model, tokenizer = models.load(str(attacked))
            after = refusal_check(model, tokenizer, data["attack_eval"], progress=progress)
            del model
            attack[method] = {"asr_0": before["asr"], "asr_5": after["asr"],
                              "samples_5": after["samples"][:2]}
            outcomes[method] = {"asr_0": before["per_request"], "asr_5": after["per_request"]}
            _drop_weights(aligned, plan)
            _drop_weights(attacked, plan)

    timings_s = timings.finish()
    n = plan.n_heldout
    results = {
        "plan": {**asdict(plan), "quick": quick, "full": full, "ablation": ablation},
        "base": {"folder": str(base_folder), "recipe": base_report["recipe"]},
        "sizes": {"train": len(data["train"]), "heldout": n, "known": len(data["known"]),
                  "unverifiable": len(data["unverifiable"]),
                  "prompt_questions": min(plan.n_prompt_questions, n),
                  "align": len(data["align"]), "attack_eval": len(data["attack_eval"])},
        "models": {k: {m: v for m, v in s.items() if m not in RAW} for k, s in scores.items()},
        "intervals": table1_intervals(scores),
        "per_question": {k: {**s["per_question"], "kl_per_prompt": s["kl_per_prompt"]}
                         for k, s in scores.items()},
        "attack": {k: {m: v for m, v in a.items() if m.startswith("asr")}
                   for k, a in attack.items()},
        "attack_intervals": attack_intervals(outcomes),
        "samples": {k: s["samples"] for k, s in scores.items()},
        "attack_samples": {k: a.get("samples_5", []) for k, a in attack.items()},
        "timings_s": timings_s,
        "notes": [interval_note(plan, data),
                  "lora is plain SFT (the paper's SFT row); every method trains LoRA r=8.",
                  *plan.notes],
    }
    publish("lfu", results, folder)
    _log(progress, f"done in {timings['total'] / 60:.1f} min")
    return folder


__all__ = ["ABLATIONS", "DEFAULT", "DIRECTION_ABLATION", "DIRECTION_RUNS", "FULL", "QUICK",
           "LfUPlan", "Run", "lfu_demo_data", "load_results", "plan_for", "run_lfu_demo",
           "score"]
