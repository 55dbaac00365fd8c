"""Parameter selection ``lora``: low-rank adapters on the projections (peft); saved merged."""

from __future__ import annotations

from peft import LoraConfig, get_peft_model
from pydantic import Field

from forgetkit.config import Options
from forgetkit.train.registry import ParameterSelection, RunContext, register_parameters


class LoraOptions(Options):
    """peft's LoRA settings, under peft's own names with a ``lora_`` prefix."""

    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                 "up_proj", "down_proj"])


def lora_config(options: LoraOptions) -> LoraConfig:
    return LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha,
                      lora_dropout=options.lora_dropout,
                      target_modules=list(options.lora_target_modules), task_type="CAUSAL_LM")


def _prepare(ctx: RunContext):
    return get_peft_model(ctx.model, lora_config(ctx.config.options(LoraOptions)))


LORA = register_parameters(ParameterSelection(
    "lora", _prepare, finalize=lambda model: model.merge_and_unload(), is_peft=True,
    options=(LoraOptions,)))
