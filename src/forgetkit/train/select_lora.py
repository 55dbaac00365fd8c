"""Parameter selection ``lora``: low-rank adapters on the projections (peft); saved merged."""

from __future__ import annotations

from peft import LoraConfig, get_peft_model

from forgetkit.train.registry import ParameterSelection, RunContext, register_parameters


def lora_config(config) -> LoraConfig:
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_target_modules), task_type="CAUSAL_LM")


def _prepare(ctx: RunContext):
    return get_peft_model(ctx.model, lora_config(ctx.config))


LORA = register_parameters(ParameterSelection(
    "lora", _prepare, finalize=lambda model: model.merge_and_unload(), is_peft=True))
