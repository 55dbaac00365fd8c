"""``lora``: low-rank adapters on the attention and MLP projections (peft)."""

from __future__ import annotations

from peft import LoraConfig, get_peft_model

from forgetkit.train.losses import CrossEntropy
from forgetkit.train.methods import Method, register


def lora_config(config) -> LoraConfig:
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_target_modules), task_type="CAUSAL_LM")


def _prepare(model, config):
    return get_peft_model(model, lora_config(config))


LORA = register(Method(
    name="lora",
    description="LoRA adapters (r, alpha, targets from the config), cross-entropy loss",
    default_learning_rate=1e-4,  # LfU paper, LoRA r=8
    prepare=_prepare,
    loss_terms=lambda config: [CrossEntropy()],
    finalize=lambda model: model.merge_and_unload(),
    is_peft=True,
))
