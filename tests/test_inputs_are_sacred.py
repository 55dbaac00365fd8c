"""No command writes into, over or inside an input, with or without --overwrite: the output
that is, holds or sits inside a model, data, config or cache file is refused before any work,
and the input's bytes stay the same."""

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.io import OutputOverlapsInputError, check_output
from forgetkit.lm import models

runner = CliRunner()


def _digest(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "D"
    data = write_qa(synth("contracts", 1, seed=0)[:8], folder / "all.jsonl")
    forget = write_qa(synth("authors", 1, seed=1)[:4], folder / "forget.jsonl")
    retain = write_qa(synth("authors", 1, seed=2)[:4], folder / "retain.jsonl")
    model = tmp_path / "M"
    model.mkdir()
    (model / "config.json").write_text("{}")  # refused before anything is loaded
    config = folder / "run.yaml"
    config.write_text("max_steps: 1\n")
    return {"folder": folder, "data": data, "forget": forget, "retain": retain,
            "model": model, "config": config}


def _refused(args, *inputs):
    before = [_digest(p) for p in inputs]
    res = runner.invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 2, res.output
    assert "inputs are never written to" in res.output
    assert [_digest(p) for p in inputs] == before
    return res.output


def test_train_refuses_an_output_over_its_model_data_or_config(files):
    data, folder = files["data"], files["folder"]
    out = _refused(["train", "--model", str(files["model"]), "--data", str(data), "--output",
                    str(files["model"])], files["model"])
    assert "is the input model" in out
    out = _refused(["train", "--model", models.TINY, "--data", str(data), "--output",
                    str(folder)], folder)
    assert "holds the input data file" in out
    out = _refused(["train", "--model", models.TINY, "--data", str(data), "--output",
                    str(data)], data)
    assert "is the input data file" in out
    assert not list(folder.glob(".*"))  # no hidden leftovers such as all.jsonl.old
    elsewhere = write_qa(synth("known", 4, seed=0), folder.parent / "known.jsonl")
    out = _refused(["train", "--config", str(files["config"]), "--model", models.TINY,
                    "--data", str(elsewhere), "--output", str(folder)], files["config"])
    assert "holds the input config file" in out


def test_unlearn_refuses_an_output_that_holds_its_forget_set(files):
    _refused(["unlearn", "--model", models.TINY, "--forget", str(files["forget"]),
              "--retain", str(files["retain"]), "--method", "ga", "--output",
              str(files["folder"])], files["folder"])


def test_eval_refuses_to_write_its_results_over_a_question_file(files):
    out = _refused(["eval", "--model", models.TINY, "--ft", str(files["data"]), "--output",
                    str(files["data"])], files["data"])
    assert "is the input question file" in out


def test_the_guard_names_what_it_found(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    with pytest.raises(OutputOverlapsInputError, match="sits inside the input model"):
        check_output(model / "out", {"model": model})
    check_output(tmp_path / "elsewhere", {"model": model, "data": None,
                                                       "hub": "org/name"})


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, files):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    res = runner.invoke(app, ["train", "--model", models.TINY, "--data", str(files["data"]),
                              "--output", str(blocker / "model"), "--max-steps", "1"])
    assert res.exit_code == 2 and "is a file, not a folder" in res.output
    assert blocker.read_text() == "not a folder"
