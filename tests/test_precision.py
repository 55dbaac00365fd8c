"""Models as people bring them: the dtype they were saved in is kept (a bf16 base gives a bf16
fine-tune, merged LoRA included), loading options reach transformers, and gradient
checkpointing changes memory, not the loss or the gradients, for every method family."""

import json
import os
import stat

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.lm.models import LoadOptions, ModelLoadError
from forgetkit.lm.tokenize import QACollator
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import ListDataset, prepare_run, training_arguments
from forgetkit.train.trainer import ForgetTrainer
from forgetkit.unlearn.config import UnlearnConfig
from forgetkit.unlearn.methods import train_method

runner = CliRunner()


@pytest.fixture(scope="module")
def bf16_base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bf16") / "base"
    model, tok = models.load(models.TINY)
    models.save(model.to(torch.bfloat16), tok, folder)
    return folder


def _dtypes(folder):
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        return {fh.get_slice(k).get_dtype() for k in fh.keys()}


def test_dtype_auto_keeps_the_checkpoint_dtype_and_can_be_overridden(bf16_base):
    model, _ = models.load(str(bf16_base))
    assert next(model.parameters()).dtype == torch.bfloat16
    model, _ = models.load(str(bf16_base), options=LoadOptions(dtype="float32"))
    assert next(model.parameters()).dtype == torch.float32
    assert LoadOptions().pretrained_kwargs()["trust_remote_code"] is False
    kwargs = LoadOptions(attn_implementation="eager", revision="v1").pretrained_kwargs()
    assert kwargs["attn_implementation"] == "eager" and kwargs["revision"] == "v1"


def test_a_device_that_is_not_there_is_refused():
    with pytest.raises(ModelLoadError, match=r"device 'cuda:3': this machine has \d+ CUDA"):
        LoadOptions(device="cuda:3")
    with pytest.raises(ModelLoadError, match="give auto, cpu, cuda or cuda:N"):
        LoadOptions(device="tpu")


def test_a_bf16_base_gives_a_bf16_fine_tune_and_lora_names_the_given_spec(bf16_base, tmp_path):
    data = write_qa(synth("contracts", 1, seed=0)[:4], tmp_path / "d.jsonl")
    common = ["--model", str(bf16_base), "--data", str(data), "--max-steps", "1",
              "--save-strategy", "no", "--no-progress"]
    res = runner.invoke(app, ["train", *common, "--method", "lora", "--output",
                              str(tmp_path / "lora")])
    assert res.exit_code == 0, res.output
    assert _dtypes(tmp_path / "lora") == {"BF16"}
    adapter = json.loads((tmp_path / "lora" / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(bf16_base)
    res = runner.invoke(app, ["train", *common, "--save-dtype", "float32", "--output",
                              str(tmp_path / "full")])
    assert res.exit_code == 0, res.output
    assert _dtypes(tmp_path / "full") == {"F32"}
    # Outputs get the usual permissions, not the owner-only ones of temporary folders.
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "full").stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / "full" / "forgetkit_run.json").stat().st_mode) \
        == 0o666 & ~mask


def test_bf16_mixed_precision_trains_on_the_cpu_and_fp16_asks_for_a_gpu(tmp_path):
    data = write_qa(synth("contracts", 1, seed=0)[:4], tmp_path / "d.jsonl")
    common = ["--model", models.TINY, "--data", str(data), "--max-steps", "2",
              "--save-strategy", "no", "--no-progress"]
    res = runner.invoke(app, ["train", *common, "--bf16", "--output", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    # LfU's hooks capture gradients of bf16 activations (they once mixed dtypes there).
    res = runner.invoke(app, ["train", *common, "--bf16", "--method", "lfu-lora",
                              "--output", str(tmp_path / "lfu")])
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "a" / "forgetkit_run.json").read_text())
    assert run["config"]["bf16"] and run["global_step"] == 2
    if not torch.cuda.is_available():
        res = runner.invoke(app, ["train", *common, "--fp16", "--output", str(tmp_path / "b")])
        assert res.exit_code == 2 and "--fp16 needs a CUDA GPU" in res.output


def _loss_and_grads(config, row, checkpointing, tmp_path):
    torch.manual_seed(0)
    ctx, terms, _ = prepare_run(config, row)
    model = ctx.model
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainer = ForgetTrainer(model=model, args=training_arguments(config, 1e-3, tmp_path / "t"),
                            train_dataset=ListDataset(ctx.examples),
                            data_collator=QACollator(ctx.tokenizer.pad_token_id),
                            processing_class=ctx.tokenizer, loss_terms=terms)
    batch = trainer.data_collator(ctx.examples[:4])
    model.train()
    calls = []  # attention forwards: checkpointing runs each layer again in the backward
    for module in model.modules():
        if type(module).__name__.endswith("Attention"):
            module.register_forward_pre_hook(lambda *_: calls.append(1))
    torch.manual_seed(1)
    loss = trainer.compute_loss(model, batch)
    forwards = len(calls)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
             if p.requires_grad and p.grad is not None}
    return float(loss.detach()), grads, len(calls) - forwards


FAMILIES = ["full", "lora", "sparse", "seat", "ewc", "clora", "lfu-reps", "lfu-lora", "kif",
            "npo"]


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_checkpointing_keeps_the_loss_and_the_gradients(family, tmp_path):
    """Tolerance: 1e-5 relative on the loss and every trainable gradient (float32)."""
    if family in ("kif", "npo"):
        forget = write_qa(synth("authors", 1, seed=1)[:4], tmp_path / "forget.jsonl")
        retain = write_qa(synth("authors", 1, seed=2)[:4], tmp_path / "retain.jsonl")
        config = UnlearnConfig(model=models.TINY, method=family, forget=forget, retain=retain,
                               output=tmp_path / "o", progress=False, batch_size=4,
                               **({"kif_layers": [2]} if family == "kif" else {}))
        row = train_method(family)
    else:
        data = write_qa(synth("contracts", 1, seed=0)[:8], tmp_path / "d.jsonl")
        config = TrainConfig(model=models.TINY, method=family, data=data,
                             output=tmp_path / "o", progress=False, batch_size=4)
        row = None
    plain_loss, plain, plain_recomputed = _loss_and_grads(config, row, False, tmp_path)
    ckpt_loss, ckpt, recomputed = _loss_and_grads(config, row, True, tmp_path)
    assert plain_recomputed == 0 and recomputed > 0  # checkpointing really ran
    assert plain and set(plain) == set(ckpt)
    assert ckpt_loss == pytest.approx(plain_loss, rel=1e-5)
    for name, grad in plain.items():
        torch.testing.assert_close(ckpt[name], grad, rtol=1e-5, atol=1e-7, msg=name)
