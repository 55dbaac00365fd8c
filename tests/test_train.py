import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from forgetkit.config import ConfigError
from forgetkit.data.records import QARecord, write_qa
from forgetkit.lm import models
from forgetkit.train.config import TrainConfig, load_train_config
from forgetkit.train.losses import answer_cross_entropy
from forgetkit.train.run import RUN_FILE, train, work_dir


@pytest.fixture
def qa_file(tmp_path):
    recs = [QARecord(f"What is the code of the Vornix locker {i}?", f"The code is {i * 7}.")
            for i in range(12)]
    return write_qa(recs, tmp_path / "train.jsonl")


def _config(qa_file, out, **kw):
    base = dict(model=models.TINY, data=qa_file, output=out, epochs=2, batch_size=4,
                learning_rate=1e-3, progress=False, save_strategy="no")
    base.update(kw)
    return TrainConfig(**base)


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_training_lowers_the_loss_and_reloads_by_path(qa_file, tmp_path, tiny, method):
    out = train(_config(qa_file, tmp_path / method, method=method, epochs=4))
    run = json.loads((out / RUN_FILE).read_text())
    assert run["global_step"] == 12  # 12 examples / batch 4 * 4 epochs
    losses = [h["loss"] for h in run["log_history"] if "loss" in h]
    assert losses[-1] < losses[0]
    plain = AutoModelForCausalLM.from_pretrained(out)  # no peft needed to reload
    assert plain.config.use_cache  # generation from the checkpoint uses its KV cache
    base_model, _ = tiny
    changed = [n for n, p in plain.named_parameters()
               if not torch.equal(p, base_model.get_parameter(n))]
    assert changed
    if method == "lora":
        assert (out / "adapter" / "adapter_config.json").is_file()
        # LoRA leaves embeddings and norms alone.
        assert all("proj" in n for n in changed)


def test_answer_cross_entropy_ignores_prompt_tokens():
    logits = torch.randn(1, 4, 7)
    labels = torch.tensor([[-100, -100, 3, 5]])
    expected = torch.nn.functional.cross_entropy(logits[0, 1:3], torch.tensor([3, 5]))
    assert torch.isclose(answer_cross_entropy(logits, labels), expected)


def test_refuses_to_overwrite_existing_output(qa_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        train(_config(qa_file, out))
    train(_config(qa_file, out, overwrite=True, max_steps=1))
    assert (out / "model.safetensors").is_file()


def test_resume_continues_from_the_last_checkpoint(qa_file, tmp_path, monkeypatch):
    out = tmp_path / "out"
    cfg = _config(qa_file, out, epochs=3, save_strategy="epoch")
    from forgetkit.train import trainer as trainer_mod

    # Interrupt the first run after its first epoch checkpoint is written.
    class Stop(Exception):
        pass

    original = trainer_mod.ForgetTrainer._save_checkpoint

    def save_then_stop(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise Stop

    monkeypatch.setattr(trainer_mod.ForgetTrainer, "_save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        train(cfg)
    assert not out.exists() and work_dir(out).is_dir()
    monkeypatch.undo()
    calls = []
    step = trainer_mod.ForgetTrainer.training_step

    def counted(self, *args, **kwargs):
        calls.append(1)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(trainer_mod.ForgetTrainer, "training_step", counted)
    train(cfg.model_copy(update={"resume": True}))
    run = json.loads((out / RUN_FILE).read_text())
    # 9 steps in all, of which the first epoch (3 steps) came from the checkpoint.
    assert run["global_step"] == 9 and len(calls) == 6
    assert not work_dir(out).exists()  # checkpoints are cleared once the output is complete
    # The resumed run ends where an uninterrupted one does.
    full = train(_config(qa_file, tmp_path / "straight", epochs=3, save_strategy="epoch"))
    a, b = _weights(out), _weights(full)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_resume_without_checkpoint_is_a_clear_error(qa_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoints for this output"):
        train(_config(qa_file, tmp_path / "out", resume=True))


def test_config_file_errors_name_the_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\nlearnin_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"learnin_rate \(.*c\.yaml:2\): unknown key"):
        load_train_config(cfg)
    cfg.write_text("method: nonsense\n")
    with pytest.raises(ConfigError, match="unknown method 'nonsense'"):
        load_train_config(cfg)
    cfg.write_text("epochs: [1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+: not valid YAML"):
        load_train_config(cfg)


def test_flags_override_the_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\nbatch_size: 3\n")
    loaded = load_train_config(cfg, batch_size=5, epochs=None)
    assert loaded.epochs == 2 and loaded.batch_size == 5
