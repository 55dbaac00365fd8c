"""Typed configs. Every command-line flag of ``forgetkit train`` is a field here, and a YAML
file given with ``--config`` sets the same fields by the same names (flags win)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class ConfigError(ValueError):
    """A config file or flag is invalid; the message names the key and the file."""


class TrainConfig(BaseModel):
    """Options of one fine-tuning run (``forgetkit train``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field("smollm2-135m-instruct", description="model spec to fine-tune")
    data: Path | None = Field(None, description="training QA file (.jsonl / .json)")
    method: str = Field("full", description="training method preset, e.g. full, lora")
    output: Path | None = Field(None, description="folder for the fine-tuned checkpoint")
    overwrite: bool = Field(False, description="replace an existing output folder")
    resume: bool = Field(False, description="continue from the last checkpoint of this output")
    epochs: float = Field(3.0, gt=0)
    learning_rate: float | None = Field(
        None, gt=0, description="peak learning rate; default depends on the method")
    batch_size: int = Field(8, ge=1, description="per-process batch size")
    gradient_accumulation: int = Field(1, ge=1)
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: epochs)")
    seed: int = 0
    max_length: int = Field(256, ge=8, description="longest tokenised example")
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    save_strategy: Literal["no", "epoch", "steps"] = Field(
        "epoch", description="when to write resumable checkpoints")
    save_steps: int = Field(50, ge=1)
    logging_steps: int = Field(5, ge=1)
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                 "up_proj", "down_proj"])
    progress: bool = Field(True, description="show progress bars")
    # sparse tuning (methods sparse, seat)
    sparsity: float = Field(0.8, description="share of weights frozen by the sparse mask")
    mask_strategy: Literal["random", "magnitude", "fisher"] = "random"
    mask_seed: int | None = Field(None, description="seed of the random mask (default: seed)")
    # KL to the base model on entity-perturbed inputs (methods seat, full-kl)
    gamma: float = Field(1.0, ge=0, description="weight of the KL term")
    kl_reference: Literal["cached", "live"] = Field(
        "cached", description="cached: base log-probs computed once; live: a frozen base")
    kl_top_k: int = Field(256, ge=1, description="log-probs kept per position when cached")
    kl_cache: Path | None = Field(
        None, description="file to reuse the cached base log-probs from / save them to")
    perturb_seed: int | None = Field(None, description="seed of entity perturbation")
    # baselines of the SEAT paper
    ewc_lambda: float = Field(0.1, ge=0, description="EWC strength (Fisher divided by its mean)")
    ewc_samples: int = Field(32, ge=1, description="unseen questions the Fisher is estimated on")
    replay_ratio: float = Field(1.0, ge=0, description="replayed refusals per training example")
    clora_k: int = Field(128, ge=1, description="CLoRA: size of the regularised subspace")
    clora_lambda: float = Field(1.0, ge=0, description="CLoRA: weight of the regulariser")
    rtuning_threshold: float = Field(
        0.5, ge=0, le=1, description="ROUGE-1 recall from which a base answer counts as known")
    # LfU (methods lfu-lora, lfu-reps, sam) and its baselines (neftune, sdft); docs/lfu.md
    lfu_alpha: float = Field(
        0.1, ge=0, description="LfU: size of the normalised gradient-ascent step (Eq. 2)")
    lfu_lambda: float | None = Field(
        None, ge=0, description="LfU: weight of the consistency term (default: 5 for "
        "lfu-lora, 0.1 for lfu-reps, as in the paper)")
    lfu_layers: Literal["all", "early", "middle", "late"] = Field(
        "all", description="LfU: layers whose representations enter the consistency")
    lfu_direction: Literal["prev-ce", "same-step", "prev-total", "random"] = Field(
        "prev-ce", description="LfU: ascent direction; prev-ce: CE gradient of the previous "
        "micro-step, same-step: CE gradient of this step from an extra forward and backward "
        "(the paper's; a reference, not under DeepSpeed or FSDP), prev-total: previous "
        "step's gradient of the whole loss (LoRA), random")
    lfu_consistency: Literal["hidden", "logits"] = Field(
        "hidden", description="LfU: consistency of hidden states (Eq. 5) or logits (Eq. 7)")
    lfu_span: Literal["full", "answer"] | None = Field(
        None, description="LfU: tokens the auxiliary model perturbs; full: prompt and answer "
        "(a copy of each row), answer: answer tokens only, appended to the row (cheaper); "
        "default full for lfu-lora, answer for lfu-reps")
    neftune_alpha: float = Field(
        5.0, gt=0, description="NEFTune: noise scale; uniform noise of alpha/sqrt(L*d)")
    sdft_max_new_tokens: int = Field(
        96, ge=1, description="SDFT: longest rewrite the base model may generate")

    @field_validator("sparsity")
    @classmethod
    def _sparsity_range(cls, value: float) -> float:
        if not 0.0 < value < 1.0:
            raise ValueError("must be strictly between 0 and 1 (the share of frozen weights)")
        return value

    @model_validator(mode="after")
    def _default_seeds(self) -> TrainConfig:
        if self.mask_seed is None:
            self.mask_seed = self.seed
        if self.perturb_seed is None:
            self.perturb_seed = self.seed
        return self

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        from forgetkit.train.methods import METHODS

        if value not in METHODS:
            raise ValueError(f"unknown method '{value}'; choose one of {sorted(METHODS)}")
        return value


class UnlearnConfig(TrainConfig):
    """Options of one unlearning run (``forgetkit unlearn``, docs/kif.md): the training
    options plus the forget and retain sets and the unlearning methods' own. The forget set
    is the training data, so ``data`` follows ``forget``."""

    method: str = Field("kif", description="unlearning method: kif, ga, graddiff, npo, "
                        "npo-rt, idk")
    forget: Path | None = Field(None, description="QA file of what to forget")
    retain: Path | None = Field(None, description="QA file of what to keep")
    parameters: Literal["full", "lora"] | None = Field(
        None, description="which weights move (default: the method's; kif lora, others full)")
    adapter: bool = Field(False, description="write the LoRA adapter, not merged weights")
    epochs: float = Field(5.0, gt=0)
    retain_weight: float = Field(1.0, ge=0, description="weight of the retain term")
    npo_beta: float = Field(0.1, gt=0, description="NPO: beta")
    kif_layers: list[int] | None = Field(
        None, description="KIF: decoder blocks to hook, 1-based (default: chosen by separation)")
    kif_top_layers: int = Field(3, ge=1, description="KIF: blocks the automatic choice keeps")
    kif_gate_quantile: float = Field(
        0.999, gt=0, le=1, description="KIF: gate threshold, this quantile of retain tokens' "
        "similarity to a signature")
    kif_strength: float = Field(
        16.0, gt=0, description="KIF: how far the gated tokens are pushed back along the "
        "signature (1: the component projected out; 16: the demo's measured choice)")
    kif_holdout: float = Field(
        0.5, gt=0, lt=1, description="KIF: share of each subject's prompts held out to score "
        "layers")
    kif_signatures: Path | None = Field(
        None, description="KIF: file to save the mined signatures to, or reuse them from")

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        from forgetkit.unlearn.methods import UNLEARNING_METHODS

        if value not in UNLEARNING_METHODS:
            raise ValueError(f"unknown unlearning method '{value}'; choose one of "
                             f"{sorted(UNLEARNING_METHODS)}")
        return value

    @model_validator(mode="after")
    def _forget_is_the_data(self) -> UnlearnConfig:
        if self.forget is None:
            self.forget = self.data
        elif self.data is not None and Path(self.data) != Path(self.forget):
            raise ValueError("in an unlearning run 'data' is the forget set; give 'forget' only")
        self.data = self.forget
        return self


def _format_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key; see `forgetkit train --help` for the valid names"
        lines.append(f"  {key}: {msg} (got {e.get('input')!r})")
    return "\n".join(lines)


def load_train_config(path: str | Path | None = None, *,
                      config_class: type[TrainConfig] = TrainConfig,
                      **overrides: Any) -> TrainConfig:
    """Build a TrainConfig (or ``config_class``) from an optional YAML file plus explicit
    overrides (None = unset)."""
    values: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise ConfigError(f"{where}: not valid YAML ({err})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of option names to values")
        values.update(loaded)
        source = f"{path} and command line"
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return config_class(**values)
    except ValidationError as err:
        raise ConfigError(_format_error(err, source)) from None


def load_unlearn_config(path: str | Path | None = None, **overrides: Any) -> UnlearnConfig:
    """``load_train_config`` for an unlearning run (``forgetkit unlearn``)."""
    return load_train_config(path, config_class=UnlearnConfig, **overrides)  # type: ignore[return-value]
