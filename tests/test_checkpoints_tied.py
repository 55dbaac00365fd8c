"""Sparse tuning and SEAT checkpoint and resume on models with tied input and output
embeddings (SmolLM2, Llama-3.2, small Qwen2.5): the run interrupted after its first
checkpoint and resumed ends with the weights of the run never interrupted."""

import pytest
import torch
from safetensors.torch import load_file

from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.train import trainer as trainer_mod
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import train, work_dir


@pytest.fixture(scope="module")
def tied(tmp_path_factory):
    root = tmp_path_factory.mktemp("tied")
    tok = models._finish_tokenizer(models.tiny_tokenizer())
    model = models.tiny_model(len(tok), tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                              bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    models.save(model, tok, root / "model")
    return root / "model", write_qa(synth("contracts", 1, seed=0)[:8], root / "d.jsonl")


class Stop(Exception):
    pass


@pytest.mark.parametrize("method", ["sparse", "seat"])
def test_sparse_runs_on_tied_models_checkpoint_and_resume(tied, tmp_path, method, monkeypatch):
    model, data = tied
    common = dict(model=str(model), data=data, method=method, max_steps=4, batch_size=4,
                  save_strategy="steps", save_steps=2, learning_rate=1e-3, progress=False)
    whole = train(TrainConfig(output=tmp_path / "whole", **common))

    original = trainer_mod.ForgetTrainer._save_checkpoint

    def save_then_stop(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise Stop

    monkeypatch.setattr(trainer_mod.ForgetTrainer, "_save_checkpoint", save_then_stop)
    out = tmp_path / "resumed"
    with pytest.raises(Stop):
        train(TrainConfig(output=out, **common))
    assert (work_dir(out) / "checkpoint-2").is_dir() and not out.exists()
    monkeypatch.undo()
    train(TrainConfig(output=out, resume=True, **common))
    a, b = load_file(whole / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    base = load_file(model / "model.safetensors")
    assert not torch.equal(a["model.embed_tokens.weight"], base["model.embed_tokens.weight"])
