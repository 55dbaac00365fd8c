"""Saving after FSDP or DeepSpeed: the Trainer's own save gathers the whole state, the first
process reassembles the model from it. FSDP does not run on this CPU (the Trainer falls back
to DDP), so the save path is run here by telling ``train`` its trainer is sharded: the
Trainer's save and the reassembly are real, and must give the very weights of a plain run."""

from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from forgetkit.data.records import QARecord, write_qa
from forgetkit.errors import UserError
from forgetkit.lm import models
from forgetkit.train import run as run_mod
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import RUN_FILE, train


@pytest.fixture
def qa_file(tmp_path):
    return write_qa([QARecord(f"What is the code of the Vornix locker {i}?", f"It is {i * 7}.")
                     for i in range(6)], tmp_path / "train.jsonl")


def _config(qa_file, out, method, **kw):
    return TrainConfig(model=models.TINY, data=qa_file, output=out, method=method, max_steps=3,
                       batch_size=3, learning_rate=1e-2, save_strategy="no", progress=False,
                       **kw)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_sharded_run_saves_the_same_model_as_a_plain_one(qa_file, tmp_path, monkeypatch,
                                                           method):
    plain = train(_config(qa_file, tmp_path / "plain", method, save_dtype="bfloat16"))
    monkeypatch.setattr(run_mod, "sharded_weights", lambda trainer=None: trainer and "FSDP")
    monkeypatch.setattr(run_mod, "check_full_state_save", lambda trainer, kind: None)
    gathered = train(_config(qa_file, tmp_path / "gathered", method, save_dtype="bfloat16"))
    want, got = load_file(plain / "model.safetensors"), load_file(gathered / "model.safetensors")
    assert want.keys() == got.keys()
    assert all(got[k].dtype == torch.bfloat16 and torch.equal(want[k], got[k]) for k in want)
    if method == "lora":  # the adapter is kept too, naming the spec given
        adapter = gathered / "adapter"
        assert (adapter / "adapter_model.safetensors").is_file()
        assert models.adapter_base(adapter) == models.TINY
    run = (gathered / RUN_FILE).read_text()
    assert "gathered by the Trainer under FSDP" in run
    assert not run_mod.work_dir(gathered).exists()  # the gathered copy went with the checkpoints


def test_what_cannot_be_gathered_is_refused_before_the_model_loads(qa_file, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    assert run_mod.sharded_weights() is None  # ZeRO-2: every process holds the whole model
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    assert run_mod.sharded_weights() == "DeepSpeed ZeRO-3"
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setattr(models, "load", lambda *a, **k: pytest.fail("the model loaded"))
    with pytest.raises(UserError, match=r"parameters 'sparse' cannot be gathered .* FSDP"):
        train(_config(qa_file, tmp_path / "seat", "seat"))
    with pytest.raises(UserError, match="not loaded"):
        train(_config(qa_file, tmp_path / "full", "full"), loaded=(object(), object()))


def test_a_save_that_would_write_shards_is_refused_naming_the_setting():
    def trainer(**state):
        return SimpleNamespace(accelerator=SimpleNamespace(state=SimpleNamespace(**state)))

    fsdp = SimpleNamespace(state_dict_type="StateDictType.SHARDED_STATE_DICT")
    with pytest.raises(UserError, match="fsdp_state_dict_type: FULL_STATE_DICT"):
        run_mod.check_full_state_save(trainer(fsdp_plugin=fsdp), "FSDP")
    fsdp.state_dict_type = "StateDictType.FULL_STATE_DICT"
    run_mod.check_full_state_save(trainer(fsdp_plugin=fsdp), "FSDP")
    zero3 = SimpleNamespace(zero_stage=3, deepspeed_config={"zero_optimization": {"stage": 3}})
    ds = trainer(deepspeed_plugin=zero3)
    ds.is_deepspeed_enabled = True
    assert run_mod.sharded_weights(ds) == "DeepSpeed ZeRO-3"
    with pytest.raises(UserError, match="zero3_save_16bit_model: true"):
        run_mod.check_full_state_save(ds, "DeepSpeed ZeRO-3")
    zero3.deepspeed_config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = True
    run_mod.check_full_state_save(ds, "DeepSpeed ZeRO-3")
    zero3.zero_stage = 2  # the whole model in every process: saved as in any run
    assert run_mod.sharded_weights(ds) is None
