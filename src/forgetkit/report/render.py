"""Results -> a Markdown table and a bar chart a person can read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forgetkit.io import atomic_write_text

# (column title, key in a model's headline, higher is better?)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("FT score (ROUGE-1 recall)", "train/rouge1_recall", True),
    ("FT ROUGE-L recall", "train/rougeL_recall", True),
    ("IDK unverifiable", "unverifiable/idk_sm", True),
    ("IDK held-out contracts", "heldout_contracts/idk_sm", True),
    ("known accuracy", "known/accuracy", True),
    ("KL to base (nats/token)", "kl_to_base", False),
)

PAPER_NOTE = (
    "The SEAT paper reports that full fine-tuning on a small QA set drives IDK on unseen "
    "questions from about 1.0 to about 0.0 while the FT score reaches about 1.0.")


def markdown_table(models: dict[str, dict[str, float]],
                   columns: tuple[tuple[str, str, bool], ...] = COLUMNS) -> str:
    present = [c for c in columns if any(c[1] in m for m in models.values())]
    head = "| model | " + " | ".join(f"{title} {'↑' if up else '↓'}"
                                      for title, _, up in present) + " |"
    rule = "|---|" + "---:|" * len(present)
    rows = [f"| {name} | " + " | ".join(
        f"{m[key]:.3f}" if key in m else "–" for _, key, _ in present) + " |"
        for name, m in models.items()]
    return "\n".join([head, rule, *rows])


def bar_chart(models: dict[str, dict[str, float]], path: Path,
              columns: tuple[tuple[str, str, bool], ...] = COLUMNS) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in columns if c[2] and any(c[1] in m for m in models.values())]
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(1.8 * len(shown) + 2, 4))
    for i, (name, m) in enumerate(models.items()):
        xs = [j + i * width for j in range(len(shown))]
        bars = ax.bar(xs, [m.get(key, 0.0) for _, key, _ in shown], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(shown))])
    ax.set_xticklabels([title.replace(" (", "\n(") for title, _, _ in shown], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("score (higher is better)")
    ax.legend(fontsize=8, ncol=len(models))
    ax.set_title("What fine-tuning keeps and loses")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def render_results(results: dict[str, Any], folder: Path) -> Path:
    """Write results.md and results.png beside results.json."""
    folder = Path(folder)
    models = results["models"]
    lines = ["# forgetkit demo results", "",
             markdown_table(models), "",
             "Base alignment (SmolLM2 -> ignorance-aware base), measured on held-out checks:", ""]
    base = results.get("base", {})
    for stage in ("before", "after"):
        if stage in base:
            h = base[stage]
            lines.append(f"- {stage}: IDK on held-out fictitious questions "
                         f"{h.get('heldout_fictitious/idk_sm', float('nan')):.2f}, "
                         f"known accuracy {h.get('known/accuracy', float('nan')):.2f}")
    sizes = results.get("sizes", {})
    if sizes:
        lines += ["", "Question sets: " + ", ".join(f"{k} {v}" for k, v in sizes.items())]
    timings = results.get("timings_s", {})
    if timings:
        lines += ["", "Wall time (s): " + ", ".join(f"{k} {v}" for k, v in timings.items())]
    lines += ["", PAPER_NOTE, "", "![results](results.png)", ""]
    atomic_write_text(folder / "results.md", "\n".join(lines))
    bar_chart(models, folder / "results.png")
    return folder
