"""`forgetkit report DIR` (studies/study.py): every study's results re-render through one
dispatch on the results' ``study`` field (or, for files written before it, their keys); any
other file is refused with exit code 2 and nothing written."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.errors import UserError
from forgetkit.eval.compare import comparison_measures, score_comparison
from forgetkit.studies.study import STUDIES, publish, render_study, study_of

runner = CliRunner()
ROW = {"train/rouge1_recall": 0.9, "unverifiable/idk_sm": 0.1, "heldout_same/idk_sm": 0.2,
       "heldout_other/idk_sm": 0.3, "known/accuracy": 0.8, "kl_to_base": 0.05}


def seat_results() -> dict:
    models = {f"contracts/{run}": dict(ROW) for run in ("base", "full", "lora")}
    drift = {k: {"train": {"l2": [0.0, 1.0], "along_ignorance": [0.0, -0.5]}} for k in models}
    return {"models": models, "drift": drift, "judge": "embedding",
            "base": {"before": {"heldout_fictitious/idk_sm": 0.0, "known/accuracy": 1.0}},
            "timings_s": {"total": 1.0}}


def lfu_results() -> dict:
    row = {"in_domain": 0.5, "known": 0.9, "idk": 0.8, "kl": 0.1, "prompt_mean": 0.4,
           "prompt_std": 0.1, "per_template": {"plain": 0.5, "terse": 0.3},
           "stability": [0.99, 0.98]}
    return {"plan": {"epochs": 3.0, "batch_size": 8, "learning_rate": 3e-4, "attack_steps": 5,
                     "attack_learning_rate": 3e-4},
            "sizes": {"train": 8, "heldout": 4, "known": 4, "unverifiable": 3,
                      "prompt_questions": 2, "align": 4, "attack_eval": 3},
            "models": {"base": row, "lora": {**row, "kl": 0.3}},
            "attack": {"base": {"asr_0": 0.0}, "lora": {"asr_0": 0.0, "asr_5": 0.67}},
            "notes": ["lora is plain SFT."], "timings_s": {"total": 1.0}}


def unlearning_results() -> dict:
    side = {"probability": 0.5, "rougeL_recall": 0.5, "truth_ratio": 0.6}
    per_model = {"forget": side, "retain": side, "ks_statistic": 0.2, "forget_quality": 0.9,
                 "leakage": {"question": {"n": 4, "leak_rate": 0.25}},
                 "latent": {"chance": 0.25, "layers": [2, 4], "accuracy": [0.5, 0.75]}}
    summary = {"forget_quality": 0.9, "model_utility": 0.7, "leak_question": 0.25,
               "leak_worst": 0.5, "latent_trace": 0.4, "relearn_leak_before": 0.0,
               "relearn_leak_after": 0.5}
    labels = ("original", "retain", "ga")
    return {"plan": {"questions_per_author": 4, "epochs": 2.0, "learning_rate": 1e-4},
            "setting": {"authors": ["A", "B"], "forget_subjects": ["A"],
                        "sizes": {"all": 8, "forget": 4, "retain": 4, "retain_eval": 2,
                                  "known": 3}},
            "models": {"knowing": {"folder": "k", "n_train": 8, "cached": True},
                       "ga": {"parameters": "full", "learning_rate": 1e-5, "steps": 1}},
            "summary": {label: summary for label in labels},
            "unlearning": {"settings": {"n_forget": 4, "n_retain": 2, "n_known": 3,
                                        "relearn_steps": 1},
                           "models": {label: per_model for label in labels},
                           "summary": {label: summary for label in labels}},
            "notes": ["4 forget questions."], "timings_s": {"unlearn ga": 2.0, "total": 3.0}}


def _eval(ft: float, idk: float, kl: float) -> dict:
    return {"sets": {"train": {"role": "ft", "metrics": {"rouge1_recall": ft}},
                     "unverifiable": {"role": "unseen", "metrics": {"idk_sm": idk}}},
            "kl_to_base": kl}


def repair_comparison() -> dict:
    measures = {"base": comparison_measures(_eval(0.1, 1.0, 0.0)),
                "full": comparison_measures(_eval(0.9, 0.0, 2.0)),
                "dg-hard": comparison_measures(_eval(0.7, 0.5, 0.5))}
    return score_comparison(measures, "base", "full", ["dg-hard"])


def seeds_results() -> dict:
    from forgetkit.studies.seeds import aggregate

    runs = [{"study": "seat", **seat_results()} for _ in range(2)]
    runs[1]["models"]["contracts/full"]["kl_to_base"] = 0.15
    return {"of": "seat", "train_seeds": [7, 8], "data_seed": 7, "runs": ["a", "b"],
            "rows": aggregate(runs), "minutes": [1.0, 1.1]}


STUDY_RESULTS = {"seat": (seat_results, "# forgetkit demo results"),
                 "lfu": (lfu_results, "# LfU demo"),
                 "unlearning": (unlearning_results, "# Unlearning demo"),
                 "seeds": (seeds_results, "# SEAT study over 2 training seeds")}


def test_every_study_is_registered_with_disjoint_legacy_keys():
    assert set(STUDIES) == {"seat", "lfu", "unlearning", "repair", "audit", "seeds"}
    makers = {**{k: v for k, (v, _) in STUDY_RESULTS.items()}, "repair": repair_comparison}
    for name, make in makers.items():  # a file without the "study" field: by its keys
        assert study_of(make()).name == name


@pytest.mark.parametrize("study", sorted(STUDY_RESULTS))
@pytest.mark.parametrize("tagged", [True, False], ids=["study-field", "legacy"])
@pytest.mark.parametrize("give", ["folder", "file"])
def test_report_rerenders_each_study_from_its_folder_or_file(tmp_path, study, tagged, give):
    make, heading = STUDY_RESULTS[study]
    results = {"study": study, **make()} if tagged else make()
    (tmp_path / "results.json").write_text(json.dumps(results))
    (tmp_path / "results.md").write_text("stale")
    target = tmp_path if give == "folder" else tmp_path / "results.json"
    res = runner.invoke(app, ["report", str(target)])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "results.md").read_text()
    assert md.startswith(heading) and md in res.output
    assert json.loads((tmp_path / "results.json").read_text()) == results  # input untouched
    # the same report as one self-contained page: the tables, pictures embedded
    page = (tmp_path / "report.html").read_text()
    assert "<table>" in page and "<h1>" in page and 'src="results_' not in page
    assert all(src.startswith("data:image/") for src in
               re.findall(r'<img alt="[^"]*" src="([^"]*)"', page))


def test_report_rerenders_a_repair_comparison_beside_its_json(tmp_path):
    path = tmp_path / "compare.json"
    path.write_text(json.dumps(repair_comparison()))
    res = runner.invoke(app, ["report", str(path)])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "compare.md").read_text()
    assert md.startswith("# Repair comparison") and "| dg-hard |" in md
    assert "data:image/png;base64," in (tmp_path / "compare.html").read_text()
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content, message", [
    ({"summary": {"a": 1}, "settings": {}}, "not a forgetkit results file"),
    ({"study": "treasure", "models": {}}, "unknown study 'treasure'"),
    ([1, 2, 3], "not a forgetkit results file"),
    ("not json {", "expected JSON"),
])
def test_report_refuses_an_unknown_file_and_writes_nothing(tmp_path, content, message):
    path = tmp_path / "results.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    (tmp_path / "results.md").write_text("the old report")
    before = sorted(p.name for p in tmp_path.iterdir())
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert message in out and str(path) in out
    assert "seat" in out or "expected JSON" in out  # says what it expected
    assert (tmp_path / "results.md").read_text() == "the old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_report_names_a_missing_results_file(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "no such results file" in res.output
    assert not list(tmp_path.iterdir())


def test_a_recognised_but_incomplete_file_is_a_user_error_not_a_traceback(tmp_path):
    results = {"study": "lfu", "models": {}, "attack": {}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    with pytest.raises(UserError, match="looks like lfu results"):
        render_study(tmp_path)
    assert not (tmp_path / "results.md").exists()


def test_publish_writes_the_study_field_then_the_report(tmp_path):
    written = publish("lfu", lfu_results(), tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == written and next(iter(on_disk)) == "study" and on_disk["study"] == "lfu"
    assert (tmp_path / "results.md").read_text().startswith("# LfU demo")


def test_the_demo_report_sums_its_time_by_kind_of_step():
    from forgetkit.report.render import time_breakdown

    line = time_breakdown({"prepare_base": 240.0, "eval_base": 30.0, "train contracts/full": 90.0,
                           "eval contracts/full": 30.0, "repair dg-hard": 6.0,
                           "eval repaired dg-hard": 24.0, "total": 426.0})
    assert line == ("Time: 7.1 min in all: preparing the base 4.0, evaluation 1.4, "
                    "training 1.5, repairs 0.1.")
