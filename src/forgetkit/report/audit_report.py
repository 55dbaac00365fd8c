"""An audit's ``results.json`` -> ``report.html`` (one self-contained file), ``results.md``
and the charts beside them.

The page: a sentence per model of what changed beyond the intervals; the results table
(every value with its 95% interval, an arrow only where the paired interval of the
difference from the base excludes 0); the charts; per-benchmark rows; repair scores and
their scatter; and a question browser filterable by set and by "changed from the base".
Nothing is fetched: styles and the script are inline, charts are inline SVG, pictures are
embedded as data URIs.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgetkit.eval.audit import BASE, BENCH, direction, sentence, title, unit
from forgetkit.io import atomic_write_text
from forgetkit.report.audit_charts import colours, dot_chart
from forgetkit.report.page import page, table_html

GOOD, BAD, SAME = "good", "bad", "same"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _digits(key: str) -> int:
    return 3 if unit(key) == "nats" else 2


def change(key: str, measure: Mapping[str, Any]) -> tuple[str, str]:
    """(css class, arrow) of a measure's difference from the base: an arrow only when the
    paired interval excludes 0, coloured by whether the change is for the better."""
    diff = measure.get("diff")
    if not diff or not diff.get("significant"):
        return SAME, "≈" if diff else ""
    arrow = "▲" if diff["value"] > 0 else "▼"
    up = direction(key, measure)
    if up is None:
        return SAME, arrow
    return (GOOD if (diff["value"] > 0) == up else BAD), arrow


def measure_keys(results: Mapping[str, Any]) -> list[str]:
    keys = list(results["measures"][BASE])
    return ([k for k in keys if not k.startswith(f"{BENCH}/")]
            + [k for k in keys if k.startswith(f"{BENCH}/")])


def _cell(key: str, m: Mapping[str, Any] | None) -> tuple[str, str]:
    """(text, html) of one table cell."""
    if m is None:
        return "–", "<td>–</td>"
    d = _digits(key)
    interval = (f" [{_fmt(m.get('low'), d)}, {_fmt(m.get('high'), d)}]"
                if m.get("low") is not None else "")
    text = f"{_fmt(m['value'], d)}{interval}"
    klass, arrow = change(key, m)
    diff = m.get("diff")
    tip = (f"difference from the base {diff['value']:+.{d}f}, 95% CI "
           f"[{diff['low']:+.{d}f}, {diff['high']:+.{d}f}], n={diff['n']}" if diff else "")
    cell = (f'<td class="{klass}" title="{html.escape(tip)}"><span class="v">'
            f"{_fmt(m['value'], d)}</span><span class=\"ci\">{html.escape(interval)}</span>"
            f' <span class="arrow">{arrow}</span></td>')
    return f"{text} {arrow}".strip(), cell


def _arrow_of(key: str, measure: Mapping[str, Any]) -> str:
    up = direction(key, measure)
    return "" if up is None else (" ↑" if up else " ↓")


def results_table(results: Mapping[str, Any], bench: bool = False) -> tuple[str, str]:
    """(Markdown, HTML) of the measures table: rows are measures, columns models."""
    labels = list(results["measures"])
    keys = [k for k in measure_keys(results) if k.startswith(f"{BENCH}/") == bench]
    if not keys:
        return "", ""
    md = ["| measure | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    rows = []
    for key in keys:
        ref = results["measures"][BASE].get(key, {})
        name = title(key) + _arrow_of(key, ref)
        n = ref.get("n")
        cells = [_cell(key, results["measures"][label].get(key)) for label in labels]
        md.append(f"| {name} (n={n}) | " + " | ".join(c[0] for c in cells) + " |")
        rows.append(f"<tr><th>{html.escape(name)} <small>n={n}</small></th>"
                    + "".join(c[1] for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    table = (f'<div class="wide"><table class="results"><thead><tr><th>measure</th>{head}'
             f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    return "\n".join(md), table


def charts(results: Mapping[str, Any]) -> dict[str, str]:
    """name -> inline SVG: the share measures, their differences from the base, and KL."""
    labels = list(results["measures"])
    others = [label for label in labels if label != BASE]
    keys = measure_keys(results)
    colour = colours(labels)
    shares = [k for k in keys if unit(k) == "share"
              and all(0 <= (results["measures"][lab].get(k) or {}).get("value", 0) <= 1
                      for lab in labels)]
    out = {}
    if shares:
        out["values"] = dot_chart(
            [(title(k), {lab: results["measures"][lab].get(k) for lab in labels})
             for k in shares], labels, "share of questions (dots: value; bars: 95% interval)",
            (-0.03, 1.03), title="Every share measure, per model", colour=colour)
        diffs = [(title(k), {lab: {**results["measures"][lab][k]["diff"]}
                             for lab in others if results["measures"][lab].get(k, {}).get("diff")})
                 for k in shares]
        diffs = [(name, v) for name, v in diffs if v]
        if diffs:
            out["differences"] = dot_chart(
                diffs, others, "difference from the base (95% paired interval; hollow: the "
                "interval contains 0)", None, zero_line=True,
                title="What changed from the base", colour=colour)
    kl = {lab: results["measures"][lab]["kl_to_base"] for lab in others
          if "kl_to_base" in results["measures"][lab]}
    if kl:
        high = max(v["high"] for v in kl.values())
        out["kl"] = dot_chart([("KL to base", kl)], others,
                              "next-token KL(base || model), nats per token (95% interval)",
                              (0, high * 1.1 + 1e-6), title="Drift from the base on generic "
                              "prompts", colour=colour)
    return out


def summary_items(results: Mapping[str, Any]) -> list[str]:
    """One sentence per model, made from the measures (so a re-render says it anew)."""
    measures = results["measures"]
    return [sentence(label, measures[label], measures[BASE]) for label in measures
            if label != BASE]


def repair_part(results: Mapping[str, Any], folder: Path) -> tuple[list[str], str]:
    """(Markdown lines, HTML) of the repair scores and their scatter, per fine-tune."""
    from forgetkit.report.repair_tables import (
        FORMULAS_NOTE,
        comparison_markdown,
        recovery_scatter,
    )

    md, parts = [], []
    for ft, comparison in results.get("repair", {}).items():
        picture = folder / f"repair_{ft}.png"
        recovery_scatter(comparison, picture, f"Repairs of {ft}")
        lines = comparison_markdown(comparison, picture.name)
        md += [f"### Repairs of {ft}", "", *[x for x in lines if x is not None], ""]
        table = [x for x in "\n".join(x for x in lines if x).splitlines()
                 if x.startswith("|")]
        encoded = base64.b64encode(picture.read_bytes()).decode()
        parts.append(f"<h3>Repairs of {html.escape(ft)}</h3>" + table_html(table)
                     + f"<p>Repair scores: {html.escape(FORMULAS_NOTE)}.</p>"
                     + f'<figure><img alt="repair scatter of {html.escape(ft)}" '
                     f'src="data:image/png;base64,{encoded}"></figure>')
    for group, g in results.get("seed_groups", {}).items():
        combined = g["measures"].get("repair/combined")
        if combined:
            text = (f"{group}: harmonic mean {100 * combined['mean']:.0f} ± "
                    f"{100 * combined['std']:.0f} over {combined['seeds']} seeds")
            md.append(f"- {text}")
            parts.append(f"<p>{html.escape(text)}</p>")
    return md, "".join(parts)


def question_browser(results: Mapping[str, Any]) -> str:
    """The question browser: one row per (set, question), filtered by the script."""
    labels = list(results["measures"])
    sets = results["sets"]
    options = "".join(f'<option value="{html.escape(s)}">{html.escape(s)} '
                      f"({sets[s]['role']}, n={sets[s]['n']})</option>" for s in sets)
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    rows = []
    for set_name, questions in results.get("questions", {}).items():
        for q in questions:
            marks = q["marks"]
            changed = any(marks[lab] != marks[BASE] for lab in labels if lab != BASE)
            cells = "".join(
                f'<td class="{"changed" if marks[lab] != marks[BASE] else ""}">'
                f'<span class="mark">{html.escape(marks[lab])}</span> '
                f"{html.escape(q['answers'][lab])}</td>" for lab in labels)
            rows.append(f'<tr data-set="{html.escape(set_name)}" '
                        f'data-changed="{int(changed)}"><td>{html.escape(set_name)}</td>'
                        f"<td>{html.escape(q['question'])}</td>"
                        f"<td>{html.escape(q['reference'])}</td>{cells}</tr>")
    return (f'<div class="controls"><label>set <select id="set-filter"><option value="">all'
            f'</option>{options}</select></label> <label><input type="checkbox" '
            f'id="changed-filter"> only answers that changed from the base</label> '
            f'<span id="shown-count"></span></div><div class="scroll"><table id="questions">'
            f"<thead><tr><th>set</th><th>question</th><th>reference</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


BROWSER_SCRIPT = """
function applyFilter() {
  const set = document.getElementById('set-filter').value;
  const changed = document.getElementById('changed-filter').checked;
  let shown = 0;
  for (const row of document.querySelectorAll('#questions tbody tr')) {
    const ok = (!set || row.dataset.set === set) && (!changed || row.dataset.changed === '1');
    row.hidden = !ok;
    if (ok) shown += 1;
  }
  document.getElementById('shown-count').textContent = shown + ' shown';
  const hash = new URLSearchParams();
  if (set) hash.set('set', set);
  if (changed) hash.set('changed', '1');
  history.replaceState(null, '', hash.toString() ? '#' + hash.toString() : ' ');
}
function filterFromHash() {
  const hash = new URLSearchParams(location.hash.slice(1));
  document.getElementById('set-filter').value = hash.get('set') || '';
  document.getElementById('changed-filter').checked = hash.get('changed') === '1';
}
document.getElementById('set-filter').addEventListener('change', applyFilter);
document.getElementById('changed-filter').addEventListener('change', applyFilter);
filterFromHash();
applyFilter();
"""


def render_audit(results: Mapping[str, Any], folder: Path) -> Path:
    """Write ``report.html``, ``results.md`` and the charts into ``folder``; return it."""
    folder = Path(folder)
    settings = results.get("settings", {})
    models = results["models"]
    md_table, html_table = results_table(results)
    md_bench, html_bench = results_table(results, bench=True)
    drawn = charts(results)
    for name, svg in drawn.items():
        atomic_write_text(folder / f"chart_{name}.svg", svg)
    md_repair, html_repair = repair_part(results, folder)
    summary = summary_items(results)
    model_lines = [f"{label}: {m['spec']} ({m['role']}"
                   + (f", {m['method']} of {m['of']}" if m.get("method") else "") + ")"
                   for label, m in models.items()]

    md = ["# forgetkit audit", "", *[f"- {s}" for s in summary], "", "## Results", "",
          "Each value with its 95% interval; ▲/▼: the paired interval of the difference from "
          "the base excludes 0; ≈: it does not (not a change).", "", md_table, ""]
    md += [f"![{name}](chart_{name}.svg)" for name in drawn] + [""]
    if md_bench:
        md += ["## Benchmarks (lm-evaluation-harness)", "", md_bench, ""]
    if md_repair:
        md += ["## Repairs", "", *md_repair]
    md += ["## Models", "", *[f"- {x}" for x in model_lines], "",
           *[f"Note: {n}." for n in results.get("notes", [])],
           "Measures and intervals: docs/audit.md."]
    atomic_write_text(folder / "results.md", "\n".join(md) + "\n")

    sets = ", ".join(f"{s} ({v['role']}, n={v['n']})" for s, v in results["sets"].items())
    body = [
        "<header><h1>forgetkit audit</h1>",
        f"<p class=\"meta\">base <code>{html.escape(str(settings.get('base', '')))}</code>"
        f" · question sets: {html.escape(sets)}"
        + (f" · judge: {html.escape(str(settings['judge']))}" if settings.get("judge") else "")
        + "</p></header>",
        '<section id="summary"><h2>What changed</h2><ul>'
        + "".join(f"<li>{html.escape(s)}</li>" for s in summary) + "</ul></section>",
        '<section id="results"><h2>Results</h2><p class="legend">Each value with its 95% '
        'interval. <span class="good">▲▼ better</span>, <span class="bad">▲▼ worse</span>: '
        "the paired interval of the difference from the base excludes 0. ≈: it contains 0, "
        "so no change is claimed. Hover a cell for the difference.</p>" + html_table
        + "</section>",
        '<section id="charts"><h2>Charts</h2>'
        + "".join(f'<figure class="chart" id="chart-{n}">{svg}</figure>'
                  for n, svg in drawn.items()) + "</section>",
    ]
    if html_bench:
        body.append('<section id="benchmarks"><h2>Benchmarks (lm-evaluation-harness)</h2>'
                    "<p class=\"legend\">Intervals from the per-document scores, as for "
                    "every other measure (lm-eval's own standard errors are kept in "
                    "results.json); the difference from the base is a paired bootstrap over "
                    "the same documents.</p>"
                    + html_bench + "</section>")
    if html_repair:
        body.append(f'<section id="repairs"><h2>Repairs</h2>{html_repair}</section>')
    body.append('<section id="browser"><h2>Questions and answers</h2>'
                + question_browser(results) + "</section>")
    body.append('<section id="models"><h2>Models</h2><ul>'
                + "".join(f"<li>{html.escape(x)}</li>" for x in model_lines) + "</ul>"
                + "".join(f"<p>Note: {html.escape(n)}.</p>" for n in results.get("notes", []))
                + f"<p class=\"meta\">timings (s): {html.escape(json.dumps(results.get('timings_s', {})))}</p>"  # noqa: E501
                + "</section>")
    atomic_write_text(folder / "report.html",
                      page("forgetkit audit", "\n".join(body), script=BROWSER_SCRIPT))
    return folder


__all__ = ["change", "charts", "question_browser", "render_audit",
           "results_table"]
