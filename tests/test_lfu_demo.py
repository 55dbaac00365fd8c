"""The LfU demo (testbed/lfu_demo.py) and its tables (report/lfu_tables.py)."""

import json

import pytest

from forgetkit import models
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.report.lfu_tables import average_ranks, table1
from forgetkit.testbed import lfu_demo


def test_average_rank_is_the_mean_of_category_ranks_with_shared_ties():
    rows = {"base": {"in_domain": 0.0, "known": 1.0, "idk": 1.0, "kl": 0.0},
            "a": {"in_domain": 0.5, "known": 0.9, "idk": 0.5, "kl": 0.2},
            "b": {"in_domain": 0.4, "known": 0.9, "idk": 0.9, "kl": 0.1}}
    # a: ranks 1, 1.5, 2, 2 -> 1.625; b: 2, 1.5, 1, 1 -> 1.375 (lower KL is better)
    assert average_ranks(rows) == {"a": pytest.approx(1.625), "b": pytest.approx(1.375)}
    md = table1(rows)
    assert "| base | 0.000 | 1.000 | 1.000 | 0.000 | – |" in md
    assert "| b | 0.400 | 0.900 | 0.900 | 0.100 | 1.4 |" in md


def test_demo_writes_tables_1_and_4_from_a_tiny_base(tmp_path, monkeypatch):
    base = tmp_path / "base"
    model, tok = models.load(models.TINY)
    models.save(model, tok, base / "model")
    write_qa(synth("known", 4, seed=0), base / "data" / "known.jsonl")
    monkeypatch.setattr(lfu_demo, "prepare_base",
                        lambda progress=True: (base, {"subjects": [], "recipe": {}}))
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
    md = (folder / "results.md").read_text()
    assert "Table 1" in md and "Rank" in md and "Table 4" in md and "ASR 2-step" in md
    assert "| lfu-lora[random] |" in md
    assert (folder / "stability.png").stat().st_size > 1000
    # Merged weights are dropped, adapters and run records kept.
    run_dir = folder / "models" / "lfu-lora"
    assert (run_dir / "adapter").is_dir() and not list(run_dir.glob("model*.safetensors"))
    with pytest.raises(FileExistsError):
        lfu_demo.run_lfu_demo(output=tmp_path / "out", progress=False, plan=plan)


@pytest.mark.slow
def test_quick_lfu_demo_on_smollm2(tmp_path):
    folder = lfu_demo.run_lfu_demo(output=tmp_path, quick=True, progress=False)
    results = json.loads((folder / "results.json").read_text())
    rows = results["models"]
    assert rows["lora"]["in_domain"] > rows["base"]["in_domain"]  # SFT learns the task
    assert results["attack"]["lora"]["asr_5"] >= results["attack"]["lora"]["asr_0"]
