"""Run options as a transformers user writes them, reproducible across processes, and a run
record that says what the run ran on."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.config import ConfigError
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.train.config import TrainConfig, load_train_config
from forgetkit.train.run import planned_steps, train

runner = CliRunner()


def test_transformers_names_are_accepted_in_yaml_and_as_flags(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("num_train_epochs: 2\nper_device_train_batch_size: 3\n"
                   "gradient_accumulation_steps: 4\nlr_scheduler_type: cosine\n"
                   "warmup_ratio: 0.1\n")
    loaded = load_train_config(cfg)
    assert (loaded.epochs, loaded.batch_size, loaded.gradient_accumulation,
            loaded.lr_scheduler, loaded.warmup_ratio) == (2, 3, 4, "cosine", 0.1)
    with pytest.raises(ConfigError, match="given twice, also as num_train_epochs"):
        load_train_config(cfg, epochs=5)
    data = write_qa(synth("contracts", 1, seed=0)[:4], tmp_path / "d.jsonl")
    res = runner.invoke(app, ["train", "--model", models.TINY, "--data", str(data),
                              "--output", str(tmp_path / "out"), "--max-steps", "1",
                              "--per-device-train-batch-size", "2",
                              "--gradient-accumulation-steps", "2", "--no-progress",
                              "--save-strategy", "no"])
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "out" / "forgetkit_run.json").read_text())
    assert run["config"]["batch_size"] == 2 and run["config"]["gradient_accumulation"] == 2
    env = run["environment"]
    assert env["versions"]["torch"] and env["versions"]["transformers"]
    assert env["device"] == "cpu" and env["trained_dtype"] == env["saved_dtype"] == "float32"
    assert env["started"].endswith("+00:00")


def test_report_to_a_package_that_is_missing_is_a_clear_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    data = write_qa(synth("contracts", 1, seed=0)[:4], tmp_path / "d.jsonl")
    res = runner.invoke(app, ["train", "--model", models.TINY, "--data", str(data),
                              "--output", str(tmp_path / "out"), "--report-to", "wandb"])
    assert res.exit_code == 2 and "pip install wandb" in res.output


_LORA_A = """
import hashlib, sys
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import prepare_run
cfg = TrainConfig(model="tiny-random-llama", method="lora", data=sys.argv[1], seed=int(sys.argv[2]),
                  output=sys.argv[1] + ".out", progress=False)
ctx, _, _ = prepare_run(cfg)
h = hashlib.sha256()
for name, p in sorted(ctx.model.named_parameters()):
    if "lora_A" in name:
        h.update(p.detach().numpy().tobytes())
print(h.hexdigest())
"""


def test_the_seed_draws_the_same_lora_weights_in_two_fresh_processes(tmp_path):
    data = write_qa(synth("contracts", 1, seed=0)[:4], tmp_path / "d.jsonl")

    def draw(seed):
        out = subprocess.run([sys.executable, "-c", _LORA_A, str(data), str(seed)],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    first = draw(3)
    assert draw(3) == first and draw(4) != first
    assert TrainConfig(seed=3).seed == 3


def test_min_steps_gives_a_small_set_more_passes_and_leaves_a_large_one_alone(tmp_path):
    data = write_qa(synth("contracts", 1, seed=0)[:6], tmp_path / "d.jsonl")
    config = TrainConfig(model=models.TINY, data=data, output=tmp_path / "out", epochs=2,
                         batch_size=4, min_steps=7, save_strategy="no", progress=False)
    # 6 examples at batch 4: 2 steps an epoch, 4 in 2 epochs, raised to 7
    assert planned_steps(config, 6) == 7
    assert planned_steps(config.model_copy(update={"min_steps": 3}), 6) == 4
    assert planned_steps(config.model_copy(update={"gradient_accumulation": 2}), 6) == 7
    assert planned_steps(config.model_copy(update={"max_steps": 2}), 6) == 2
    out = train(config)
    run = json.loads((out / "forgetkit_run.json").read_text())
    assert run["global_step"] == 7
    out = train(config.model_copy(update={"min_steps": 3, "output": tmp_path / "out2"}))
    assert json.loads((out / "forgetkit_run.json").read_text())["global_step"] == 4
