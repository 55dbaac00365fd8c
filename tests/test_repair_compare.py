"""Base / fine-tuned / repaired comparisons: the measures, the scores, `forgetkit eval
--compare`, the demo's repair step and its table and scatter (tiny models only)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.eval.compare import comparison_measures, parse_compare, score_comparison
from forgetkit.eval.evaluate import EvalSet, evaluate
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.lm import models
from forgetkit.repair import SUMMARY_FILE, repair
from forgetkit.report.render import render_results
from forgetkit.report.repair_tables import recovery_scatter, repair_table

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def fake_eval(ft: float, idk: float, judged: float, known: float, kl: float) -> dict:
    """An ``evaluate()`` result with the metrics of each role (and some that are not scored)."""
    return {"sets": {
        "train": {"role": "ft", "metrics": {"rouge1_recall": ft, "rougeL_recall": ft / 2,
                                            "idk_sm": 0.0}},
        "unverifiable": {"role": "unseen", "metrics": {"idk_sm": idk, "judged_idk": judged}},
        "known": {"role": "known", "metrics": {"accuracy": known, "idk_sm": 0.1}},
    }, "kl_to_base": kl}


BASE = fake_eval(ft=0.1, idk=1.0, judged=0.9, known=0.8, kl=0.0)
FT = fake_eval(ft=0.9, idk=0.0, judged=0.0, known=0.5, kl=2.0)
GOOD = fake_eval(ft=0.7, idk=0.5, judged=0.45, known=0.8, kl=0.5)


def hand_made_comparison() -> dict:
    measures = {"base": comparison_measures(BASE), "finetuned": comparison_measures(FT),
                "good": comparison_measures(GOOD), "revert": comparison_measures(BASE),
                "nothing": comparison_measures(FT)}
    return score_comparison(measures, "base", "finetuned", ["good", "revert", "nothing"])


# --------------------------------------------------------------------------- measures, scores


def test_measures_are_target_and_held_out_only():
    m = comparison_measures(GOOD)
    # IDK on the fine-tuning set, ROUGE-L and IDK on known questions are not scored.
    assert m == {"ft_score": 0.7, "unverifiable/idk_sm": 0.5, "unverifiable/judged_idk": 0.45,
                 "known/accuracy": 0.8, "kl_to_base": 0.5}


def test_target_is_the_mean_ft_score_over_ft_sets():
    result = {"sets": {"a": {"role": "ft", "metrics": {"rouge1_recall": 0.2}},
                       "b": {"role": "ft", "metrics": {"rouge1_recall": 0.6}}}}
    assert comparison_measures(result)["ft_score"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="--ft set"):
        comparison_measures({"sets": {"u": {"role": "unseen", "metrics": {"idk_sm": 1.0}}}})


def test_comparison_scores_heal_damage_and_keep_the_target():
    c = hand_made_comparison()
    assert c["partitions"] == {"damaged": ["unverifiable/idk_sm", "unverifiable/judged_idk",
                                           "known/accuracy", "kl_to_base"],
                               "improved": [], "unchanged": []}
    assert c["lower_is_better"] == ["kl_to_base"]
    good = c["scores"]["good"]
    # IDK 0.5 of 1.0 won back, judged 0.45 of 0.9, known accuracy fully, and 1.5 of the
    # fine-tune's 2.0 nats of KL removed.
    assert good["healed"] == pytest.approx((0.5 + 0.5 + 1.0 + 0.75) / 4)
    assert good["retention"] == pytest.approx(0.6 / 0.8)
    assert good["preserved"] is None and good["non_damage"] is None
    assert good["combined"] == pytest.approx(2 / (1 / 0.6875 + 1 / 0.75))


def test_reverting_and_doing_nothing_score_zero():
    c = hand_made_comparison()
    for label in ("revert", "base"):
        s = c["scores"][label]
        assert s["healed"] == 1.0 and s["retention"] == 0.0 and s["combined"] == 0.0
    for label in ("nothing", "finetuned"):
        s = c["scores"][label]
        assert s["healed"] == 0.0 and s["retention"] == 1.0 and s["combined"] == 0.0
    assert c["notes"] == []


def test_comparison_notes_when_the_fine_tune_gained_nothing():
    flat = comparison_measures(fake_eval(ft=0.1, idk=0.5, judged=0.5, known=0.8, kl=1.0))
    c = score_comparison({"base": comparison_measures(BASE), "ft": flat, "r": flat},
                         "base", "ft", ["r"])
    assert c["scores"]["r"]["retention"] is None
    assert any("no gain to retain" in n for n in c["notes"])


def test_repair_table_marks_reference_rows_and_the_best_repair():
    table = repair_table(hand_made_comparison())
    assert "FT score (target) ↑" in table and "KL to base ↓" in table
    assert "judged IDK unverifiable ↑" in table and "known accuracy ↑" in table
    assert "| fine-tuned | 0.900 |" in table
    good = next(line for line in table.splitlines() if line.startswith("| good |"))
    assert good.endswith("| 69 | – | – | 75 | **72** |")  # in %, rounded
    assert "| revert |" in table and table.count("**") == 2


def test_recovery_scatter_writes_a_png(tmp_path):
    c = hand_made_comparison()
    c["scores"]["nothing"]["healed"] = None  # not drawable: listed instead of crashing
    path = recovery_scatter(c, tmp_path / "scatter.png", "test")
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


# --------------------------------------------------------------------------- flags


def test_parse_compare_roles_labels_and_errors(tmp_path):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / SUMMARY_FILE).write_text(json.dumps({"method": "dg-hard"}))
    entries = parse_compare(["base=B", "finetuned=F", f"repaired={rep}",
                             "Repaired:mine = R2"])
    assert [(e.role, e.label, e.spec) for e in entries] == [
        ("base", "base", "B"), ("finetuned", "finetuned", "F"),
        ("repaired", "dg-hard", str(rep)), ("repaired", "mine", "R2")]
    bad = {
        "unknown role 'merged'": ["base=B", "finetuned=F", "merged=M"],
        "exactly one base": ["finetuned=F", "repaired=R"],
        "exactly one finetuned": ["base=B", "repaired=R"],
        "nothing to score": ["base=B", "finetuned=F"],
        "expected ROLE=SPEC": ["base", "finetuned=F", "repaired=R"],
        "empty label": ["base=B", "finetuned=F", "repaired:=R"],
        "2 models are labelled 'R'": ["base=B", "finetuned=F", "repaired=a/R", "repaired=b/R"],
    }
    for message, values in bad.items():
        with pytest.raises(ValueError, match=message):
            parse_compare(values)


def test_compare_refuses_single_model_flags(tmp_path):
    common = ["eval", "--compare", "base=tiny-random-llama", "--compare", "finetuned=x",
              "--compare", "repaired=y", "--output", str(tmp_path / "c.json")]
    for extra, message in ((["--model", "m"], "--model m and --compare"),
                           (["--reference", "r"], "drop --reference"),
                           (["--suite", "ignorance"], "not available with --compare")):
        res = runner.invoke(app, [*common, *extra])
        assert res.exit_code == 2 and message in res.output, res.output
    res = runner.invoke(app, ["eval", "--output", str(tmp_path / "c.json")])
    assert res.exit_code == 2 and "--model SPEC" in res.output
    assert not (tmp_path / "c.json").exists()


# --------------------------------------------------------------------------- tiny checkpoints


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A saved tiny base, a few-step full fine-tune of it, and a DG-Hard repair."""
    from forgetkit.train.config import TrainConfig
    from forgetkit.train.run import train

    root = tmp_path_factory.mktemp("runs")
    base = models.save(*models.load(models.TINY), root / "base")
    files = {"train": write_qa(synth("contracts", 1, seed=0)[:6], root / "train.jsonl"),
             "unseen": write_qa(synth("unverifiable", 4, seed=1), root / "unverifiable.jsonl"),
             "known": write_qa(synth("known", 4, seed=2), root / "known.jsonl")}
    ft = train(TrainConfig(model=str(base), data=files["train"], method="full", max_steps=8,
                           batch_size=6, learning_rate=1e-2, output=root / "ft",
                           save_strategy="no", progress=False))
    repair(base, ft, root / "dg-hard")
    return {"root": root, "base": base, "ft": ft, "dg-hard": root / "dg-hard", **files}


def test_eval_compare_end_to_end_writes_json_table_and_scatter(tiny_runs, tmp_path):
    r = tiny_runs
    wise = repair(r["base"], r["ft"], tmp_path / "wise", method="wise-ft")
    assert wise["method"] == "wise-ft"
    out = tmp_path / "cmp.json"
    args = ["eval", "--compare", f"base={r['base']}", "--compare", f"finetuned={r['ft']}",
            "--compare", f"repaired={r['dg-hard']}", "--compare", f"repaired={tmp_path / 'wise'}",
            "--ft", str(r["train"]), "--unseen", str(r["unseen"]), "--known", str(r["known"]),
            "--judge", "string-match", "--max-new-tokens", "4", "--tolerance", "0.001",
            "--output", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert result["repaired"] == ["dg-hard", "wise-ft"]  # labels from repair_summary.json
    assert {label: m["role"] for label, m in result["models"].items()} == {
        "base": "base", "finetuned": "finetuned", "dg-hard": "repaired", "wise-ft": "repaired"}
    assert set(result["measures"]["base"]) == {"ft_score", "unverifiable/idk_sm",
                                               "unverifiable/judged_idk", "known/accuracy",
                                               "kl_to_base"}
    assert result["measures"]["base"]["kl_to_base"] == pytest.approx(0.0, abs=1e-6)
    kl = {label: m["kl_to_base"] for label, m in result["measures"].items()}
    assert kl["finetuned"] > 0 and "kl_to_base" in result["partitions"]["damaged"]
    # Half the delta is half-way back: wise-ft heals part of the fine-tune's KL.
    assert 0 < kl["wise-ft"] < kl["finetuned"]
    assert 0 < result["scores"]["wise-ft"]["measures"][-1]["score"] < 1
    assert result["scores"]["base"]["healed"] == 1.0
    for label in result["models"]:  # answers kept for reading
        assert result["evaluations"][label]["sets"]["unverifiable"]["samples"]
    md = (tmp_path / "cmp.md").read_text()
    assert "| dg-hard |" in md and "| wise-ft |" in md and "| fine-tuned |" in md
    assert "damaged:" in md and "![recovery x preservation](cmp.png)" in md
    assert (tmp_path / "cmp.png").read_bytes()[:8] == PNG
    assert "% healed" in res.output
    res = runner.invoke(app, args)  # an existing comparison is not replaced silently
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_eval_compare_refuses_a_different_tokenizer(tiny_runs, tmp_path):
    model, tok = models.load(str(tiny_runs["ft"]))
    tok.add_tokens(["<other-vocabulary>"])
    other = models.save(model, tok, tmp_path / "other")
    out = tmp_path / "cmp.json"
    res = runner.invoke(app, ["eval", "--compare", f"base={tiny_runs['base']}",
                              "--compare", f"finetuned={tiny_runs['ft']}",
                              "--compare", f"repaired:odd={other}",
                              "--ft", str(tiny_runs["train"]), "--unseen",
                              str(tiny_runs["unseen"]), "--output", str(out)])
    assert res.exit_code == 2 and "repaired:odd" in res.output, res.output
    assert "different tokenizer" in res.output and not out.exists()


def test_eval_compare_needs_target_and_held_out_sets(tiny_runs, tmp_path):
    flags = ["eval", "--compare", f"base={tiny_runs['base']}", "--compare",
             f"finetuned={tiny_runs['ft']}", "--compare", f"repaired={tiny_runs['dg-hard']}",
             "--output", str(tmp_path / "c.json")]
    res = runner.invoke(app, [*flags, "--unseen", str(tiny_runs["unseen"])])
    assert res.exit_code == 2 and "at least one --ft set" in res.output
    res = runner.invoke(app, [*flags, "--ft", str(tiny_runs["train"])])
    assert res.exit_code == 2 and "held-out sets" in res.output
    res = runner.invoke(app, [*flags[:-1], str(tmp_path / "c.md")])
    assert res.exit_code == 2 and "give the JSON file" in res.output


def test_demo_repair_step_on_tiny_checkpoints(tiny_runs, tmp_path):
    from forgetkit.data.records import read_qa
    from forgetkit.studies.repair import repair_finetune

    r = tiny_runs
    sets = [EvalSet("train", "ft", read_qa(r["train"])),
            EvalSet("unverifiable", "unseen", read_qa(r["unseen"])),
            EvalSet("known", "known", read_qa(r["known"]))]
    base_model, tok = models.load(str(r["base"]))
    reference = next_token_logprobs(base_model, tok)
    ft_model, _ = models.load(str(r["ft"]))
    base_eval = evaluate(base_model, tok, sets, reference_logprobs=reference, progress=False)
    ft_eval = evaluate(ft_model, tok, sets, reference_logprobs=reference, progress=False)
    timings: dict[str, float] = {}
    section, evaluations = repair_finetune(
        r["base"], r["ft"], tmp_path / "repaired", ["rank", "dg-hard"], sets, base_eval,
        ft_eval, reference, dataset="contracts", progress=False, timings=timings)
    assert section["repaired"] == ["dg-hard", "rank"]  # dg-hard first: rank reads its ranks
    dg_rank = section["repairs"]["dg-hard"]["totals"]["mean_kept_rank"]
    assert section["repairs"]["rank"]["options"]["rank"] == max(1, round(dg_rank))
    assert set(evaluations) == {"dg-hard", "rank"}
    assert section["base"] == "base" and section["finetuned"] == "full"
    assert section["scores"]["base"]["healed"] in (1.0, None)  # reference rows
    assert section["scores"]["full"]["healed"] in (0.0, None)
    assert {"repair dg-hard", "eval repaired rank"} <= set(timings)
    for method in ("dg-hard", "rank"):
        assert (tmp_path / "repaired" / method / SUMMARY_FILE).is_file()
    json.dumps(section)  # goes into results.json as it is

    row = {"train/rouge1_recall": 0.5, "unverifiable/idk_sm": 0.5, "known/accuracy": 0.5}
    results = {"models": {"contracts/base": row, "contracts/full": row}, "repair": section}
    (tmp_path / "report").mkdir()
    render_results(results, tmp_path / "report")
    md = (tmp_path / "report" / "results.md").read_text()
    assert "## Repairing the full fine-tune (contracts)" in md
    assert "| full (fine-tuned) |" in md and "| dg-hard |" in md and "| rank |" in md
    assert f"rank={max(1, round(dg_rank))}" in md  # the repair's options table
    assert (tmp_path / "report" / "repair_contracts.png").read_bytes()[:8] == PNG

    with pytest.raises(ValueError, match="unknown repair method"):
        repair_finetune(r["base"], r["ft"], tmp_path / "x", ["svd"], sets, base_eval, ft_eval,
                        reference)


def test_eval_compare_takes_the_loading_and_column_flags(tiny_runs, tmp_path):
    """A user's own column names and a dtype reach every compared model and set."""
    def renamed(path, out):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        out.write_text("".join(json.dumps({"prompt_text": r["question"], "reply": r["answer"],
                                           "about": r["subject"]}) + "\n" for r in rows))
        return out

    r = tiny_runs
    ft, unseen = renamed(r["train"], tmp_path / "ft.jsonl"), renamed(r["unseen"],
                                                                    tmp_path / "un.jsonl")
    out = tmp_path / "cmp.json"
    args = ["eval", "--compare", f"base={r['base']}", "--compare", f"finetuned={r['ft']}",
            "--compare", f"repaired={r['dg-hard']}", "--ft", str(ft), "--unseen", str(unseen),
            "--max-new-tokens", "4", "--output", str(out), "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "question" in res.output  # the default columns are absent
    res = runner.invoke(app, [*args, "--question-field", "prompt_text", "--answer-field",
                              "reply", "--subject-field", "about", "--dtype", "bfloat16"])
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert {m["loaded"] for m in result["models"].values()} == {"bfloat16 on cpu"}
    samples = result["evaluations"]["base"]["sets"]["ft"]["samples"]
    first = json.loads(ft.read_text().splitlines()[0])
    assert samples[0]["question"] == first["prompt_text"]
