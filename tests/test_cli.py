import json

from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.data.records import read_qa

runner = CliRunner()


def test_data_synth_writes_deterministic_files(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (a, b):
        res = runner.invoke(app, ["data", "synth", "--kind", "contracts", "--n", "2",
                                  "--seed", "5", "--output", str(out)])
        assert res.exit_code == 0, res.output
    assert a.read_text() == b.read_text()
    assert len(read_qa(a)) == 40
    res = runner.invoke(app, ["data", "synth", "--kind", "contracts", "--n", "2",
                              "--output", str(a)])
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_data_synth_unknown_kind(tmp_path):
    res = runner.invoke(app, ["data", "synth", "--kind", "poems", "--output",
                              str(tmp_path / "x.jsonl")])
    assert res.exit_code == 2 and "poems" in res.output
    assert not (tmp_path / "x.jsonl").exists()


def test_train_then_eval_from_the_command_line(tmp_path):
    data = tmp_path / "d.jsonl"
    runner.invoke(app, ["data", "synth", "--kind", "contracts", "--n", "1", "--output",
                        str(data)])
    out = tmp_path / "model"
    res = runner.invoke(app, ["train", "--model", "tiny-random-llama", "--data", str(data),
                              "--method", "lora", "--output", str(out), "--max-steps", "2",
                              "--batch-size", "4", "--save-strategy", "no", "--no-progress"])
    assert res.exit_code == 0, res.output
    unseen = tmp_path / "u.jsonl"
    runner.invoke(app, ["data", "synth", "--kind", "unverifiable", "--n", "4", "--output",
                        str(unseen)])
    result_file = tmp_path / "eval.json"
    res = runner.invoke(app, ["eval", "--model", str(out), "--ft", str(data), "--unseen",
                              str(unseen), "--reference", "tiny-random-llama",
                              "--max-new-tokens", "4", "--output", str(result_file)])
    assert res.exit_code == 0, res.output
    result = json.loads(result_file.read_text())
    assert result["sets"]["d"]["n"] == 20 and result["sets"]["u"]["n"] == 4
    assert 0.0 <= result["sets"]["d"]["metrics"]["rouge1_recall"] <= 1.0
    assert result["kl_to_base"] > 0  # LoRA steps moved the model away from its base


def test_train_config_file_with_flag_override(tmp_path):
    data = tmp_path / "d.jsonl"
    runner.invoke(app, ["data", "synth", "--kind", "known", "--n", "8", "--output", str(data)])
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: tiny-random-llama\ndata: {data}\nmethod: full\nmax_steps: 1\n"
                   "save_strategy: 'no'\nprogress: false\n")
    res = runner.invoke(app, ["train", "--config", str(cfg), "--output", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "m" / "forgetkit_run.json").read_text())
    assert run["config"]["method"] == "full" and run["global_step"] == 1


def test_train_reports_bad_data_with_file_and_line(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "Q?", "answer": "A"}\nnot json\n')
    res = runner.invoke(app, ["train", "--model", "tiny-random-llama", "--data", str(data),
                              "--output", str(tmp_path / "m")])
    assert res.exit_code == 2
    assert f"{data}:2: not valid JSON" in res.output
    assert not (tmp_path / "m").exists()


def test_eval_with_unknown_suite_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["eval", "--model", "tiny-random-llama", "--suite", "vibes",
                              "--output", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "unknown suite 'vibes'" in res.output


def test_shipped_config_presets_are_valid():
    from pathlib import Path

    from forgetkit.train.config import load_train_config

    presets = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert presets
    for preset in presets:
        cfg = load_train_config(preset)
        assert cfg.method == preset.stem


def test_sweep_grid_is_checked_before_anything_runs(tmp_path):
    from forgetkit.studies.sweep import parse_grid

    assert parse_grid(["learning_rate=1e-4,3e-4", "sparsity=0.5"], "seat") == {
        "learning_rate": [1e-4, 3e-4], "sparsity": [0.5]}
    res = runner.invoke(app, ["sweep", "--method", "seat", "--grid", "gamm=1",
                              "--output", str(tmp_path / "s")])
    assert res.exit_code == 2 and "'gamm' is not an option of method 'seat'" in res.output
    res = runner.invoke(app, ["sweep", "--method", "seat", "--grid", "sparsity=1.5",
                              "--output", str(tmp_path / "s")])
    assert res.exit_code == 2 and "strictly between 0 and 1" in res.output
    assert not (tmp_path / "s").exists()


def test_eval_ignorance_suite_from_the_command_line(tmp_path):
    files = {}
    for kind, n in (("unverifiable", 8), ("known", 8)):
        files[kind] = tmp_path / f"{kind}.jsonl"
        runner.invoke(app, ["data", "synth", "--kind", kind, "--n", str(n), "--output",
                            str(files[kind])])
    out = tmp_path / "ign.json"
    res = runner.invoke(app, ["eval", "--model", "tiny-random-llama", "--suite", "ignorance",
                              "--base", "tiny-random-llama", "--judge", "string-match",
                              "--unseen", str(files["unverifiable"]), "--known",
                              str(files["known"]), "--max-new-tokens", "4",
                              "--output", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    ign = result["ignorance"]
    # The model is its own base: no drift, no change in ignorance awareness.
    assert ign["ia_reduction"] == 0.0
    assert max(ign["sets"]["unverifiable"]["drift_l2"]) == 0.0
    assert "judged_idk" in result["sets"]["unverifiable"]["metrics"]


def test_eval_ignorance_needs_a_base_and_a_loadable_judge(tmp_path):
    unseen = tmp_path / "u.jsonl"
    runner.invoke(app, ["data", "synth", "--kind", "unverifiable", "--n", "2", "--output",
                        str(unseen)])
    res = runner.invoke(app, ["eval", "--model", "tiny-random-llama", "--suite", "ignorance",
                              "--unseen", str(unseen), "--output", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "needs --base" in res.output
    res = runner.invoke(app, ["eval", "--model", "tiny-random-llama", "--judge",
                              str(tmp_path / "no-such-judge"), "--unseen", str(unseen),
                              "--output", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "no-such-judge" in res.output
    assert not (tmp_path / "r.json").exists()
