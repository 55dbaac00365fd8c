"""The skeleton every study shares: plan -> data -> runs -> evaluation -> results.json -> report.

A study module (``seat``, ``lfu``, ``unlearning``) picks its plan with ``choose_plan``, claims
its results folder with ``results_folder`` (refusing to replace a finished run unless told
to), logs with a ``progress_logger``, times its steps with ``Timings`` and ends with
``publish``: ``results.json`` written atomically with a ``"study"`` field naming the study,
then the study's report rendered beside it: ``results.md`` and the self-contained
``report.html``.

``STUDIES`` names every kind of results file forgetkit can re-render, and ``render_study``
re-renders any of them (``forgetkit report``): it dispatches on the ``"study"`` field, or for
files written before that field existed on the keys only that study writes, and refuses
anything else with a ``UserError`` before writing a byte. The renderers are imported when
used, so re-rendering loads no model code.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from forgetkit.errors import UserError
from forgetkit.io import atomic_write_json, refuse_existing
from forgetkit.registry import Registry

RESULTS_FILE = "results.json"
REPORT_FILE = "results.md"
HTML_FILE = "report.html"
STUDY_KEY = "study"  # the field of results.json that names its study

P = TypeVar("P")


@dataclass(frozen=True)
class Study:
    """One kind of results file: its name, how to recognise it and how to render it."""

    name: str  # the value of results.json's "study" field
    title: str
    renderer: str  # "module:function" called as function(results, target)
    # Top-level keys that only this study's results carry: how files written before the
    # "study" field are recognised.
    legacy_keys: frozenset[str]
    # "folder": the renderer takes the results' folder and writes results.md there;
    # "file": it takes the JSON path and writes <stem>.md beside it.
    target: str = "folder"
    # whether the renderer writes the HTML page itself; otherwise it is made from the
    # Markdown and the pictures beside it (report.page.markdown_page)
    writes_html: bool = False

    def recognises(self, results: Mapping[str, Any]) -> bool:
        if STUDY_KEY in results:
            return results[STUDY_KEY] == self.name
        return self.legacy_keys <= results.keys()

    def render(self, results: Mapping[str, Any], results_file: Path) -> Path:
        """Write this study's report from ``results`` (read from ``results_file``); return
        the Markdown file written."""
        module, _, function = self.renderer.partition(":")
        render = getattr(importlib.import_module(module), function)
        if self.target == "file":
            markdown, _ = render(results, results_file)
            markdown, page = Path(markdown), Path(markdown).with_suffix(".html")
        else:
            markdown = Path(render(results, results_file.parent)) / REPORT_FILE
            page = markdown.with_name(HTML_FILE)
        if not self.writes_html:
            from forgetkit.io import atomic_write_text
            from forgetkit.report.page import markdown_page

            atomic_write_text(page, markdown_page(markdown, self.title))
        return markdown


STUDIES: Registry[Study] = Registry("study")
STUDIES.register("seat", Study(
    "seat", "SEAT: fine-tuning methods against the aligned base (forgetkit demo)",
    "forgetkit.report.render:render_results", frozenset({"models", "drift"})))
STUDIES.register("lfu", Study(
    "lfu", "LfU: Tables 1 and 4 in miniature (forgetkit demo --lfu)",
    "forgetkit.report.lfu_tables:render_lfu_results", frozenset({"models", "attack"})))
STUDIES.register("unlearning", Study(
    "unlearning", "KIF and its baselines against the retain oracle (forgetkit demo --unlearn)",
    "forgetkit.studies.unlearning_report:render_results",
    frozenset({"setting", "summary", "unlearning"})))
STUDIES.register("repair", Study(
    "repair", "repairs scored against (base, fine-tuned) (forgetkit eval --compare)",
    "forgetkit.report.repair_tables:render_comparison",
    frozenset({"base", "finetuned", "repaired", "measures", "scores"}), target="file"))
STUDIES.register("audit", Study(
    "audit", "forgetkit audit: base, fine-tunes and repairs with intervals",
    "forgetkit.report.audit_report:render_audit", frozenset({"settings", "measures", "questions"}),
    writes_html=True))
STUDIES.register("seeds", Study(
    "seeds", "a study over several training seeds (forgetkit demo --seeds N)",
    "forgetkit.report.seeds_tables:render_seeds",
    frozenset({"of", "train_seeds", "rows"})))


def study_of(results: Any, source: Path | str = RESULTS_FILE) -> Study:
    """The study that wrote ``results``; a ``UserError`` naming ``source`` if none did."""
    expected = (f"a JSON object with a \"{STUDY_KEY}\" field naming one of "
                f"{', '.join(STUDIES.names())}, as `forgetkit audit`, `forgetkit demo` and "
                "`forgetkit eval --compare` write")
    if not isinstance(results, Mapping):
        raise UserError(f"{source}: not a forgetkit results file; expected {expected}")
    if STUDY_KEY in results and results[STUDY_KEY] not in STUDIES:
        raise UserError(f"{source}: unknown study {results[STUDY_KEY]!r}; expected {expected}")
    found = [s for s in STUDIES.values() if s.recognises(results)]
    if len(found) != 1:
        raise UserError(f"{source}: not a forgetkit results file; expected {expected}"
                        + ("" if found else f" (top-level keys: {', '.join(sorted(results))})"))
    return found[0]


def load_results(folder: Path | str) -> dict[str, Any]:
    """``results.json`` of a study's folder."""
    return json.loads((Path(folder) / RESULTS_FILE).read_text())


def render_study(path: Path | str) -> Path:
    """Re-render the report of any study from its results folder or results file; return the
    Markdown file written. Nothing is written unless the file is recognised."""
    path = Path(path)
    results_file = path / RESULTS_FILE if path.is_dir() else path
    if not results_file.is_file():
        raise UserError(f"{results_file}: no such results file; give a study's results folder "
                        f"or its {RESULTS_FILE}")
    try:
        results = json.loads(results_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{results_file}: not a forgetkit results file; expected JSON "
                        f"({err})") from err
    study = study_of(results, results_file)
    try:
        return study.render(results, results_file)
    except (KeyError, TypeError, IndexError, AttributeError, StopIteration) as err:
        raise UserError(f"{results_file}: looks like {study.name} results but cannot be "
                        f"rendered ({type(err).__name__}: {err}); re-run the study that "
                        "wrote it") from err


def publish(study: str, results: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The last steps of every study: ``results.json`` (atomic, with the study's name), then
    its report beside it. Returns the results as written."""
    written = {STUDY_KEY: STUDIES.get(study).name, **results}
    results_file = atomic_write_json(Path(folder) / RESULTS_FILE, written)
    STUDIES.get(study).render(written, results_file)
    return written


def results_folder(folder: Path | str, overwrite: bool) -> Path:
    """The folder a study writes into; a finished run there is replaced only with
    ``overwrite``."""
    folder = Path(folder)
    refuse_existing(folder / RESULTS_FILE, overwrite)
    return folder


def choose_plan(default: P, variants: Mapping[str, tuple[bool, P]], conflict: str) -> P:
    """The plan of the one variant flag set (``{"quick": (quick, QUICK), ...}``), else
    ``default``; more than one set is refused with ``conflict``."""
    chosen = [plan for on, plan in variants.values() if on]
    if len(chosen) > 1:
        raise UserError(conflict)
    return chosen[0] if chosen else default


def training_seed(plan: Any) -> int:
    """The seed a study's runs train with: the plan's ``train_seed``, else its data seed."""
    return plan.seed if plan.train_seed is None else plan.train_seed


def with_train_seed(plan: P, train_seed: int | None) -> P:
    """``plan`` with its training seed set (unchanged for None)."""
    return plan if train_seed is None else replace(plan, train_seed=train_seed)  # type: ignore[type-var]


def drop_merged_weights(folder: Path) -> None:
    """Delete a run's merged weights (~0.5 GB each for the bundled model); its run record,
    adapter and signatures stay, and the weights can be rebuilt from them."""
    for f in Path(folder).glob("model*.safetensors*"):
        f.unlink()


def progress_logger(tag: str) -> Callable[[bool, str], None]:
    """``log(progress, message)`` printing ``[tag] message`` when ``progress`` is on."""
    def log(progress: bool, message: str) -> None:
        if progress:
            print(f"[{tag}] {message}", flush=True)
    return log


class Timings(dict[str, float]):
    """Wall seconds per step, in the order the steps finished, plus ``total``."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.time()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.time()
        yield
        self[name] = time.time() - t0

    def finish(self) -> dict[str, float]:
        """Record ``total`` and return every step rounded to 0.1 s, for results.json."""
        self["total"] = time.time() - self.started
        return {k: round(v, 1) for k, v in self.items()}


__all__ = ["REPORT_FILE", "RESULTS_FILE", "STUDIES", "STUDY_KEY", "Study", "Timings",
           "choose_plan", "drop_merged_weights", "load_results", "progress_logger", "publish",
           "render_study", "results_folder", "study_of", "training_seed", "with_train_seed"]
