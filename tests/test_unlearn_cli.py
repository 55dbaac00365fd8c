"""``forgetkit data unlearning`` and ``forgetkit unlearn`` from the command line."""

import json

from safetensors import safe_open
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.data.records import read_qa, write_qa
from forgetkit.train.run import RUN_FILE
from forgetkit.unlearn.run import SIGNATURES_FILE

runner = CliRunner()


def _setting(tmp_path, authors="3", forget="1"):
    out = tmp_path / "data"
    res = runner.invoke(app, ["data", "unlearning", "--authors", authors, "--forget", forget,
                              "--seed", "1", "--output", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_data_unlearning_writes_forget_retain_and_all(tmp_path):
    out = _setting(tmp_path, authors="10", forget="0.1")
    forget, retain = read_qa(out / "forget.jsonl"), read_qa(out / "retain.jsonl")
    assert len(forget) == 20 and len(retain) == 180 and len(read_qa(out / "all.jsonl")) == 200
    assert json.loads((out / "setting.json").read_text())["forget_subjects"] == [
        forget[0].subject]
    res = runner.invoke(app, ["data", "unlearning", "--output", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = runner.invoke(app, ["data", "unlearning", "--authors", "3", "--forget", "3",
                              "--output", str(tmp_path / "x")])
    assert res.exit_code == 2 and "nothing to retain" in res.output


def test_unlearn_end_to_end_on_the_tiny_model(tmp_path):
    data = _setting(tmp_path)
    out = tmp_path / "kif"
    res = runner.invoke(app, ["unlearn", "--model", "tiny-random-llama",
                              "--forget", str(data / "forget.jsonl"),
                              "--retain", str(data / "retain.jsonl"), "--method", "kif",
                              "--output", str(out), "--max-steps", "2", "--batch-size", "4",
                              "--kif-layers", "2", "--save-strategy", "no", "--no-progress"])
    assert res.exit_code == 0, res.output
    # A random model knows no author: the run goes on, and says so.
    assert "nothing to forget" in res.output
    AutoModelForCausalLM.from_pretrained(out)  # a plain checkpoint
    run = json.loads((out / RUN_FILE).read_text())
    assert run["config"]["method"] == "kif" and run["global_step"] == 2
    assert run["config"]["kif_layers"] == [2] and run["notes"]["kif"]["layers"] == [2]
    with safe_open(str(out / SIGNATURES_FILE), "pt") as fh:
        assert fh.get_tensor("directions").shape == (1, 1, 64)
    assert not list(tmp_path.glob(".kif*"))  # no leftovers beside the output
    res = runner.invoke(app, ["unlearn", "--model", "tiny-random-llama",
                              "--forget", str(data / "forget.jsonl"),
                              "--retain", str(data / "retain.jsonl"), "--output", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_unlearn_bad_input_is_a_clear_error(tmp_path):
    data = _setting(tmp_path)
    forget, retain = data / "forget.jsonl", data / "retain.jsonl"

    def run(*args):
        return runner.invoke(app, ["unlearn", "--model", "tiny-random-llama", "--output",
                                   str(tmp_path / "o"), "--max-steps", "1", "--no-progress",
                                   *args])

    overlap = write_qa(read_qa(retain)[:3], tmp_path / "overlap.jsonl")
    res = run("--forget", str(overlap), "--retain", str(retain), "--method", "ga")
    assert res.exit_code == 2 and "share 1 subject" in res.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = run("--forget", str(forget), "--retain", str(empty), "--method", "ga")
    assert res.exit_code == 2 and "empty" in res.output
    res = run("--forget", str(forget), "--retain", str(retain), "--kif-layers", "5")
    assert res.exit_code == 2 and "out of range" in res.output and "1..2" in res.output
    res = run("--forget", str(forget), "--retain", str(retain), "--method", "npo",
              "--adapter")
    assert res.exit_code == 2 and "--parameters lora" in res.output
    res = run("--forget", str(forget), "--retain", str(retain), "--method", "sparse")
    assert res.exit_code == 2 and "unknown unlearning method 'sparse'" in res.output
    res = run("--forget", str(forget))
    assert res.exit_code == 2 and "--retain" in res.output
    assert not (tmp_path / "o").exists()


def test_unlearn_is_watched_on_its_forget_and_retain_sides(tmp_path):
    data = _setting(tmp_path)
    out = tmp_path / "ga"
    res = runner.invoke(app, ["unlearn", "--model", "tiny-random-llama",
                              "--forget", str(data / "forget.jsonl"),
                              "--retain", str(data / "retain.jsonl"), "--method", "ga",
                              "--output", str(out), "--max-steps", "2", "--batch-size", "4",
                              "--save-strategy", "no", "--no-progress", "--monitor-every", "2",
                              "--monitor-size", "2", "--keep-best", "retain - forget"])
    assert res.exit_code == 0, res.output
    run = json.loads((out / RUN_FILE).read_text())
    monitor = run["monitor"]
    assert monitor["measures"] == ["forget", "retain", "idk", "known", "kl"]
    assert [p["step"] for p in monitor["points"]] == [0, 2]
    assert monitor["sets"]["forget"] == 2 and monitor["sets"]["retain"] == 2
    assert monitor["chosen_step"] == 2 and monitor["keep_best_met"]
    res = runner.invoke(app, ["unlearn", "--model", "tiny-random-llama",
                              "--forget", str(data / "forget.jsonl"),
                              "--retain", str(data / "retain.jsonl"), "--method", "ga",
                              "--output", str(tmp_path / "x"), "--keep-best", "ft"])
    assert res.exit_code == 2 and "uses ['ft'], which this run does not measure" in res.output
    assert not (tmp_path / "x").exists()
