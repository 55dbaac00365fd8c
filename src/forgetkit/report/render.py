"""Results -> Markdown tables and charts a person can read.

``results["models"]`` maps ``"<dataset>/<run>"`` (e.g. ``contracts/seat``) to a flat
headline of metrics (``"<set>/<metric>"``, see ``eval.evaluate.headline``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forgetkit.eval.registry import METRICS
from forgetkit.io import atomic_write_text
from forgetkit.report.charts import pyplot, save
from forgetkit.report.curves import curve_chart, curve_table
from forgetkit.report.markdown import fmt, headed
from forgetkit.report.repair_tables import repair_section

# (column title, headline key, higher is better?)
Column = tuple[str, str, bool | None]


def column(key: str, set_title: str | None = None, gloss: bool = True) -> Column:
    """A column of ``key`` (``"<set>/<metric>"`` or a metric name), titled and oriented by
    the metric's registration; ``set_title`` is how this table names the set."""
    metric = METRICS.get(key.rpartition("/")[2])
    return metric.heading(set_title, gloss=gloss), key, metric.higher_is_better


MAIN_COLUMNS: tuple[Column, ...] = (
    column("train/rouge1_recall"),
    column("unverifiable/idk_sm", "unverifiable"),
    column("unverifiable/judged_idk", "unverifiable"),
    column("heldout_same/idk_sm", "held-out same kind"),
    column("heldout_same/judged_idk", "held-out same kind"),
    column("known/accuracy", "known"),
    column("kl_to_base"),
    column("ias"),
    column("ia_reduction"),
)
# SEAT Table 3b and Figure 3c: the FT score and IDK on the unseen sets of the training kind.
ABLATION_COLUMNS: tuple[Column, ...] = (
    column("train/rouge1_recall", gloss=False),
    column("unverifiable/idk_sm", "unverifiable"),
    column("heldout_same/idk_sm", "held-out same kind"),
)
ABLATION = (("seat", "✓", "✓"), ("full-kl", "×", "✓"), ("sparse", "✓", "×"))

PAPER_NOTE = (
    "The SEAT paper reports that full fine-tuning on a small QA set drives IDK on unseen "
    "questions from about 1.0 to about 0.0 while the FT score reaches about 1.0, and that "
    "SEAT keeps FT >= 0.95 and IDK >= 0.8 where full fine-tuning and LoRA fall below 0.2.")


def markdown_table(rows: dict[str, dict[str, float]], columns: tuple[Column, ...],
                   first: str = "model") -> str:
    present = [c for c in columns if any(c[1] in m for m in rows.values())]
    head = f"| {first} | " + " | ".join(headed(title, up) for title, _, up in present) + " |"
    rule = "|---|" + "---:|" * len(present)
    body = [f"| {name} | " + " | ".join(fmt(m.get(key)) for _, key, _ in present) + " |"
            for name, m in rows.items()]
    return "\n".join([head, rule, *body])


def _by_dataset(models: dict[str, dict[str, float]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, metrics in models.items():
        dataset, _, run = key.partition("/")
        out.setdefault(dataset, {})[run] = metrics
    return out


def cross_dataset_table(by_ds: dict[str, dict[str, dict[str, float]]]) -> str | None:
    """SEAT Table 3a: IDK on held-out entities of the *other* kind than the training set."""
    if not by_ds:
        return None
    runs = list(dict.fromkeys(r for rows in by_ds.values() for r in rows if "@" not in r))
    cols = [f"trained on {d} → IDK on unseen {'authors' if d == 'contracts' else 'contracts'}"
            for d in by_ds]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for run in runs:
        vals = [fmt(by_ds[d].get(run, {}).get("heldout_other/idk_sm")) for d in by_ds]
        lines.append(f"| {run} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def ablation_table(rows: dict[str, dict[str, float]]) -> str | None:
    """SEAT Table 3b: which component each variant keeps, and what it scores."""
    present = [(m, s, e) for m, s, e in ABLATION if m in rows]
    if len(present) < 2:
        return None
    lines = ["| variant | sparse | entity perturbation + KL | "
             + " | ".join(headed(title, up) for title, _, up in ABLATION_COLUMNS) + " |",
             "|---|:-:|:-:|" + "---:|" * len(ABLATION_COLUMNS)]
    for m, s, e in present:
        lines.append(f"| {m} | {s} | {e} | "
                     + " | ".join(fmt(rows[m].get(key)) for _, key, _ in ABLATION_COLUMNS)
                     + " |")
    return "\n".join(lines)


def sweep_points(rows: dict[str, dict[str, float]], default_sparsity: float = 0.8
                 ) -> list[tuple[float, dict[str, float]]]:
    points = [(float(r.split("@", 1)[1]), m) for r, m in rows.items() if r.startswith("seat@")]
    if points and "seat" in rows:
        points.append((default_sparsity, rows["seat"]))
    return sorted(points)


def bar_chart(rows: dict[str, dict[str, float]], path: Path, title: str,
              columns: tuple[Column, ...] = MAIN_COLUMNS) -> Path:
    """Shares (0-1) on the left, measures in nats (KL to the base, IA reduction) on their own
    axis on the right: one scale per unit, never a negative log-loss on a 0-1 axis. A value
    of 0 is drawn as a short dark line, so a model that scores 0 is seen, not missed."""
    plt = pyplot()
    shown = [c for c in columns if any(c[1] in m for m in rows.values())]
    units = {c: METRICS.get(c[1].rpartition("/")[2]).unit for c in shown}
    shares = [c for c in shown if units[c] == "share"]
    nats = [c for c in shown if units[c] == "nats" and c[2] is False]  # KL, ΔIA (lower better)
    width = 0.8 / max(len(rows), 1)
    fig, axes = plt.subplots(1, 2, figsize=(1.6 * len(shares) + 1.3 * len(nats) + 3.5, 4.6),
                             gridspec_kw={"width_ratios": [max(len(shares), 1),
                                                           max(len(nats), 1)]})
    for ax, group, label in ((axes[0], shares, "share of questions (higher is better)"),
                             (axes[1], nats, "nats (lower is better)")):
        for i, (name, m) in enumerate(rows.items()):
            xs = [j + i * width for j in range(len(group))]
            values = [m.get(key, float("nan")) for _, key, _ in group]
            bars = ax.bar(xs, values, width, label=name, color=f"C{i}")
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
            zeros = [x for x, v in zip(xs, values, strict=True) if v == 0]
            ax.hlines([0] * len(zeros), [x - width / 2 for x in zeros],
                      [x + width / 2 for x in zeros], colors=f"C{i}", linewidth=3)
        ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(group))])
        ax.set_xticklabels([t.replace(" (", "\n(").replace("IDK ", "IDK\n")
                            for t, _, _ in group], fontsize=8)
        ax.set_ylabel(label, fontsize=9)
        ax.axhline(0, color="#555", linewidth=0.8)
    axes[0].set_ylim(0, 1.15)
    axes[0].legend(fontsize=8, ncol=min(len(rows), 5), loc="upper center")
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def sweep_chart(points: list[tuple[float, dict[str, float]]], path: Path) -> Path:
    """SEAT Figure 3c: FT score and IDK against the share of frozen weights."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    xs = [s for s, _ in points]
    for label, key, _ in ABLATION_COLUMNS:
        ax.plot(xs, [m.get(key, float("nan")) for _, m in points], marker="o", label=label)
    ax.set_xlabel("sparsity (share of frozen weights)")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize=8)
    ax.set_title("SEAT: sparsity sweep")
    fig.tight_layout()
    return save(fig, path)


def drift_chart(drift: dict[str, dict[str, dict[str, list[float]]]], path: Path,
                title: str) -> Path:
    """SEAT Figure 3a/3b: per-layer activation drift from the base, fine-tuning questions
    (solid) against unseen questions (dashed), in total and along the ignorance direction."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, (run, sets) in enumerate(drift.items()):
        color = f"C{i + 1}"  # C0 is the base's colour in the bar chart; the base has no drift
        for name, style in (("train", "-"), ("unverifiable", "--")):
            if name in sets:
                axes[0].plot(sets[name]["l2"], style, color=color, label=f"{run}: {name}")
                axes[1].plot(sets[name]["along_ignorance"], style, color=color)
    axes[0].set_title("drift ||R(θ'; q) − R(θ; q)||")
    axes[1].set_title("drift along the probe's ignorance direction")
    axes[0].set_ylabel("L2 distance of hidden states\n(residual-stream units, mean over questions)")
    axes[1].set_ylabel("signed projection on the unit\ndirection (> 0: towards 'unknown')")
    for ax in axes:
        ax.set_xlabel("layer (hidden-state index; 0 = embeddings)")
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def curve_section(curves: dict[str, Any], dataset: str, folder: Path) -> list[str]:
    """The monitor's curves of the runs on ``dataset``: what each fine-tune learned and lost
    while it trained."""
    mine = {k.split("/", 1)[1]: v for k, v in curves.items()
            if k.startswith(f"{dataset}/") and "@" not in k}
    if not mine:
        return []
    curve_chart(mine, folder / f"curves_{dataset}.png",
                f"Fine-tuned on {dataset}: measured while training")
    sizes = next(iter(mine.values()))["sets"]
    return ["### While training", "",
            "The training monitor (`--monitor-every`, docs/training.md#watching-forgetting) "
            "measured every run every few steps on small slices of the sets ("
            + ", ".join(f"{k} {v}" for k, v in sizes.items()) + " questions): greedy "
            "answers, so these are noisier than the table above.", "",
            f"![curves](curves_{dataset}.png)", "", curve_table(mine), ""]


def time_breakdown(timings: dict[str, float]) -> str:
    """'Time: 11.2 min in all: training 6.1, evaluation 3.9, ...' from a study's timings,
    each step counted under the first word of its name."""
    parts: dict[str, float] = {}
    names = {"train": "training", "eval": "evaluation", "repair": "repairs",
             "prepare_base": "preparing the base", "eval_base": "evaluation"}
    for step, seconds in timings.items():
        if step != "total":
            label = names.get(step, names.get(step.split(" ", 1)[0], step.split(" ", 1)[0]))
            parts[label] = parts.get(label, 0.0) + seconds
    total = timings.get("total", sum(parts.values()))
    return (f"Time: {total / 60:.1f} min in all: "
            + ", ".join(f"{k} {v / 60:.1f}" for k, v in parts.items()) + ".")


def render_results(results: dict[str, Any], folder: Path) -> Path:
    """Write results.md and its charts beside results.json."""
    folder = Path(folder)
    by_ds = _by_dataset(results["models"])
    lines = ["# forgetkit demo results", ""]
    for dataset, rows in by_ds.items():
        main = {r: m for r, m in rows.items() if "@" not in r}
        lines += [f"## Fine-tuned on {dataset}", "", markdown_table(main, MAIN_COLUMNS), ""]
        if (folder / f"audit_{dataset}" / "report.html").is_file():
            lines += [f"Every figure with its 95% interval, its n and the paired difference "
                      f"from the base, and every answer: [audit_{dataset}/report.html]"
                      f"(audit_{dataset}/report.html) (docs/audit.md).", ""]
        lines += [f"![{dataset}](results_{dataset}.png)", ""]
        bar_chart(main, folder / f"results_{dataset}.png",
                  f"Fine-tuned on {dataset}: what is kept and what is lost")
        drift = {k.split("/", 1)[1]: v for k, v in results.get("drift", {}).items()
                 if k.startswith(f"{dataset}/") and "@" not in k and not k.endswith("/base")}
        if drift:
            drift_chart(drift, folder / f"drift_{dataset}.png",
                        f"Fine-tuned on {dataset}: activation drift from the base")
            lines += [f"![drift]({f'drift_{dataset}.png'})", ""]
        lines += curve_section(results.get("curves", {}), dataset, folder)
        if (folder / f"pca_{dataset}.png").is_file():
            lines += ["Activations of known, fine-tuning and unverifiable questions on the "
                      "principal components of the unverifiable set (SEAT Figure 2):", "",
                      f"![pca](pca_{dataset}.png)", ""]
        ablation = ablation_table(rows)
        if ablation:
            lines += [f"### Ablation ({dataset})", "", ablation, ""]
        points = sweep_points(rows)
        if len(points) > 1:
            sweep_chart(points, folder / f"sparsity_{dataset}.png")
            lines += [f"### Sparsity sweep ({dataset})", "",
                      markdown_table({f"seat, sparsity {s:g}": m for s, m in points},
                                     MAIN_COLUMNS[:2] + MAIN_COLUMNS[3:4], first="run"), "",
                      f"![sparsity](sparsity_{dataset}.png)", ""]
    cross = cross_dataset_table(by_ds)
    if cross:
        lines += ["## Cross-dataset IDK", "", cross, ""]
    if results.get("repair"):  # DG-Hard and baselines on the full fine-tune
        lines += repair_section(results["repair"], folder)
    base = results.get("base", {})
    lines += ["## The aligned base", "",
              "SmolLM2 -> ignorance-aware base, measured on held-out checks:", ""]
    for stage in ("before", "after"):
        if stage in base:
            h = base[stage]
            lines.append(f"- {stage} alignment: IDK on held-out fictitious questions "
                         f"{fmt(h.get('heldout_fictitious/idk_sm'))}, known accuracy "
                         f"{fmt(h.get('known/accuracy'))}")
    sizes = results.get("sizes", {})
    if sizes:
        lines += ["", "Question sets: " + ", ".join(f"{k} {v}" for k, v in sizes.items())]
    timings = results.get("timings_s", {})
    if timings:
        lines += ["", time_breakdown(timings),
                  "", "Wall time (s): " + ", ".join(f"{k} {v}" for k, v in timings.items())]
    if results.get("judge"):
        lines += ["", f"Judged IDK: refusal decided by the '{results['judge']}' judge, and the "
                  "refusal must name the question's entity (docs/ignorance.md)."]
    lines += ["", PAPER_NOTE, ""]
    atomic_write_text(folder / "results.md", "\n".join(lines))
    return folder
