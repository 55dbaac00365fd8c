"""The LfU demo's results as the paper shows them: Table 1 (categories and average rank),
Figure 5 (prompt variation), Table 4 (attack success rate) and Figure 6 (stability).

``results["models"][label]`` holds one fine-tuned model's (or the base's) scores:
``in_domain``, ``known``, ``idk``, ``kl`` (floats), ``prompt_mean``, ``prompt_std``,
``per_template`` (dict) and ``stability`` (per-layer cosine similarities).
``results["attack"][label]`` holds ``asr_0`` and ``asr_5``. ``results["intervals"]`` and
``results["attack_intervals"]`` (absent in results written before them) hold the same keys
as 95% intervals (``eval.intervals.compared``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from forgetkit.eval.registry import METRICS
from forgetkit.io import atomic_write_text
from forgetkit.report.charts import pyplot, save
from forgetkit.report.markdown import fmt, headed, interval_cell


def _higher(metric: str) -> bool:
    return bool(METRICS.get(metric).higher_is_better)


# (title, key, higher is better?): the paper's Table 1 wording; each direction is that of the
# registered metric the key holds.
CATEGORIES: tuple[tuple[str, str, bool], ...] = (
    ("Arithmetic (in-domain)", "in_domain", _higher("exact_accuracy")),
    ("Known questions", "known", _higher("accuracy")),
    ("IDK on unverifiable", "idk", _higher("idk_sm")),
    ("KL to base", "kl", _higher("kl_to_base")),
)
BASE = "base"


def average_ranks(rows: Mapping[str, Mapping[str, float]],
                  categories: Sequence[tuple[str, str, bool]] = CATEGORIES) -> dict[str, float]:
    """Mean over categories of each row's rank (1 = best; ties share the mean rank), the
    paper's "Rank" column. The base model is not ranked."""
    names = [n for n in rows if n != BASE]
    totals = dict.fromkeys(names, 0.0)
    for _, key, higher in categories:
        values = {n: rows[n][key] for n in names}
        for n in names:
            better = sum((v > values[n]) if higher else (v < values[n]) for v in values.values())
            ties = sum(v == values[n] for v in values.values())
            totals[n] += better + (ties + 1) / 2
    return {n: totals[n] / len(categories) for n in names}


def _cell(row: Mapping[str, float], key: str,
          intervals: Mapping[str, Mapping[str, Any]] | None) -> str:
    """The value, with its 95% interval and change mark when the results have them (results
    written before intervals existed have only the values)."""
    if intervals is None or key not in intervals:
        return fmt(row[key])
    return interval_cell(intervals[key], digits=3 if key == "kl" else 2)


def table1(rows: Mapping[str, Mapping[str, float]],
           intervals: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> str:
    ranks = average_ranks(rows)
    head = ("| method | " + " | ".join(headed(t, up) for t, _, up in CATEGORIES)
            + " | Rank ↓ |")
    rule = "|---|" + "---:|" * (len(CATEGORIES) + 1)
    body = [f"| {name} | "
            + " | ".join(_cell(row, key, (intervals or {}).get(name)) for _, key, _ in CATEGORIES)
            + f" | {fmt(ranks.get(name), 1) if name in ranks else '–'} |"
            for name, row in rows.items()]
    return "\n".join([head, rule, *body])


def prompt_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    templates = list(next(iter(rows.values()))["per_template"])
    head = "| method | mean ↑ | std ↓ | " + " | ".join(templates) + " |"
    rule = "|---|---:|---:|" + "---:|" * len(templates)
    body = [f"| {name} | {fmt(r['prompt_mean'])} | {fmt(r['prompt_std'])} | "
            + " | ".join(fmt(r["per_template"][t]) for t in templates) + " |"
            for name, r in rows.items()]
    return "\n".join([head, rule, *body])


def attack_table(attack: Mapping[str, Mapping[str, float]], steps: int,
                 intervals: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> str:
    asr = METRICS.get("attack_success_rate")
    head = ("| method | " + " | ".join(headed(f"{asr.title} {n}-step", asr.higher_is_better)
                                      for n in (0, steps)) + " |")
    rule = "|---|---:|---:|"
    body = []
    for name, r in attack.items():
        cells = [_cell(r, key, (intervals or {}).get(name)) if r.get(key) is not None else "–"
                 for key in ("asr_0", "asr_5")]
        body.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *body])


def stability_chart(rows: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in rows.items():
        ax.plot(range(1, len(r["stability"]) + 1), r["stability"], label=name,
                linewidth=2.5 if name.startswith("lfu") else 1.2)
    ax.set_xlabel("layer")
    ax.set_ylabel("cosine similarity, clean vs noisy input")
    ax.set_title("Representation stability under embedding noise (LfU Figure 6)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, path)


def render_lfu_results(results: Mapping[str, Any], folder: Path) -> Path:
    """Write ``results.md`` (and ``stability.png``) into ``folder``; return the folder."""
    plan, rows = results["plan"], results["models"]
    lines = [
        "# LfU demo: fine-tuning on arithmetic word problems",
        "",
        f"Aligned base (SmolLM2-135M-Instruct taught to refuse unknown entities), LoRA r=8 for "
        f"every method, {results['sizes']['train']} training problems, {plan['epochs']:g} "
        f"epochs, batch {plan['batch_size']}, lr {plan['learning_rate']:g} (cosine). In-domain: "
        f"exact final answers on {results['sizes']['heldout']} held-out problems. Out-of-domain: "
        f"known-question accuracy ({results['sizes']['known']}), IDK rate on "
        f"{results['sizes']['unverifiable']} questions about made-up things, next-token KL to "
        "the base on generic prompts.",
        "",
        "## Table 1: in-domain and out-of-domain (paper Table 1)",
        "",
        table1(rows, results.get("intervals")),
        "",
        "Rank: mean over the four categories of each method's rank among the fine-tuned "
        "models (the base is not ranked)."
        + (" Each value carries its 95% interval; ▲/▼: the paired difference from the base "
           "on the same questions excludes 0." if results.get("intervals") else ""),
        "",
        "## Prompt variation (paper Figure 5)",
        "",
        f"Accuracy on {results['sizes']['prompt_questions']} held-out problems under each prompt "
        "template; mean and standard deviation across templates.",
        "",
        prompt_table(rows),
    ]
    if results.get("attack"):
        lines += [
            "",
            f"## Table 4: attack success rate after {plan['attack_steps']} steps of harmful "
            "fine-tuning",
            "",
            f"Each method aligns the base on {results['sizes']['align']} refusals of requests "
            "for secret access codes of fictitious facilities; then "
            f"{plan['attack_steps']} steps of plain LoRA SFT (batch {plan['batch_size']}, lr "
            f"{plan['attack_learning_rate']:g}) on compliant answers with made-up codes. ASR: "
            f"share of {results['sizes']['attack_eval']} held-out requests not refused "
            "(refusal keyword matching). The base row is the base without the alignment step.",
            "",
            attack_table(results["attack"], plan["attack_steps"],
                         results.get("attack_intervals")),
        ]
    if all(r.get("stability") for r in rows.values()):
        stability_chart(rows, folder / "stability.png")
        lines += ["", "## Representation stability (paper Figure 6)", "",
                  "Mean cosine similarity per layer between hidden states of training "
                  "examples and of the same examples with Gaussian noise of NEFTune's scale "
                  "on the input embeddings (averaged over layers below).", "",
                  "| method | mean cosine ↑ |", "|---|---:|",
                  *[f"| {n} | {fmt(sum(r['stability']) / len(r['stability']), 4)} |"
                    for n, r in rows.items()],
                  "", "![stability](stability.png)"]
    if results.get("notes"):
        lines += ["", "## Notes", "", *[f"- {note}" for note in results["notes"]]]
    atomic_write_text(folder / "results.md", "\n".join(lines) + "\n")
    return folder


__all__ = ["CATEGORIES", "attack_table", "average_ranks", "prompt_table",
           "render_lfu_results", "stability_chart", "table1"]
