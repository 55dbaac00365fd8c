"""The LfU demo (studies/lfu.py) and its tables (report/lfu_tables.py)."""

import dataclasses
import json

import pytest

from forgetkit.eval.intervals import compared, wilson
from forgetkit.report.lfu_tables import average_ranks, table1
from forgetkit.studies import lfu as lfu_demo


def test_average_rank_is_the_mean_of_category_ranks_with_shared_ties():
    rows = {"base": {"in_domain": 0.0, "known": 1.0, "idk": 1.0, "kl": 0.0},
            "a": {"in_domain": 0.5, "known": 0.9, "idk": 0.5, "kl": 0.2},
            "b": {"in_domain": 0.4, "known": 0.9, "idk": 0.9, "kl": 0.1}}
    # a: ranks 1, 1.5, 2, 2 -> 1.625; b: 2, 1.5, 1, 1 -> 1.375 (lower KL is better)
    assert average_ranks(rows) == {"a": pytest.approx(1.625), "b": pytest.approx(1.375)}
    md = table1(rows)
    assert "| base | 0.000 | 1.000 | 1.000 | 0.000 | – |" in md
    assert "| b | 0.400 | 0.900 | 0.900 | 0.100 | 1.4 |" in md


def test_table1_shows_intervals_and_marks_only_changes_outside_them():
    rows = {"base": {"in_domain": 0.1, "known": 0.8, "idk": 1.0, "kl": 0.0},
            "a": {"in_domain": 0.6, "known": 0.7, "idk": 0.9, "kl": 0.2}}
    base = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1] * 2
    model = [1, 1, 1, 1, 1, 1, 0, 0, 0, 1] * 2  # up on 12 of 20 questions, down on none
    known_base, known_model = [1] * 16 + [0] * 4, [1] * 14 + [0] * 6  # two fewer: noise
    intervals = {"base": {"in_domain": compared(base), "known": compared(known_base)},
                 "a": {"in_domain": compared(model, base),
                       "known": compared(known_model, known_base)}}
    md = table1(rows, intervals)
    a_row = next(line for line in md.splitlines() if line.startswith("| a |"))
    cells = [c.strip() for c in a_row.split("|")[2:-1]]
    low, high = wilson(14, 20)
    assert cells[0] == f"0.70 [{low:.2f}, {high:.2f}] ▲"
    assert cells[1].startswith("0.70 [") and cells[1].endswith("]")  # no mark: inside noise
    assert cells[2] == "0.900"  # no interval given: the plain value


def test_demo_writes_tables_1_and_4_from_a_tiny_base(tmp_path, fake_aligned_base):
    fake_aligned_base(lfu_demo)
    plan = lfu_demo.LfUPlan(methods=("lora", "lfu-lora"), attack_methods=("lfu-lora",),
                            extra_runs=(lfu_demo.Run("lfu-lora[random]", "lfu-lora",
                                                     {"lfu_direction": "random"}),),
                            n_train=8, n_heldout=4, n_prompt_questions=2, n_unverifiable=3,
                            n_stability=2, epochs=1.0, batch_size=4, max_new_tokens=6,
                            n_align=4, n_attack=8, n_attack_eval=3, attack_steps=2)
    folder = lfu_demo.run_lfu_demo(output=tmp_path / "out", progress=False, plan=plan)
    assert folder == tmp_path / "out" / "lfu"
    results = json.loads((folder / "results.json").read_text())
    assert list(results["models"]) == ["base", "lora", "lfu-lora", "lfu-lora[random]"]
    for row in results["models"].values():
        assert 0 <= row["in_domain"] <= 1 and 0 <= row["idk"] <= 1 and row["kl"] >= 0
        assert len(row["per_template"]) >= 5 and len(row["stability"]) == 2
    assert results["models"]["base"]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert set(results["attack"]) == {"base", "lfu-lora"}
    assert set(results["attack"]["lfu-lora"]) == {"asr_0", "asr_5"}
    # every Table 1 and Table 4 figure with its 95% interval, from the per-question outcomes
    sizes = {"in_domain": 4, "known": results["sizes"]["known"], "idk": 3}
    for label, entry in results["intervals"].items():
        assert set(entry) == {"in_domain", "known", "idk", "kl"}
        for key, m in entry.items():
            assert m["low"] <= m["value"] <= m["high"]
            assert m["value"] == pytest.approx(results["models"][label][key])
            if key != "kl":
                assert m["n"] == sizes[key] and m["interval"] == "wilson"
                assert ("diff" in m) == (label != "base")
    per_q = results["per_question"]["lora"]["in_domain"]
    assert len(per_q) == 4 and set(per_q) <= {0, 1}
    asr = results["attack_intervals"]["lfu-lora"]
    assert asr["asr_5"]["n"] == 3 and asr["asr_5"]["diff"]["n"] == 3
    assert "diff" not in asr["asr_0"]
    md = (folder / "results.md").read_text()
    assert "Table 1" in md and "Rank" in md and "Table 4" in md and "ASR 2-step" in md
    assert "| lfu-lora[random] |" in md
    assert (folder / "stability.png").stat().st_size > 1000
    # Merged weights are dropped, adapters and run records kept.
    run_dir = folder / "models" / "lfu-lora"
    assert (run_dir / "adapter").is_dir() and not list(run_dir.glob("model*.safetensors"))
    with pytest.raises(FileExistsError):
        lfu_demo.run_lfu_demo(output=tmp_path / "out", progress=False, plan=plan)


def test_direction_ablation_compares_three_directions_at_the_default_demos_cost():
    plan = lfu_demo.plan_for(ablation=True)
    assert plan is lfu_demo.DIRECTION_ABLATION
    assert not plan.methods and not plan.attack_methods and plan.folder == "lfu-directions"
    assert [(r.method, r.overrides["lfu_direction"]) for r in plan.extra_runs] == \
        [("lfu-lora", "prev-ce"), ("lfu-lora", "same-step"), ("lfu-lora", "random")]
    default = lfu_demo.DEFAULT  # same data and schedule as the default demo's LfU row
    for key in ("n_train", "n_heldout", "n_prompt_questions", "n_unverifiable", "epochs",
                "batch_size", "learning_rate", "seed"):
        assert getattr(plan, key) == getattr(default, key), key
    assert "lfu-lora[same-step]" in [r.label for r in lfu_demo.ABLATIONS]
    with pytest.raises(ValueError, match="--quick, --full and --ablation"):
        lfu_demo.plan_for(quick=True, ablation=True)


def test_direction_ablation_writes_its_own_folder(tmp_path, fake_aligned_base):
    fake_aligned_base(lfu_demo)
    plan = dataclasses.replace(lfu_demo.DIRECTION_ABLATION, n_train=8, n_heldout=4,
                               n_prompt_questions=2, n_unverifiable=3, n_stability=2,
                               epochs=1.0, batch_size=4, max_new_tokens=6)
    folder = lfu_demo.run_lfu_demo(output=tmp_path / "out", progress=False, plan=plan)
    assert folder == tmp_path / "out" / "lfu-directions"
    results = json.loads((folder / "results.json").read_text())
    assert list(results["models"]) == ["base", "lfu-lora[prev-ce]", "lfu-lora[same-step]",
                                       "lfu-lora[random]"]
    assert results["attack"] == {}
    md = (folder / "results.md").read_text()
    assert "| lfu-lora[same-step] |" in md and "Prompt variation" in md
    assert "Table 4" not in md and "Algorithm 1" in md


def test_demo_ablation_flag_needs_lfu(tmp_path):
    from typer.testing import CliRunner

    from forgetkit.cli import app

    res = CliRunner().invoke(app, ["demo", "--ablation", "--output", str(tmp_path)])
    assert res.exit_code != 0 and "--lfu --ablation" in res.output
    assert not (tmp_path / "lfu-directions").exists()


@pytest.mark.slow
def test_quick_lfu_demo_on_smollm2(tmp_path):
    folder = lfu_demo.run_lfu_demo(output=tmp_path, quick=True, progress=False)
    results = json.loads((folder / "results.json").read_text())
    rows = results["models"]
    assert rows["lora"]["in_domain"] > rows["base"]["in_domain"]  # SFT learns the task
    assert results["attack"]["lora"]["asr_5"] >= results["attack"]["lora"]["asr_0"]
