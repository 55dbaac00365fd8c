"""The unlearning suite's result as Markdown tables: forgetting, hiding and latent traces
side by side (``eval.unlearning.unlearning_suite`` output).

The side-by-side table is the one KIF argues from: a method that only hides the answer
has low leakage next to a latent trace and a relearned leak near the original's; a method
that erased the fact sits near the retain model (the oracle) in every column. Arrows say
which way is more forgotten; the target is the retain model's row, not the extreme.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgetkit.eval.registry import METRICS
from forgetkit.io import atomic_write_text
from forgetkit.report.markdown import headed, interval_cell

# The summary keys of the side-by-side table, in column order.
SIDE_BY_SIDE_KEYS = ("forget_quality", "model_utility", "forget_probability", "leak_question",
                     "leak_worst", "latent_trace", "relearn_leak_after")
# A column that shows another measure before its own value: key -> (that measure, title).
PAIRED = {"relearn_leak_after": ("relearn_leak_before", "relearn: leak before → after")}


def _column(key: str) -> tuple[str, str, bool | None]:
    metric = METRICS.get(key)
    title = PAIRED[key][1] if key in PAIRED else metric.title
    return title, key, metric.higher_is_better


# (column title, summary key, higher is better for forgetting?) - None: no direction.
SIDE_BY_SIDE: tuple[tuple[str, str, bool | None], ...] = tuple(
    _column(key) for key in SIDE_BY_SIDE_KEYS)
# TOFU's per-set columns, then the KS statistic and forget quality.
TOFU_COLUMNS = (("forget", "probability"), ("forget", "rougeL_recall"),
                ("forget", "truth_ratio"), ("retain", "probability"),
                ("retain", "rougeL_recall"), ("retain", "truth_ratio"))

FAMILY_TITLES = {"question": "question", "paraphrase": "paraphrase",
                 "answer_prefix": "answer prefix", "in_context": "in-context hint"}


def _fmt(value: float | None, digits: int = 3) -> str:
    # Not ``markdown.fmt``: values below 10^-digits are written in scientific notation here.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if 0 < abs(value) < 10 ** -digits:
        return f"{value:.1e}"  # forget quality p-values can be tiny and still matter
    return f"{value:.{digits}f}"


def side_by_side_table(result: Mapping[str, Any]) -> str:
    """One row per model: forget quality, utility, leakage, latent trace, relearned leak."""
    summary = result["summary"]
    head = "| model | " + " | ".join(headed(t, up) for t, _, up in SIDE_BY_SIDE) + " |"
    rule = "|---|" + "---:|" * len(SIDE_BY_SIDE)
    body = [f"| {label} | " + " | ".join(_cell(row, key) for _, key, _ in SIDE_BY_SIDE)
            + " |" for label, row in summary.items()]
    return "\n".join([head, rule, *body])


def _cell(row: Mapping[str, Any], key: str) -> str:
    if key in PAIRED:
        # The held-out half's own baseline is needed to read a recovery.
        if row.get(key) is None:
            return "–"
        return f"{_fmt(row.get(PAIRED[key][0]), 2)} → {_fmt(row[key], 2)}"
    return _fmt(row.get(key))


# The side-by-side columns that are means over questions, shown with their intervals.
INTERVAL_KEYS = ("forget_probability", "leak_question", "leak_worst", "latent_trace",
                 "relearn_leak_after")


def interval_table(result: Mapping[str, Any]) -> str:
    """The per-question columns with 95% intervals and a mark where a model differs from the
    retain model beyond the noise; forget quality with its KS statistic and n."""
    intervals, summary = result["intervals"], result["summary"]
    n = result["settings"]["n_forget"]
    keys = [k for k in INTERVAL_KEYS if k in next(iter(intervals.values()))]
    head = ("| model | " + " | ".join(headed(METRICS.get(k).title, METRICS.get(k).higher_is_better)
                                      for k in keys)
            + f" | {METRICS.get('forget_quality').title} (KS D, n) |")
    rule = "|---|" + "---:|" * (len(keys) + 1)
    body = []
    for label, entry in intervals.items():
        cells = [interval_cell(entry[k], 2, _fmt) for k in keys]
        if "leak_worst" in keys:
            family = entry["worst_family"]
            cells[keys.index("leak_worst")] += f" ({FAMILY_TITLES.get(family, family)})"
        row = summary[label]
        test = (f"{_fmt(row['forget_quality'])} (D={_fmt(row.get('ks_statistic'), 2)}, "
                f"n={n})")
        body.append(f"| {label} | " + " | ".join(cells) + f" | {test} |")
    return "\n".join([head, rule, *body])


def leakage_table(result: Mapping[str, Any]) -> str:
    """Leak rate per extraction prompt family (and its n), one row per model."""
    rows = result["models"]
    families = list(next(iter(rows.values()))["leakage"])
    first = next(iter(rows.values()))["leakage"]
    head = ("| model | " + " | ".join(f"{FAMILY_TITLES.get(f, f)} (n={first[f]['n']})"
                                      for f in families) + " |")
    rule = "|---|" + "---:|" * len(families)
    body = [f"| {label} | " + " | ".join(_fmt(r["leakage"][f]["leak_rate"]) for f in families)
            + " |" for label, r in rows.items()]
    return "\n".join([head, rule, *body])


RECOVERY_KEYS = ("entity_recovery", "name_agnostic_recovery", "surface_mention_rate",
                 "extraction_likelihood")


def recovery_table(result: Mapping[str, Any]) -> str:
    """The KIF paper's later measures, one row per model, each heading with its n."""
    rows = result["models"]
    first = next(iter(rows.values()))["recovery"]
    el_n = first["extraction_likelihood"]["n_gram"]
    titles = [f"{METRICS.get(k).title}{f' (EL_{el_n})' if k == 'extraction_likelihood' else ''}"
              f" (n={first[k]['n']})" for k in RECOVERY_KEYS]
    head = ("| model | " + " | ".join(headed(t, False) for t in titles)
            + f" | {headed(METRICS.get('utility_drift').title, None)} |")
    rule = "|---|" + "---:|" * (len(RECOVERY_KEYS) + 1)
    body = [f"| {label} | " + " | ".join(_fmt(result["summary"][label][k], 2)
                                          for k in RECOVERY_KEYS)
            + f" | {_fmt(result['summary'][label]['utility_drift'], 3)} |"
            for label in rows]
    return "\n".join([head, rule, *body])


def latent_table(result: Mapping[str, Any]) -> str:
    """Readout accuracy per hidden-state index, one row per model; chance in the title row."""
    rows = result["models"]
    layers = next(iter(rows.values()))["latent"]["layers"]
    head = "| model | " + " | ".join(f"layer {layer}" for layer in layers) + " |"
    rule = "|---|" + "---:|" * len(layers)
    body = [f"| {label} | " + " | ".join(_fmt(a, 2) for a in r["latent"]["accuracy"]) + " |"
            for label, r in rows.items()]
    return "\n".join([head, rule, *body])


def tofu_table(result: Mapping[str, Any]) -> str:
    """TOFU's columns: probability, ROUGE-L recall and truth ratio on forget and retain."""
    cols = TOFU_COLUMNS
    head = ("| model | " + " | ".join(METRICS.get(k).heading(s) for s, k in cols)
            + f" | {METRICS.get('ks_statistic').title} | {METRICS.get('forget_quality').title} |")
    rule = "|---|" + "---:|" * (len(cols) + 2)
    body = [f"| {label} | " + " | ".join(_fmt(r[s].get(k)) for s, k in cols)
            + f" | {_fmt(r['ks_statistic'])} | {_fmt(r['forget_quality'])} |"
            for label, r in result["models"].items()]
    return "\n".join([head, rule, *body])


def render_unlearning(result: Mapping[str, Any], path: Path | None = None) -> str:
    """The whole report as Markdown; written atomically to ``path`` when given."""
    settings = result["settings"]
    chance = next(iter(result["models"].values()))["latent"]["chance"]
    lines = [
        "## Unlearning: forgetting, hiding and latent traces side by side",
        "",
        f"{settings['n_forget']} forget and {settings['n_retain']} retain questions"
        + (f", {settings['n_known']} world facts" if settings.get("n_known") else "")
        + ". `original`: the model before unlearning; `retain`: the oracle never trained on "
        "the forget set.",
        "",
        side_by_side_table(result),
        "",
        "Forget quality: KS-test p-value of forget-set truth ratios against the retain model. "
        "Leak: share of generations containing the forgotten fact (worst: the highest of the "
        f"prompt families). Latent trace: a linear readout fitted on the original recovers "
        f"the true answer among its perturbed ones (mean over intermediate layers; chance "
        f"{chance:.2f}). Relearning: leak on held-out forget questions before and after "
        f"{settings['relearn_steps']} fine-tuning steps on the other half. The retain row is "
        "the target of every column.",
        "",
        *([
            "### With 95% intervals",
            "",
            interval_table(result),
            "",
            "Wilson intervals for the leak rates, bootstrap over questions for the forget "
            "probability and the latent trace. ▲/▼: the paired difference from the retain "
            "model on the same questions (prompts) has a 95% interval that excludes 0; a cell "
            "without a mark is indistinguishable from the oracle at this n. The worst family "
            "is each model's own, asked of the retain model for the comparison. Forget "
            "quality is a test, not an estimate: its KS statistic D and the number of truth "
            "ratios per side stand beside the p-value.",
            "",
        ] if result.get("intervals") else []),
        "### TOFU metrics",
        "",
        tofu_table(result),
        "",
        "### Leak rate by prompt family",
        "",
        leakage_table(result),
        "",
        "### Latent readout accuracy by layer",
        "",
        latent_table(result),
        *([
            "",
            "### Can the subject be recovered?",
            "",
            recovery_table(result),
            "",
            "The measures of the KIF paper's later version, in forgetkit's reading "
            "(`eval.recovery`): entity recovery, answers that name the subject when given "
            "some of its facts without the name (asked plainly and with the answer started); "
            "name-agnostic recovery, forget questions asked without the name that still get "
            "the fact; surface mention rate, answers to those that name the subject anyway; "
            "extraction likelihood, word n-grams of the answer's rest recovered from its "
            "first words; utility drift, model utility's relative change from the original.",
        ] if "recovery" in next(iter(result["models"].values())) else []),
    ]
    text = "\n".join(lines) + "\n"
    if path is not None:
        atomic_write_text(path, text)
    return text


__all__ = ["INTERVAL_KEYS", "PAIRED", "RECOVERY_KEYS", "SIDE_BY_SIDE", "SIDE_BY_SIDE_KEYS",
           "TOFU_COLUMNS", "interval_table", "latent_table", "leakage_table", "recovery_table",
           "render_unlearning", "side_by_side_table", "tofu_table"]
