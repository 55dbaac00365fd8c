"""Each part's options live with it: flat keys and flags reach the part that owns them, a key
of another method is refused by name, and a new option is a flag without touching the CLI."""

import json

import pytest
import torch
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.config import ConfigError
from forgetkit.lm import models
from forgetkit.train.config import TrainConfig, load_train_config
from forgetkit.train.kl_to_base import KLOptions
from forgetkit.train.l2_to_base import L2ToBaseOptions
from forgetkit.train.run import train

runner = CliRunner()


def test_flat_keys_reach_the_options_of_the_methods_parts():
    cfg = TrainConfig(method="seat", gamma=0.5, sparsity=0.7, seed=3)
    assert cfg.options(KLOptions).gamma == 0.5 and cfg.gamma == 0.5
    assert cfg.sparsity == 0.7 and cfg.mask_seed == 3 and cfg.perturb_seed == 3  # from seed
    flat = cfg.flat()
    assert flat["gamma"] == 0.5 and flat["method"] == "seat" and "lfu_alpha" not in flat
    with pytest.raises(AttributeError):
        _ = TrainConfig(method="full").gamma  # full has no KL term


def test_an_option_of_another_method_is_refused_with_its_owners(tmp_path):
    with pytest.raises(ConfigError, match="gamma: does not apply to method 'full'; it is an "
                       "option of full-kl, seat"):
        load_train_config(method="full", gamma=0.5)
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("method: lora\nlora_r: 4\nsparsity: 0.9\n")
    with pytest.raises(ConfigError, match=r"sparsity \(.*run\.yaml:3\): does not apply"):
        load_train_config(yaml_file)


def test_every_method_option_is_a_flag_naming_its_methods():
    res = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for flag in ("--gamma", "--sparsity", "--lfu-alpha", "--lora-target-modules",
                 "--l2-lambda", "--kl-top-k", "--ewc-lambda"):
        assert flag in res.output, flag
    gamma = next(line for line in res.output.splitlines() if "--gamma" in line)
    assert "seat" in gamma and "full-kl" in gamma
    res = runner.invoke(app, ["unlearn", "--help"], env={"COLUMNS": "200"})
    assert "--kif-push" in res.output and "--npo-beta" in res.output
    assert "--lfu-alpha" not in res.output  # not an option of any unlearning method


def test_method_flags_run_a_training(tmp_path, contracts_file):
    out = tmp_path / "m"
    res = runner.invoke(app, ["train", "--model", models.TINY, "--data", str(contracts_file),
                              "--method", "l2-to-base", "--l2-lambda", "0.25", "--output",
                              str(out), "--max-steps", "1", "--batch-size", "4",
                              "--save-strategy", "no", "--no-progress"])
    assert res.exit_code == 0, res.output
    run = json.loads((out / "forgetkit_run.json").read_text())
    assert run["config"]["l2_lambda"] == 0.25 and run["config"]["method"] == "l2-to-base"
    bad = runner.invoke(app, ["train", "--model", models.TINY, "--data", str(contracts_file),
                              "--method", "full", "--gamma", "2", "--output",
                              str(tmp_path / "n")])
    assert bad.exit_code == 2 and "does not apply to method 'full'" in bad.output
    assert not (tmp_path / "n").exists()


def _distance_to_base(out, base_state):
    model, _ = models.load(str(out))
    return sum(float(((p.detach() - base_state[n]) ** 2).sum())
               for n, p in model.named_parameters())


def test_l2_to_base_holds_the_weights_near_the_base(tmp_path, contracts_file):
    torch.manual_seed(0)
    base, _ = models.load(models.TINY)
    base_state = {n: p.detach().clone() for n, p in base.named_parameters()}
    common = dict(model=models.TINY, data=contracts_file, max_steps=3, batch_size=4,
                  learning_rate=1e-2, save_strategy="no", progress=False)
    free = train(TrainConfig(method="full", output=tmp_path / "free", **common))
    held = train(TrainConfig(method="l2-to-base", l2_lambda=50.0, output=tmp_path / "held",
                             **common))
    assert L2ToBaseOptions().l2_lambda == 0.01
    assert _distance_to_base(held, base_state) < 0.5 * _distance_to_base(free, base_state)


def test_a_renamed_option_keeps_its_old_name_with_a_warning(tmp_path):
    from forgetkit.errors import DeprecatedOptionWarning
    from forgetkit.unlearn.config import load_unlearn_config

    yaml_file = tmp_path / "kif.yaml"
    yaml_file.write_text("method: kif\nkif_strength: 4\n")
    with pytest.warns(DeprecatedOptionWarning, match="'kif_strength' is now 'kif_push'"):
        cfg = load_unlearn_config(yaml_file)
    assert cfg.kif_push == 4.0 and "kif_strength" not in cfg.flat()
    with pytest.raises(ConfigError, match="given twice, also as kif_strength"), \
            pytest.warns(DeprecatedOptionWarning):
        load_unlearn_config(yaml_file, kif_push=2.0)
    res = runner.invoke(app, ["unlearn", "--help"], env={"COLUMNS": "200"})
    line = next(line for line in res.output.splitlines() if "--kif-push" in line)
    assert "--kif-strength" in line  # the old flag is an alias of the new one
