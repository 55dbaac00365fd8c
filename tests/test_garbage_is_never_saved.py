"""Nothing non-finite or nonsensical is saved as a success: bad numbers are refused up
front, a run whose weights blow up stops with the step and the loss term, and writes
nothing."""

import pytest
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.config import ConfigError
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.train.config import TrainConfig, load_train_config
from forgetkit.train.run import train, work_dir

runner = CliRunner()


@pytest.mark.parametrize("key, value", [("learning_rate", float("inf")),
                                        ("learning_rate", float("nan")),
                                        ("epochs", float("inf")), ("max_steps", 0),
                                        ("max_steps", -2), ("batch_size", 0)])
def test_nonsense_numbers_are_refused_before_anything_runs(key, value):
    with pytest.raises(ConfigError, match=key):
        load_train_config(**{key: value})


def test_a_diverged_run_names_the_step_and_term_and_saves_nothing(tmp_path):
    data = write_qa(synth("contracts", 1, seed=0)[:8], tmp_path / "d.jsonl")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"training diverged: .*first logged at step \d+: "
                       r".*= nan.*Nothing was saved"):
        train(TrainConfig(model=models.TINY, data=data, method="full", output=out,
                          learning_rate=1e8, max_steps=3, logging_steps=1, batch_size=4,
                          save_strategy="steps", save_steps=1, progress=False))
    assert not out.exists() and not work_dir(out).exists()


def test_eval_refuses_a_batch_size_below_one(tmp_path):
    data = write_qa(synth("known", 4, seed=0), tmp_path / "k.jsonl")
    res = runner.invoke(app, ["eval", "--model", models.TINY, "--known", str(data),
                              "--batch-size", "-2", "--output", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "batch-size" in res.output
    assert not (tmp_path / "r.json").exists()
