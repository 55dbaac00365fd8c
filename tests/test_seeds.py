"""``forgetkit demo --seeds N`` (studies/seeds.py): one run per training seed, then each
cell as mean +- sample standard deviation, the per-seed values kept."""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.report.seeds_tables import (
    measure_title,
    p_values_cell,
    render_seeds,
    seeds_table,
    spread_cell,
)
from forgetkit.studies import lfu as lfu_demo
from forgetkit.studies.seeds import aggregate, run_seeds, table_rows


def test_aggregate_keeps_every_value_with_its_mean_std_and_count():
    runs = [{"study": "lfu", "models": {"lora": {"kl": v, "idk": 1.0, "per_template": {},
                                                 "flag": True}}}
            for v in (0.1, 0.2, 0.6)]
    runs.append({"study": "lfu", "models": {"lora": {"kl": float("nan")}}})
    cell = aggregate(runs)["lora"]["kl"]
    assert cell["values"] == [0.1, 0.2, 0.6] and cell["n"] == 3  # the NaN run is left out
    assert cell["mean"] == pytest.approx(0.3)
    assert cell["std"] == pytest.approx(statistics.stdev([0.1, 0.2, 0.6]))
    assert set(aggregate(runs)["lora"]) == {"kl", "idk"}  # numbers only, no flags or dicts
    assert aggregate(runs[:1])["lora"]["kl"]["std"] == 0.0
    assert spread_cell(cell) == "0.300 ± 0.265"
    assert spread_cell({"mean": 0.5, "std": 0.0, "n": 1}) == "0.500"
    assert spread_cell({"mean": 0.5, "std": 0.0, "n": 3, "values": [0.5] * 3}) == "0.500"


def test_the_seat_summary_names_its_measures_and_draws_every_seed(tmp_path):
    runs = [{"study": "seat", "models": {"contracts/seat": {
        "train/rouge1_recall": ft, "heldout_same/idk_sm": idk, "known/idk_sm": 0.1,
        "kl_to_base": 1.0}}} for ft, idk in ((0.9, 0.8), (0.8, 0.6))]
    assert measure_title("heldout_same/idk_sm") == "IDK held-out same kind"
    assert measure_title("train/rouge1_recall") == "FT score"
    assert measure_title("no_such_measure") == "no_such_measure"  # unregistered: its key
    run = tmp_path / "out" / "seed-7"
    run.mkdir(parents=True)
    (run / "report.html").write_text("<p>seed 7</p>")
    folder = tmp_path / "out" / "seeds"
    folder.mkdir()
    render_seeds({"of": "seat", "train_seeds": [7, 8], "data_seed": 7, "minutes": [1, 1],
                  "runs": [str(run), str(tmp_path / "gone")], "rows": aggregate(runs)}, folder)
    md = (folder / "results.md").read_text()
    assert md.startswith("# SEAT study over 2 training seeds")
    assert "| IDK held-out same kind ↑ | 0.700 ± 0.141 |" in md
    assert "| IDK known ↓ |" in md  # refusing what the model knows is a loss
    assert "[seed-7](../seed-7/report.html)" in md and f"`{tmp_path / 'gone'}`" in md
    assert "![every seed](seeds.png)" in md and (folder / "seeds.png").stat().st_size > 1000


def test_the_lfu_study_summary_carries_its_attack_success_rates():
    run = {"study": "lfu", "models": {"base": {"idk": 1.0}, "lora": {"idk": 0.5}},
           "attack": {"base": {"asr_0": 0.0}, "lora": {"asr_0": 0.1, "asr_5": 0.15}}}
    assert table_rows(run) == {"base": {"idk": 1.0, "asr_0": 0.0},
                               "lora": {"idk": 0.5, "asr_0": 0.1, "asr_5": 0.15}}
    assert measure_title("asr_5") == "ASR after 5 attack steps (Table 4)"


def test_p_values_are_listed_per_seed_not_averaged():
    runs = [{"study": "unlearning", "models": {},
             "summary": {"kif": {"forget_quality": p, "model_utility": 0.5},
                         "retain": {"forget_quality": 1.0, "model_utility": 0.6}}}
            for p in (6.6e-05, 5e-04, 6.6e-05)]
    rows = aggregate(runs)
    assert p_values_cell(rows["kif"]["forget_quality"]) == "7e-05 / 5e-04 / 7e-05"
    assert p_values_cell(rows["retain"]["forget_quality"]) == "1"
    table = seeds_table(rows)
    assert "| forget quality ↑ | 7e-05 / 5e-04 / 7e-05 | 1 |" in table
    # a value every seed gave alike is shown alone: no "± 0.000" that reads as measured
    assert "| model utility ↑ | 0.500 | 0.600 |" in table


def test_the_unlearning_study_is_summarised_from_its_summary():
    rows = table_rows({"study": "unlearning", "models": {"ga": {"steps": 3}},
                       "summary": {"ga": {"forget_quality": 0.4, "latent_trace": None}}})
    assert rows == {"ga": {"forget_quality": 0.4}}


def test_two_seeds_of_a_tiny_lfu_study_train_differently_and_are_summarised(
        tmp_path, fake_aligned_base):
    fake_aligned_base(lfu_demo)
    plan = lfu_demo.LfUPlan(methods=("lora",), attack_methods=(), n_train=8, n_heldout=4,
                            n_prompt_questions=2, n_unverifiable=3, n_stability=2, epochs=1.0,
                            batch_size=4, max_new_tokens=4, n_align=4, n_attack=8,
                            n_attack_eval=3, attack_steps=1)
    out = tmp_path / "out"
    summary = run_seeds("lfu", lfu_demo.run_lfu_demo, 2, 3, out, overwrite=False,
                        progress=False, subfolder="lfu", plan=plan)
    assert summary == out / "seeds" / "lfu"
    runs = [json.loads((out / f"seed-{s}" / "lfu" / "results.json").read_text())
            for s in (3, 4)]
    assert [r["plan"]["train_seed"] for r in runs] == [3, 4]
    assert runs[0]["plan"]["seed"] == runs[1]["plan"]["seed"] == plan.seed  # same data
    kls = [r["models"]["lora"]["kl"] for r in runs]
    assert kls[0] != kls[1]  # the seed reaches training (adapters' start, data order)
    results = json.loads((summary / "results.json").read_text())
    assert results["study"] == "seeds" and results["of"] == "lfu"
    assert results["train_seeds"] == [3, 4]
    cell = results["rows"]["lora"]["kl"]
    assert cell["values"] == kls and cell["mean"] == pytest.approx(sum(kls) / 2)
    assert results["rows"]["base"]["kl"]["std"] == pytest.approx(0.0, abs=1e-9)
    md = (summary / "results.md").read_text()
    assert md.startswith("# LfU study over 2 training seeds") and " ± " in md
    assert "| KL to base ↓ |" in md and "| IDK on unverifiable ↑ |" in md
    assert (summary / "report.html").is_file()
    with pytest.raises(FileExistsError):  # a finished summary is not replaced unasked
        run_seeds("lfu", lfu_demo.run_lfu_demo, 2, 3, out, overwrite=False, progress=False,
                  subfolder="lfu", plan=plan)
    ran = []

    def run_one(**kwargs):
        ran.append(kwargs["train_seed"])
        return lfu_demo.run_lfu_demo(**kwargs)

    with pytest.raises(FileExistsError):  # nor by one over other seeds
        run_seeds("lfu", run_one, 2, 4, out, overwrite=False, progress=False,
                  subfolder="lfu", plan=plan)
    assert ran == []
    # more seeds extend the summary: finished seeds are read, only the missing one trains
    again = run_seeds("lfu", run_one, 3, 3, out, overwrite=False, progress=False,
                      subfolder="lfu", plan=plan)
    assert ran == [5]
    extended = json.loads((again / "results.json").read_text())
    assert extended["train_seeds"] == [3, 4, 5]
    assert extended["rows"]["lora"]["kl"]["values"][:2] == kls
    # an interrupted run (no summary yet) resumes the same way
    (summary / "results.json").unlink()
    run_seeds("lfu", run_one, 3, 3, out, overwrite=False, progress=False,
              subfolder="lfu", plan=plan)
    assert ran == [5]


def test_demo_refuses_zero_seeds_before_any_work(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--seeds", "0", "--output", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--seeds must be at least 1" in res.output
    assert not (tmp_path / "o").exists()
