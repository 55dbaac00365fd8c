"""Benchmarks through lm-evaluation-harness, on models forgetkit has already loaded.

``--tasks`` takes lm-eval task names and paths to task YAML files or folders of them. The
paths become include paths of lm-eval's ``TaskManager``, so a local task (``dataset_path:
json`` over a local file) runs with no network; a name needs its dataset from the hub or
the datasets cache. Every task is resolved and its data loaded once before any model is
(``resolve_tasks``), so a missing task or dataset fails before the long work.

A loaded model is handed to lm-eval through its ``HFLM`` wrapper, never loaded again. Each
task reports lm-eval's own aggregate and standard error per metric and, where lm-eval's
per-document records carry a number, the per-document values, in document order: those
are what the paired intervals against the base read (``eval.intervals``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from forgetkit.errors import UserError


@dataclass(frozen=True)
class Tasks:
    """What ``--tasks`` named: lm-eval task names, and the folders to include for them."""

    names: tuple[str, ...]
    include: tuple[str, ...]


class _AnyTagLoader(yaml.SafeLoader):
    """Reads lm-eval task YAML, whose ``!function`` tags name Python code: kept as text."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _task_names_in(path: Path) -> list[str]:
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_AnyTagLoader)
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"--tasks {path}: not a readable task YAML ({err})") from err
    if not isinstance(config, dict):
        return []
    named = config.get("task") or config.get("group")
    names = named if isinstance(named, list) else [named]
    return [str(n) for n in names if isinstance(n, str)]


def parse_tasks(values: Sequence[str]) -> Tasks:
    """Split ``--tasks`` values (comma lists allowed) into names and include folders: a YAML
    file contributes its folder and its task name, a folder is included whole and every
    task defined in it is run."""
    names: list[str] = []
    include: list[str] = []
    for value in values:
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            path = Path(item).expanduser()
            if path.suffix in (".yaml", ".yml"):
                if not path.is_file():
                    raise UserError(f"--tasks {item}: no such task file")
                found = _task_names_in(path)
                if not found:
                    raise UserError(f"--tasks {item}: the file names no task (no 'task:' "
                                    "key); give an lm-eval task YAML")
                include.append(str(path.resolve().parent))
                names += found
            elif path.is_dir():
                found = [n for f in sorted(path.rglob("*.y*ml")) for n in _task_names_in(f)]
                if not found:
                    raise UserError(f"--tasks {item}: the folder holds no lm-eval task YAML")
                include.append(str(path.resolve()))
                names += found
            elif os.sep in item or item.startswith("."):
                raise UserError(f"--tasks {item}: no such file or folder")
            else:
                names.append(item)
    return Tasks(tuple(dict.fromkeys(names)), tuple(dict.fromkeys(include)))


def _quiet_lm_eval() -> None:
    for name in ("lm_eval", "lm-eval"):
        logging.getLogger(name).setLevel(logging.ERROR)


def task_manager(tasks: Tasks) -> Any:
    from lm_eval.tasks import TaskManager

    _quiet_lm_eval()
    return TaskManager(include_path=list(tasks.include) or None)


def resolve_tasks(tasks: Tasks) -> Any:
    """Check every task exists and its data loads; returns the task manager to reuse."""
    from lm_eval.tasks import get_task_dict

    manager = task_manager(tasks)
    unknown = [n for n in tasks.names if not manager.match_tasks([n])]
    if unknown:
        raise UserError(f"--tasks: lm-eval knows no task {', '.join(unknown)}; give a task "
                        "name lm-eval lists (`lm-eval ls tasks`) or the path of a task YAML")
    try:
        get_task_dict(list(tasks.names), manager)
    except Exception as err:  # a dataset that cannot be reached or read
        raise UserError(f"--tasks {', '.join(tasks.names)}: lm-eval could not load the task "
                        f"data ({type(err).__name__}: {str(err)[:300]}); a task name needs "
                        "its dataset from the hub or the datasets cache, a local task YAML "
                        "a readable data file") from err
    return manager


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def run_tasks(model: Any, tokenizer: Any, tasks: Tasks, manager: Any,
              limit: int | None = None, batch_size: int = 16,
              max_length: int | None = None) -> dict[str, Any]:
    """Run ``tasks`` on a loaded model; ``{task: {metric: {value, stderr, n, per_doc}}}``
    plus each metric's direction (``higher_is_better``) as lm-eval declares it."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    _quiet_lm_eval()
    was_training = model.training
    model.eval()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size,
              **({"max_length": max_length} if max_length else {}))
    out = simple_evaluate(model=lm, tasks=list(tasks.names), task_manager=manager, limit=limit,
                          log_samples=True, random_seed=0, numpy_random_seed=0,
                          torch_random_seed=0, fewshot_random_seed=0)
    model.train(was_training)
    better = out.get("higher_is_better", {})
    samples = out.get("samples", {})
    report: dict[str, Any] = {}
    for task, values in out["results"].items():
        metrics: dict[str, Any] = {}
        for key, value in values.items():
            metric, _, filt = key.partition(",")
            if not filt or metric.endswith("_stderr") or _number(value) is None:
                continue
            stderr = _number(values.get(f"{metric}_stderr,{filt}"))
            docs = sorted(samples.get(task, []), key=lambda s: s["doc_id"])
            per_doc = [_number(s.get(metric)) for s in docs if s.get("filter") == filt]
            name = metric if filt == "none" else f"{metric},{filt}"
            metrics[name] = {
                "value": float(value), "stderr": stderr,
                "n": int(out.get("n-samples", {}).get(task, {}).get("effective", len(per_doc))
                         or len(per_doc)),
                "higher_is_better": better.get(task, {}).get(metric),
                "per_doc": per_doc if per_doc and None not in per_doc else None,
            }
        if metrics:
            report[task] = metrics
    return report


__all__ = ["Tasks", "parse_tasks", "resolve_tasks", "run_tasks", "task_manager"]
