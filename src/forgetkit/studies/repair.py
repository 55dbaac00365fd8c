"""The demo's repair step: DG-Hard and baselines on the full fine-tune, scored like the paper.

fine-tuned checkpoint + aligned base -> ``repair()`` with each method (data-free) -> the
demo's evaluation of each repaired model (same question sets, KL to the same base, same
judge) -> partition-conditional scores against (base, fine-tuned) -> ``results["repair"]``.

Cost on SmolLM2-135M with 2 cores: a repair takes about 0.5-2 minutes and an evaluation about
1 minute, so the default demo runs only ``REPAIRS_DEFAULT``; ``--repair-all`` and ``--full``
run every registered method.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from forgetkit.errors import UserError
from forgetkit.eval.compare import comparison_measures, score_comparison
from forgetkit.eval.evaluate import EvalSet, evaluate
from forgetkit.eval.judge import RefusalJudge
from forgetkit.lm import models
from forgetkit.repair import REPAIR_METHODS, repair
from forgetkit.studies.study import progress_logger

REPAIRS_QUICK = ("dg-hard",)
REPAIRS_DEFAULT = ("dg-hard", "wise-ft")
REPAIRS_ALL = ("dg-hard", "gd-shrink", "rank", "wise-ft", "dare", "ties-trim", "magnitude")
# The fixed-rank baseline gets DG-Hard's mean kept rank when DG-Hard ran first (the same
# budget of directions, spread evenly), else this.
FALLBACK_RANK = 64

_log = progress_logger("forgetkit demo")  # a step of the SEAT study


def _options(method: str, summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Options of each method in the demo: the library defaults, plus a rank for ``rank``."""
    if method != "rank":
        return {}
    mean = summaries.get("dg-hard", {}).get("totals", {}).get("mean_kept_rank")
    return {"rank": max(1, round(mean)) if mean else FALLBACK_RANK}


def repair_finetune(base_dir: Path, finetuned_dir: Path, output: Path, methods: Sequence[str],
                    sets: Sequence[EvalSet], base_eval: dict[str, Any],
                    finetuned_eval: dict[str, Any],
                    reference_logprobs: Sequence[torch.Tensor] | None,
                    judge: RefusalJudge | None = None, finetuned_label: str = "full",
                    dataset: str = "", tolerance: float = 0.01, progress: bool = True,
                    timings: dict[str, float] | None = None,
                    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Repair ``finetuned_dir`` against ``base_dir`` with each method into ``output/<method>``,
    evaluate each result like the other models, and score it.

    ``base_eval`` and ``finetuned_eval`` are the demo's ``evaluate()`` results of the two
    reference models on the same ``sets`` with the same ``reference_logprobs``.
    Returns ``(section, evaluations)``: the JSON-ready comparison for ``results["repair"]``
    and each repaired model's full evaluation (answers included).
    """
    unknown = [m for m in methods if m not in REPAIR_METHODS]
    if unknown:
        raise UserError(f"unknown repair method(s) {unknown}; known: {list(REPAIR_METHODS)}")
    if not methods:
        raise UserError("no repair methods given")
    if finetuned_label == "base" or finetuned_label in methods:
        raise UserError(f"the fine-tune's label '{finetuned_label}' clashes with a row name")
    timings = {} if timings is None else timings
    # DG-Hard first: the fixed-rank baseline reads its kept ranks.
    ordered = sorted(dict.fromkeys(methods), key=lambda m: m != "dg-hard")
    summaries: dict[str, dict[str, Any]] = {}
    evaluations: dict[str, dict[str, Any]] = {}
    for method in ordered:
        _log(progress, f"repairing '{finetuned_label}' with {method}")
        t0 = time.time()
        summaries[method] = repair(base_dir, finetuned_dir, Path(output) / method,
                                   method=method, overwrite=True, **_options(method, summaries))
        timings[f"repair {method}"] = time.time() - t0
        t0 = time.time()
        model, tok = models.load(str(Path(output) / method))
        evaluations[method] = evaluate(model, tok, sets, reference_logprobs=reference_logprobs,
                                       progress=progress, judge=judge)
        del model
        timings[f"eval repaired {method}"] = time.time() - t0
    measures = {"base": comparison_measures(base_eval),
                finetuned_label: comparison_measures(finetuned_eval),
                **{m: comparison_measures(ev) for m, ev in evaluations.items()}}
    section = score_comparison(measures, "base", finetuned_label, ordered, tolerance)
    section["dataset"] = dataset
    section["repairs"] = {
        m: {"folder": str(Path(output) / m), "options": s["options"],
            "totals": {k: s["totals"][k] for k in ("repaired", "energy_kept", "mean_kept_rank",
                                                   "seconds")}}
        for m, s in summaries.items()}
    return section, evaluations


__all__ = ["FALLBACK_RANK", "REPAIRS_ALL", "REPAIRS_DEFAULT", "REPAIRS_QUICK",
           "repair_finetune"]
