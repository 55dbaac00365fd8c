"""The unlearning demo (studies/unlearning.py): setting, cached models, table, flags."""

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.eval import tofu
from forgetkit.studies import unlearning as unlearn_demo
from forgetkit.studies.unlearning import UnlearnPlan

runner = CliRunner()

TINY_PLAN = UnlearnPlan(n_authors=3, questions_per_author=4, forget_authors=1, epochs=2.0,
                        learning_rate=3e-3,
                        batch_size=4, unlearn_options={"max_steps": 1, "batch_size": 4},
                        retain_eval_per_author=2, n_known=3, relearn_steps=1,
                        max_new_tokens=4)


def test_setting_asks_every_author_the_same_subsampled_questions():
    plan = UnlearnPlan(n_authors=4, questions_per_author=5, forget_authors=1)
    setting = unlearn_demo.demo_setting(plan)
    by_author: dict[str, list[str]] = {}
    for r in setting.all_records:
        by_author.setdefault(r.subject, []).append(r.meta["attribute"])
    assert len(by_author) == 4
    assert len({tuple(a) for a in by_author.values()}) == 1  # same attributes, same order
    assert len(next(iter(by_author.values()))) == 5
    assert len(setting.forget) == 5 and len(setting.retain) == 15
    assert not {r.subject for r in setting.forget} & {r.subject for r in setting.retain}
    # Deterministic: the same plan gives the same records.
    again = unlearn_demo.demo_setting(plan)
    assert [r.question for r in again.all_records] == [r.question for r in setting.all_records]
    picked = unlearn_demo.retain_eval_set(setting.retain, 2, seed=0)
    assert len(picked) == 6 and {r.subject for r in picked} == {r.subject for r in setting.retain}


@pytest.fixture
def tiny_base(fake_aligned_base):
    """A saved tiny random model standing in for the aligned base."""
    return fake_aligned_base(unlearn_demo)


@pytest.mark.filterwarnings("ignore::forgetkit.unlearn.known_subjects.UnknownSubjectWarning")
def test_demo_writes_one_row_per_method_and_reuses_the_knowing_and_retain_models(
        tmp_path, tiny_base):
    folder = unlearn_demo.run_unlearn_demo(output=tmp_path / "out", progress=False,
                                           plan=TINY_PLAN)
    assert folder == tmp_path / "out" / "unlearn"
    results = json.loads((folder / "results.json").read_text())
    rows = ["original", "retain", *unlearn_demo.METHODS]
    assert list(results["summary"]) == rows
    assert list(results["unlearning"]["models"]) == rows
    assert results["summary"]["retain"]["forget_quality"] == pytest.approx(1.0)
    for row in results["summary"].values():
        assert 0 <= row["leak_worst"] <= 1 and 0 <= row["latent_trace"] <= 1
        assert row["relearn_leak_after"] is not None
    assert results["setting"]["sizes"] == {"all": 12, "forget": 4, "retain": 8,
                                           "retain_eval": 4, "known": 3}
    # the per-question columns with 95% intervals, each model paired with the retain oracle
    intervals = results["unlearning"]["intervals"]
    assert list(intervals) == rows
    sizes = {"forget_probability": 4, "leak_question": 4, "latent_trace": 4,
             "relearn_leak_after": 2}
    for label, entry in intervals.items():
        summary = results["summary"][label]
        for key, n in sizes.items():
            m = entry[key]
            assert m["n"] == n and m["low"] <= m["value"] <= m["high"]
            assert m["value"] == pytest.approx(summary[key])
            assert ("diff" in m) == (label != "retain")
        assert entry["leak_worst"]["value"] == pytest.approx(summary["leak_worst"])
    assert intervals["retain"]["forget_probability"]["interval"] == "bootstrap"
    assert intervals["ga"]["leak_question"]["interval"] == "wilson"
    assert results["models"]["knowing"]["cached"] is False
    assert results["models"]["retain"]["cached"] is False
    assert results["models"]["kif"]["parameters"] == "lora"
    assert results["models"]["ga"]["parameters"] == "full"
    timings = results["timings_s"]
    for step in ("train knowing", "train retain", "total", *(f"unlearn {m}" for m in
                                                              unlearn_demo.METHODS),
                 *(f"eval {r}" for r in rows)):
        assert step in timings, step
    md = (folder / "results.md").read_text()
    assert md.startswith("# Unlearning demo")
    table = md.split("| model | forget quality")[1].split("\n\n")[0]
    for label in rows:
        assert f"\n| {label} |" in table, label
    assert "## Timings" in md and "| unlearn kif |" in md
    assert "### With 95% intervals" in md and "(D=" in md and "n=4)" in md
    # Unlearned weights are dropped after the evaluation; run records and signatures stay.
    assert not list((folder / "models" / "ga").glob("model*.safetensors"))
    assert (folder / "models" / "kif" / "kif_signatures.safetensors").is_file()
    assert (folder / "models" / "knowing" / "model.safetensors").is_file()

    # A finished run is not replaced without overwrite.
    with pytest.raises(FileExistsError, match="overwrite"):
        unlearn_demo.run_unlearn_demo(output=tmp_path / "out", progress=False, plan=TINY_PLAN)

    # With overwrite, the same recipe reuses both cached models (other methods are fine).
    weights = {m: (folder / "models" / m / "model.safetensors").stat().st_mtime_ns
               for m in ("knowing", "retain")}
    small = replace(TINY_PLAN, methods=("ga",))
    unlearn_demo.run_unlearn_demo(output=tmp_path / "out", progress=False, plan=small,
                                  overwrite=True)
    again = json.loads((folder / "results.json").read_text())
    assert again["models"]["knowing"]["cached"] and again["models"]["retain"]["cached"]
    assert list(again["summary"]) == ["original", "retain", "ga"]
    assert {m: (folder / "models" / m / "model.safetensors").stat().st_mtime_ns
            for m in weights} == weights

    # Another training recipe trains them again.
    other = replace(small, epochs=1.0)
    unlearn_demo.run_unlearn_demo(output=tmp_path / "out", progress=False, plan=other,
                                  overwrite=True)
    third = json.loads((folder / "results.json").read_text())
    assert not third["models"]["knowing"]["cached"] and not third["models"]["retain"]["cached"]

    # Another results folder given the same references (as --seeds does) trains nothing.
    elsewhere = unlearn_demo.run_unlearn_demo(output=tmp_path / "seed-8", progress=False,
                                              plan=other, train_seed=8,
                                              references=folder / "models")
    shared = json.loads((elsewhere / "results.json").read_text())
    assert shared["models"]["knowing"]["cached"] and shared["models"]["retain"]["cached"]
    assert shared["models"]["knowing"]["folder"] == str(folder / "models" / "knowing")
    assert not (elsewhere / "models" / "knowing").exists()
    assert shared["plan"]["train_seed"] == 8


def test_default_forget_set_is_large_enough_for_the_ks_test_to_see_the_knowing_model():
    plan = unlearn_demo.DEFAULT
    setting = unlearn_demo.demo_setting(plan)
    assert len(setting.forget_subjects) == 2 and len(setting.forget) == 40
    assert len(setting.retain) == 160
    # At 40 truth ratios a difference of D = 0.33 is detected; at 10 it took 0.70, more than
    # the knowing model's measured D = 0.5 from the oracle.
    assert tofu.ks_detectable(len(setting.forget)) < 0.35 < tofu.ks_detectable(10)


def test_interrupted_fine_tune_is_not_taken_for_a_cached_one(tmp_path, tiny_base):
    plan = UnlearnPlan(epochs=1.0, batch_size=4, learning_rate=1e-3)
    data = write_qa(synth("authors", 1, seed=0)[:4], tmp_path / "d.jsonl")
    out = tmp_path / "m"
    assert not unlearn_demo.cached_finetune(plan, tiny_base / "model", data, out, False)
    assert unlearn_demo.cached_finetune(plan, tiny_base / "model", data, out, False)
    (out / unlearn_demo.RECIPE_FILE).unlink()  # as if the run stopped before the stamp
    assert not unlearn_demo.cached_finetune(plan, tiny_base / "model", data, out, False)


@pytest.mark.parametrize("plan, message", [
    (UnlearnPlan(methods=("kif", "forget-it")), "unknown unlearning method"),
    (UnlearnPlan(methods=("ga", "ga")), "each method at most once"),
    (UnlearnPlan(questions_per_author=30), "choose 1 to 20"),
])
def test_bad_plans_are_refused_before_any_model_is_loaded(tmp_path, plan, message):
    with pytest.raises(ValueError, match=message):
        unlearn_demo.run_unlearn_demo(output=tmp_path, progress=False, plan=plan)
    assert not (tmp_path / "unlearn").exists()


@pytest.mark.parametrize("flags, message", [
    (["--unlearn", "--lfu"], "choose --lfu or --unlearn, not both"),
    (["--unlearn", "--repair-all"], "--repair-all belongs to the SEAT demo, not to --unlearn"),
    (["--unlearn", "--full"], "--full has no unlearning variant"),
])
def test_demo_refuses_flags_that_do_not_go_with_unlearn(tmp_path, flags, message):
    res = runner.invoke(app, ["demo", *flags, "--output", str(tmp_path), "--no-progress"])
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "unlearn").exists()


@pytest.mark.filterwarnings("ignore::forgetkit.unlearn.known_subjects.UnknownSubjectWarning")
def test_seeds_train_the_knowing_model_and_the_oracle_once(tmp_path, tiny_base, monkeypatch):
    plan = replace(TINY_PLAN, methods=("ga",))
    monkeypatch.setattr(unlearn_demo, "plan_for", lambda quick=False, full=False: plan)
    out = tmp_path / "out"
    res = runner.invoke(app, ["demo", "--unlearn", "--seeds", "2", "--output", str(out),
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    first, second = (json.loads((out / f"seed-{s}" / "unlearn" / "results.json").read_text())
                     for s in (7, 8))
    assert not first["models"]["knowing"]["cached"] and not first["models"]["retain"]["cached"]
    assert second["models"]["knowing"]["cached"] and second["models"]["retain"]["cached"]
    assert second["models"]["knowing"]["folder"] == str(out / "references" / "knowing")
    assert (out / "seeds" / "unlearn" / "results.json").is_file()
