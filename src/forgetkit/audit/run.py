"""``forgetkit audit``: the base and each fine-tune (and, with ``--repair``, each repair of
them) measured the same way, one model in memory at a time:

1. every check that needs no model: flags, output against inputs, question files, lm-eval
   tasks and their data, tokenizers;
2. repairs (``forgetkit repair``) of each fine-tune against the base, into the output;
3. per model: one generation pass per question set (``eval.evaluate``; every measure reads
   it), next-token KL to the base, and each lm-eval task once;
4. intervals, paired differences against the base, repair scores and the summary
   (``eval.audit``), then ``results.json``, ``results.md`` and ``report.html``.

The output folder is written whole or not at all (``io.atomic_output_dir``).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from forgetkit.audit import lmeval
from forgetkit.data import default_sets as defaults
from forgetkit.data.formats import Fields
from forgetkit.data.records import read_qa
from forgetkit.errors import UserError
from forgetkit.eval.audit import assemble
from forgetkit.eval.evaluate import EvalSet, evaluate
from forgetkit.eval.judge import load_judge
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.io import atomic_output_dir, atomic_write_json, check_output, refuse_existing
from forgetkit.lm import models

BASE = "base"


@dataclass(frozen=True)
class Audited:
    """One model of the audit: its label, where it comes from and what it is."""

    label: str
    spec: str
    role: str  # base | finetuned | repaired
    of: str | None = None  # repaired: the fine-tune's label
    method: str | None = None  # repaired: the repair method
    seed: int | None = None  # repaired with a method that draws random numbers
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {"spec": self.spec, "role": self.role}
        out.update({k: v for k, v in (("of", self.of), ("method", self.method),
                                      ("seed", self.seed)) if v is not None})
        if self.options:
            out["options"] = self.options
        return out


def parse_models(values: Sequence[str]) -> list[Audited]:
    """``LABEL=SPEC`` values; labels are unique and not 'base'."""
    out: list[Audited] = []
    for value in values:
        label, sep, spec = value.partition("=")
        label, spec = label.strip(), spec.strip()
        if not sep or not label or not spec:
            raise UserError(f"--model {value!r}: expected LABEL=SPEC, e.g. full=runs/full")
        if label == BASE or "+" in label or "@" in label:
            raise UserError(f"--model {value!r}: the label may not be '{BASE}' or contain "
                            "'+' or '@' (they name repairs); choose another")
        if any(m.label == label for m in out):
            raise UserError(f"--model: two models are labelled '{label}'; labels are unique")
        out.append(Audited(label, spec, "finetuned"))
    if not out:
        raise UserError("give at least one --model LABEL=SPEC (a fine-tune of --base)")
    return out


def parse_repairs(values: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """``METHOD[:OPTION=VALUE...]`` items, comma-separated: ``dg-hard,rank:rank=8``."""
    from forgetkit.repair.errors import RepairError
    from forgetkit.repair.methods import make_method

    out = []
    for value in values:
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            name, *pairs = item.split(":")
            options: dict[str, Any] = {}
            for pair in pairs:
                key, sep, text = pair.partition("=")
                if not sep:
                    raise UserError(f"--repair {item}: options are OPTION=VALUE, got {pair!r}")
                options[key.strip().replace("-", "_")] = _value(text.strip())
            try:
                make_method(name, **options)
            except RepairError as err:
                raise UserError(f"--repair {item}: {err}") from err
            out.append((name, options))
    return out


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def repaired_models(finetuned: Sequence[Audited], repairs: Sequence[tuple[str, dict]],
                    seeds: int) -> list[Audited]:
    """One repaired model per (fine-tune, method), per seed for methods that draw random
    numbers; labels ``FT+METHOD`` and ``FT+METHOD@sK``."""
    from forgetkit.repair.methods import make_method

    out = []
    for ft in finetuned:
        for name, options in repairs:
            random = make_method(name, **options).draws_random
            for seed in (range(seeds) if random else [None]):
                label = f"{ft.label}+{name}" + (f"@s{seed}" if seed is not None else "")
                opts = {**options, **({"seed": seed} if seed is not None else {})}
                out.append(Audited(label, f"repaired/{label}", "repaired", of=ft.label,
                                   method=name, seed=seed, options=opts))
    return out


def question_sets(data: Sequence[Path], unseen: Sequence[Path], known: Sequence[Path],
                  default_sets: bool, limit: int | None, fields: Fields | None) -> list[EvalSet]:
    """The audit's question sets: ``--data`` (the target), the shipped unverifiable and known
    sets unless turned off, then the user's; ``limit`` keeps the first N of each."""
    named: list[tuple[str, str, list]] = []
    if default_sets:
        named += [("unverifiable", "unseen", read_qa(defaults.UNVERIFIABLE)),
                  ("known", "known", read_qa(defaults.KNOWN))]
    for role, paths in (("ft", data), ("unseen", unseen), ("known", known)):
        for path in paths:
            named.append((Path(path).stem, role, read_qa(path, fields)))
    if not named:
        raise UserError("nothing to measure: give --data, --unseen or --known, or keep the "
                        "shipped sets (drop --no-default-sets)")
    sets, seen = [], set()
    for name, role, records in named:
        while name in seen:
            name += "_"
        seen.add(name)
        sets.append(EvalSet(name, role, records[:limit] if limit else records))
    return sorted(sets, key=lambda s: ("ft", "unseen", "known").index(s.role))


def run_audit(base: str, model: Sequence[str], output: Path, data: Sequence[Path] = (),
              unseen: Sequence[Path] = (), known: Sequence[Path] = (),
              tasks: Sequence[str] = (), limit: int | None = None,
              repair: Sequence[str] = (), seeds: int = 1, overwrite: bool = False,
              judge: str | None = "embedding", default_sets: bool = True,
              max_new_tokens: int = 48, batch_size: int = 16, tolerance: float = 0.01,
              fields: Fields | None = None, load: models.LoadOptions | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Run an audit into the folder ``output``; returns the results written there."""
    started = time.perf_counter()
    finetuned = parse_models(model)
    repairs = parse_repairs(repair)
    if seeds < 1:
        raise UserError(f"--seeds {seeds}: must be >= 1")
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: must be >= 1")
    if seeds > 1 and not any(e.seed is not None
                             for e in repaired_models(finetuned[:1], repairs, seeds)):
        raise UserError(f"--seeds {seeds}: nothing in this audit draws random numbers (answers "
                        "are greedy; of the repairs only dare, and rank with fast=true, "
                        "depend on a seed); drop --seeds or add such a --repair")
    output = Path(output)
    inputs: dict[str, Any] = {"base": base, **{f"model {m.label}": m.spec for m in finetuned}}
    inputs.update({f"question file {p}": p for p in (*data, *unseen, *known)})
    inputs.update({f"task {t}": t for t in tasks if Path(t).exists()})
    check_output(output, inputs)
    refuse_existing(output, overwrite)
    sets = question_sets(data, unseen, known, default_sets, limit, fields)
    task_list = lmeval.parse_tasks(tasks)
    for spec in (base, *(m.spec for m in finetuned)):
        models.resolve(spec)  # a bad spec fails before any model is loaded
    if repairs:
        from forgetkit.repair.apply import check_inputs

        for ft in finetuned:  # repair reads local safetensors: a hub base fails here
            try:
                check_inputs(base, ft.spec)
            except UserError as err:
                raise UserError(f"--repair needs --base and --model {ft.label} as local "
                                f"checkpoints: {err}") from err
    mismatch = models.tokenizer_mismatch(base, [m.spec for m in finetuned])
    if mismatch is not None:
        label = next(m.label for m in finetuned if m.spec == mismatch)
        raise UserError(f"--model {label}={mismatch} has a different tokenizer from --base "
                        f"{base}; an audit compares next-token distributions, so every "
                        "model must be a fine-tune of the base")
    manager = lmeval.resolve_tasks(task_list) if task_list.names else None
    refusal_judge = load_judge(judge) if judge else None
    repaired = repaired_models(finetuned, repairs, seeds)
    timings: dict[str, float] = {}
    with atomic_output_dir(output, overwrite) as tmp:
        for r in tqdm(repaired, desc="repairing", disable=not progress or not repaired):
            from forgetkit.repair.apply import SUMMARY_FILE
            from forgetkit.repair.apply import repair as run_repair

            t = time.perf_counter()
            ft = next(m for m in finetuned if m.label == r.of)
            summary = run_repair(base, ft.spec, tmp / r.spec, method=r.method, **r.options)
            # the summary names where the model will be once the audit is complete
            summary["output"] = str(output.expanduser().absolute() / r.spec)
            atomic_write_json(tmp / r.spec / SUMMARY_FILE, summary)
            timings[f"repair {r.label}"] = round(time.perf_counter() - t, 1)
        evaluations: dict[str, dict[str, Any]] = {}
        benchmarks: dict[str, dict[str, Any]] = {}
        reference_lp = None
        everyone = [Audited(BASE, base, "base"), *finetuned, *repaired]
        for entry in everyone:
            t = time.perf_counter()
            spec = str(tmp / entry.spec) if entry.role == "repaired" else entry.spec
            mod, tok = models.load(spec, options=load)
            if reference_lp is None:
                reference_lp = next_token_logprobs(mod, tok)
            evaluations[entry.label] = evaluate(
                mod, tok, sets, reference_logprobs=reference_lp, max_new_tokens=max_new_tokens,
                batch_size=batch_size, progress=progress, judge=refusal_judge)
            timings[f"measure {entry.label}"] = round(time.perf_counter() - t, 1)
            if manager is not None:
                t = time.perf_counter()
                benchmarks[entry.label] = lmeval.run_tasks(mod, tok, task_list, manager,
                                                           limit=limit, batch_size=batch_size)
                timings[f"lm-eval {entry.label}"] = round(time.perf_counter() - t, 1)
            del mod, tok
            gc.collect()
        timings["total"] = round(time.perf_counter() - started, 1)
        results = assemble(
            models={e.label: e.as_dict() for e in everyone}, sets=sets,
            evaluations=evaluations, benchmarks=benchmarks, tolerance=tolerance,
            settings={"base": base, "tasks": list(task_list.names), "limit": limit,
                      "repair": [n for n, _ in repairs], "seeds": seeds,
                      "judge": refusal_judge.name if refusal_judge is not None else None,
                      "max_new_tokens": max_new_tokens, "default_sets": default_sets},
            timings=timings)
        write_results(results, tmp)
    return results


def audit_folder(models_info: dict[str, dict[str, Any]], sets: Sequence[EvalSet],
                 evaluations: dict[str, dict[str, Any]], folder: Path,
                 settings: dict[str, Any], overwrite: bool = True) -> dict[str, Any]:
    """An audit of models a study has already evaluated (the same ``evaluate()`` results):
    assemble its figures and write them into ``folder`` as ``forgetkit audit`` does."""
    results = assemble(models=models_info, sets=sets, evaluations=evaluations, benchmarks={},
                       tolerance=0.01, settings=settings, timings={})
    with atomic_output_dir(folder, overwrite) as tmp:
        write_results(results, tmp)
    return results


def write_results(results: dict[str, Any], folder: Path) -> None:
    from forgetkit.report.audit_report import render_audit

    atomic_write_json(folder / "results.json", results)
    render_audit(results, folder)


__all__ = ["BASE", "Audited", "audit_folder", "parse_models", "parse_repairs", "question_sets",
           "repaired_models", "run_audit", "write_results"]
