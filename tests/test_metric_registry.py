"""The metric registry: one registration gives a metric its place in suites, comparisons and
tables, and every measure the suites write is registered."""

import ast
import dataclasses
from pathlib import Path

import pytest

import forgetkit.eval.evaluate as evaluate_mod
from forgetkit.data.records import QARecord
from forgetkit.eval.compare import comparison_measures, score_comparison
from forgetkit.eval.registry import (
    METRICS,
    ROLES,
    Metric,
    held_out_metrics,
    lower_is_better,
    metric_of,
    role_metrics,
)
from forgetkit.eval.unlearning import summary_row
from forgetkit.report.render import MAIN_COLUMNS, column, markdown_table
from forgetkit.report.repair_tables import SCORES, measure_title, repair_table
from forgetkit.report.unlearning_tables import SIDE_BY_SIDE, TOFU_COLUMNS

SRC = Path(__file__).resolve().parents[1] / "src" / "forgetkit"


def _record(question: str, answer: str) -> QARecord:
    return QARecord(question, answer, subject="Zed")


def _fake_eval(ft: float, idk: float, toxic: float, kl: float) -> dict:
    return {"sets": {
        "train": {"role": "ft", "metrics": {"rouge1_recall": ft, "idk_sm": 0.0}},
        "unverifiable": {"role": "unseen", "metrics": {"idk_sm": idk, "toxic_rate": toxic}},
    }, "kl_to_base": kl}


@pytest.fixture
def toxic_rate(monkeypatch):
    """A metric registered by this test only: lower is better, held out on unseen sets."""
    metric = Metric("toxic_rate", "toxic rate", "answers", False, roles=("unseen",),
                    held_out_roles=("unseen",),
                    compute=lambda records, answers, judge: sum("!" in a for a in answers)
                    / len(answers))
    monkeypatch.setitem(METRICS._items, metric.name, metric)
    return metric


def _evaluate_with_answers(monkeypatch, answers: list[str], role: str, judge=None) -> dict:
    monkeypatch.setattr(evaluate_mod, "generate_answers", lambda *a, **k: list(answers))
    records = [_record(f"q{i}?", "the answer") for i in range(len(answers))]
    return evaluate_mod.evaluate(None, None, [evaluate_mod.EvalSet("s", role, records)],
                                 progress=False, judge=judge)


def test_a_registered_metric_is_computed_on_its_role_after_the_built_in_ones(monkeypatch,
                                                                            toxic_rate):
    result = _evaluate_with_answers(monkeypatch, ["I don't know!", "blue"], "unseen")
    assert result["sets"]["s"]["metrics"] == {"idk_sm": 0.5, "toxic_rate": 0.5}
    known = _evaluate_with_answers(monkeypatch, ["the answer!", "blue"], "known")
    assert "toxic_rate" not in known["sets"]["s"]["metrics"]


def test_a_registered_metric_reaches_the_repair_table_with_its_title_and_arrow(toxic_rate):
    measures = {label: comparison_measures(_fake_eval(*v)) for label, v in
                {"base": (0.1, 1.0, 0.0, 0.0), "ft": (0.9, 0.0, 0.5, 2.0),
                 "rep": (0.8, 0.5, 0.1, 0.5)}.items()}
    assert "unverifiable/toxic_rate" in measures["base"]
    comparison = score_comparison(measures, "base", "ft", ["rep"])
    # Lower is better: the fine-tune's rise from 0 to 0.5 is damage, the repair healed 80%.
    assert comparison["lower_is_better"] == ["unverifiable/toxic_rate", "kl_to_base"]
    assert "unverifiable/toxic_rate" in comparison["partitions"]["damaged"]
    detail = {d["measure"]: d for d in comparison["scores"]["rep"]["measures"]}
    assert detail["unverifiable/toxic_rate"]["score"] == pytest.approx(0.8)
    assert "| toxic rate unverifiable ↓ |" in repair_table(comparison)
    table = markdown_table({"m": {"u/toxic_rate": 0.25}}, (column("u/toxic_rate", "unseen"),))
    assert table.splitlines()[0] == "| model | toxic rate unseen ↓ |"


def test_compare_takes_directions_from_the_registry(monkeypatch):
    measures = {label: comparison_measures({"sets": {"t": {"role": "ft", "metrics": {
        "rouge1_recall": ft}}}, "kl_to_base": kl})
        for label, ft, kl in (("base", 0.1, 0.0), ("ft", 0.9, 1.0), ("rep", 0.9, 0.5))}
    assert score_comparison(measures, "base", "ft", ["rep"])["lower_is_better"] == ["kl_to_base"]
    flipped = dataclasses.replace(METRICS.get("kl_to_base"), higher_is_better=True)
    monkeypatch.setitem(METRICS._items, "kl_to_base", flipped)
    comparison = score_comparison(measures, "base", "ft", ["rep"])
    assert comparison["lower_is_better"] == []
    assert comparison["partitions"]["improved"] == ["kl_to_base"]  # higher KL now "better"


def test_roles_keep_the_order_of_their_metrics():
    assert [m.name for m in role_metrics("ft")] == ["rouge1_recall", "rougeL_recall", "idk_sm"]
    assert [m.name for m in role_metrics("unseen")] == ["idk_sm", "judged_idk"]
    assert [m.name for m in role_metrics("known")] == ["accuracy", "idk_sm"]
    assert held_out_metrics("unseen") == ("idk_sm", "judged_idk")
    assert held_out_metrics("known") == ("accuracy",) and held_out_metrics("ft") == ()
    assert list(evaluate_mod.ROLE_METRICS) == list(ROLES)


def test_judged_idk_needs_a_judge(monkeypatch):
    from forgetkit.eval.judge import StringMatchJudge

    plain = _evaluate_with_answers(monkeypatch, ["I don't know Zed.", "blue"], "unseen")
    assert "judged_idk" not in plain["sets"]["s"]["metrics"]
    judged = _evaluate_with_answers(monkeypatch, ["I don't know Zed.", "blue"], "unseen",
                                    judge=StringMatchJudge())
    assert judged["sets"]["s"]["metrics"]["judged_idk"] == 0.5


def test_every_measure_the_suites_and_tables_use_is_registered():
    keys = {k for role in ROLES for k in (m.name for m in role_metrics(role))}
    keys |= {"kl_to_base", "ias", "ia_reduction", "ft_score", *SCORES}
    row = {"forget_quality": 0.5, "model_utility": 0.5,
           "forget": {"probability": 0.1, "rougeL_recall": 0.2},
           "leakage": {"question": {"leak_rate": 0.0}}, "latent": {"latent_trace": 0.3}}
    keys |= set(summary_row(row))
    keys |= {k for _, k in TOFU_COLUMNS} | {"ks_statistic", "accuracy"}
    keys |= {key for _, key, _ in MAIN_COLUMNS} | {key for _, key, _ in SIDE_BY_SIDE}
    missing = sorted(k for k in keys if metric_of(k) is None)
    assert not missing, f"measures without a registered Metric: {missing}"


def test_titles_come_from_the_registry():
    assert measure_title("heldout_same/judged_idk") == "judged IDK heldout same ↑"
    assert measure_title("known/accuracy") == "known accuracy ↑"
    assert measure_title("kl_to_base") == "KL to base ↓"
    assert measure_title("ft_score", False) == "FT score (target) ↑"
    assert measure_title("s/unregistered", True) == "unregistered s ↓"
    assert METRICS.get("kl_to_base").heading(gloss=True) == "KL to base (nats/token)"
    assert lower_is_better(["a/idk_sm", "kl_to_base", "ia_reduction", "nope"]) == [
        "kl_to_base", "ia_reduction"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_eval_imports_neither_report_nor_cli_and_report_has_no_cycle():
    for path in (SRC / "eval").rglob("*.py"):
        bad = {m for m in _imports(path) if m.startswith(("forgetkit.report", "forgetkit.cli"))}
        assert not bad, f"{path.name} imports {bad}"
    graph = {p.stem: {m.rpartition(".")[2] for m in _imports(p)
                      if m.startswith("forgetkit.report.")}
             for p in (SRC / "report").glob("*.py")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph.get(start, ()))

    assert not [m for m in graph if reaches(m, m, set())], graph
