"""The unlearning study's ``results.md``: the setting, the unlearning report and the timings.

Kept apart from ``studies/unlearning.py`` so that re-rendering (``forgetkit report``) loads
no model or training code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forgetkit.io import atomic_write_text
from forgetkit.report.unlearning_tables import render_unlearning


def render_results(results: dict[str, Any], folder: Path) -> Path:
    """Write ``results.md``: the setting, the unlearning report and the timings."""
    plan, setting = results["plan"], results["setting"]
    sizes = setting["sizes"]
    runs = {m: r for m, r in results["models"].items() if "steps" in r}
    lines = [
        "# Unlearning demo: KIF and its baselines against the retain-model oracle",
        "",
        f"{len(setting['authors'])} fictitious authors x {plan['questions_per_author']} "
        f"questions; forgotten: {', '.join(setting['forget_subjects'])} ({sizes['forget']} "
        f"questions), kept: the other {sizes['retain']}. `original` is the knowing model "
        f"(aligned base, full fine-tuning on every author, {plan['epochs']:g} epochs, lr "
        f"{plan['learning_rate']:g}); `retain` is the oracle (same recipe, retain authors "
        f"only). Every method unlearns the knowing model with its default options: "
        + ", ".join(f"{m} ({r['parameters']}, lr {r['learning_rate']:g}, "
                    f"{r['steps']} step{'' if r['steps'] == 1 else 's'})" for m, r in runs.items())
        + f". Evaluated on the forget set, {sizes['retain_eval']} retain questions and "
        f"{sizes['known']} world facts.",
        "",
        render_unlearning(results["unlearning"]).rstrip(),
        "",
        "## Notes",
        "",
        *[f"* {n}" for n in results["notes"]],
        "",
        "## Timings",
        "",
        "| step | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.0f} |" for k, v in results["timings_s"].items()],
    ]
    atomic_write_text(folder / "results.md", "\n".join(lines) + "\n")
    return folder


__all__ = ["render_results"]
