"""The training recipe, top to bottom: config -> data -> model -> method -> Trainer -> save.

Runs unchanged as one process or data-parallel under ``torchrun --nproc_per_node N`` (CPU,
gloo) or ``accelerate launch`` (GPUs): ``Trainer`` reads the launcher's environment.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import shutil
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import TrainingArguments, set_seed

from forgetkit.data.formats import Fields
from forgetkit.data.records import read_qa
from forgetkit.errors import UserError
from forgetkit.io import atomic_output_dir, check_output, refuse_existing
from forgetkit.lm import models
from forgetkit.lm.tokenize import QACollator, encode_records
from forgetkit.train.config import TrainConfig
from forgetkit.train.methods import Method, get_method
from forgetkit.train.monitor import ForgettingMonitor, monitor_from_config
from forgetkit.train.processes import (
    is_main_process,
    on_first_process,
    sharding,
    work_dir,
    world_size,
)
from forgetkit.train.registry import PARAMETERS, TERMS, TRANSFORMS, ParameterSelection, RunContext
from forgetkit.train.resume import resume_point, run_definition, start_fresh
from forgetkit.train.trainer import ForgetTrainer

RUN_FILE = "forgetkit_run.json"


class ListDataset(Dataset):
    def __init__(self, items: list[dict[str, Any]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def environment(started: float, trained: torch.nn.Module) -> dict[str, Any]:
    """What a run ran on: library versions, device, dtypes and start time (UTC)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    parameter = next(trained.parameters())
    return {
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "versions": {name: installed(name) for name in
                     ("forgetkit", "torch", "transformers", "peft", "accelerate", "datasets")},
        "python": platform.python_version(),
        "device": str(parameter.device),
        "gpu": torch.cuda.get_device_name(parameter.device)
        if parameter.device.type == "cuda" else None,
        "processes": int(os.environ.get("WORLD_SIZE", "1")),
        "trained_dtype": str(parameter.dtype).removeprefix("torch."),
    }


def refuse_diverged(model: torch.nn.Module, log_history: list[dict[str, Any]],
                    checkpoints: Path) -> None:
    """Nothing non-finite is saved as a success: if any weight is NaN or infinite, delete the
    run's checkpoints and say at which logged step which loss term went first."""
    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if not bad:
        return
    first = next(({k: v for k, v in entry.items() if isinstance(v, float)
                   and not math.isfinite(v)} | {"step": entry.get("step")}
                  for entry in log_history
                  if any(isinstance(v, float) and not math.isfinite(v) for v in entry.values())),
                 None)
    where = (f"; first logged at step {first.pop('step')}: "
             + ", ".join(f"{k} = {v}" for k, v in first.items())) if first else ""
    shutil.rmtree(checkpoints, ignore_errors=True)
    raise UserError(f"training diverged: {len(bad)} weight tensors hold NaN or infinite values "
                    f"(first: {bad[0]}){where}. Nothing was saved; lower --learning-rate or "
                    "a loss term's weight and run again")


def warn_unmet(monitor: ForgettingMonitor) -> None:
    """Say so when no measured point met --keep-best's condition (the last weights stay)."""
    summary = monitor.summary()
    if summary["keep_best"] and not summary["keep_best_met"] and is_main_process():
        warnings.warn(f"no measured point met --keep-best '{summary['keep_best']}'; the "
                      f"weights of the last step ({summary['chosen_step']}) are saved. The "
                      "curve is in forgetkit_run.json under 'monitor'.", MonitorWarning,
                      stacklevel=2)


class MonitorWarning(UserWarning):
    """A monitor rule could not be honoured as written."""


def run_inputs(config: TrainConfig) -> dict[str, Any]:
    """Every path a run reads: none may be, hold or contain its output."""
    options = config.flat()
    inputs = {"model": config.model, "data file": config.data,
              "retain set": options.get("retain"), "KL cache": options.get("kl_cache"),
              "KIF signatures": options.get("kif_signatures")}
    for what in ("monitor_unseen", "monitor_known"):
        for i, path in enumerate(options.get(what) or []):
            inputs[f"{what.replace('_', ' ')} file {i + 1}"] = path
    return inputs


def defining_inputs(config: TrainConfig) -> dict[str, Any]:
    """The inputs whose content defines a run. The KL cache and KIF's signatures check their
    own fingerprints, and a run may create them, so they are not among them."""
    return {what: path for what, path in run_inputs(config).items()
            if what not in ("KL cache", "KIF signatures") and not what.startswith("monitor")}


def training_device(config: TrainConfig) -> torch.device:
    """Where this process trains: the CPU, or its GPU (``LOCAL_RANK`` under a launcher)."""
    device = models.resolve_device(config.device)
    if device.type == "cpu":
        return device
    local = os.environ.get("LOCAL_RANK")
    return torch.device("cuda", int(local)) if local is not None else device


def planned_steps(config: TrainConfig, n_examples: int) -> int:
    """Optimizer steps of a run on ``n_examples``: ``max_steps`` when set, else ``epochs``
    passes, raised to ``min_steps`` (counted as the Trainer counts: every process takes
    ``batch_size`` examples a micro-batch, ``gradient_accumulation`` micro-batches a step)."""
    if config.max_steps > 0:
        return config.max_steps
    micro_batches = math.ceil(n_examples / (config.batch_size * world_size()))
    per_epoch = max(math.ceil(micro_batches / config.gradient_accumulation), 1)
    return max(math.ceil(config.epochs * per_epoch), config.min_steps)


def training_arguments(config: TrainConfig, lr: float, out_dir: Path,
                       n_examples: int | None = None) -> TrainingArguments:
    """The Trainer's arguments for ``config``; with ``n_examples`` given, a ``min_steps``
    longer than the epochs' steps becomes the run's ``max_steps``."""
    on_cpu = training_device(config).type == "cpu"
    max_steps = config.max_steps
    if n_examples is not None and config.max_steps <= 0 and config.min_steps:
        steps = planned_steps(config, n_examples)
        if steps == config.min_steps:
            max_steps = steps
    if config.report_to != "none" and importlib.util.find_spec(config.report_to) is None:
        raise UserError(f"--report-to {config.report_to} needs the {config.report_to} package: "
                        f"pip install {config.report_to}")
    if config.fp16 and on_cpu:
        raise UserError("--fp16 needs a CUDA GPU; on the CPU use --bf16 or neither")
    # Non-reentrant recomputation works with LoRA's frozen inputs and forward hooks. Newer
    # transformers call it activation checkpointing and warn at the older name.
    checkpointing = ("activation_checkpointing"
                     if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
                     else "gradient_checkpointing")
    return TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        num_train_epochs=config.epochs,
        # Buffers never change while training (e.g. a sparse model's frozen base): no need
        # for DDP to send them from rank 0 before every forward.
        ddp_broadcast_buffers=False,
        max_steps=max_steps,
        learning_rate=lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        logging_nan_inf_filter=False,  # a NaN loss is logged as NaN, never hidden
        save_strategy=config.save_strategy,
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        report_to=config.report_to,
        remove_unused_columns=False,  # loss terms carry their own inputs through the batch
        disable_tqdm=not config.progress,
        use_cpu=on_cpu,
        bf16=config.bf16,
        fp16=config.fp16,
        **{checkpointing: config.gradient_checkpointing,
           f"{checkpointing}_kwargs": {"use_reentrant": False}},
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        average_tokens_across_devices=False,  # our loss is a per-micro-batch mean
    )


def prepare_run(config: TrainConfig, method: Method | None = None,
                loaded: tuple[Any, Any] | None = None
                ) -> tuple[RunContext, list, ParameterSelection]:
    """Load data and model and compose the method: transforms -> loss terms -> parameters.

    Transforms and terms see the untouched base model (for base-model references), so the
    parameter selection comes last. ``method`` defaults to the row ``config.method`` names;
    ``loaded`` is a ``(model, tokenizer)`` the caller already holds, used instead of loading.
    """
    method = method or get_method(config.method)
    records = read_qa(config.data, Fields.of(config))
    # Loaded on the CPU: the set-up passes (SEAT's cache, EWC's Fisher...) run there, and
    # the Trainer moves the model to the training device.
    options = models.LoadOptions(**{**models.LoadOptions.of(config).__dict__, "device": "cpu"})
    if loaded is not None:
        model, tokenizer = loaded
        model.to("cpu")
    else:
        model, tokenizer = models.load(config.model, seed=config.seed, options=options)
    if config.fp16 and next(model.parameters()).dtype == torch.float16:
        raise UserError("--fp16 mixed precision needs float32 weights to scale gradients, "
                        "and this model loaded in float16: add --dtype float32 (and "
                        "--save-dtype float16 to save it as it came)")
    return compose(config, method, model, tokenizer, records)


def compose(config: TrainConfig, method: Method, model: torch.nn.Module, tokenizer: Any,
            records: list) -> tuple[RunContext, list, ParameterSelection]:
    """Compose ``method`` on a loaded model and read records: transforms -> loss terms ->
    parameter selection (``prepare_run`` after loading; ``train.external`` for a model the
    caller already holds)."""
    ctx = RunContext(config=config, model=model, tokenizer=tokenizer, records=records,
                     parameters=method.parameters)
    for name in method.transforms:
        ctx.records = TRANSFORMS[name](ctx)
    ctx.examples = [{**enc, "example_index": i} for i, enc in
                    enumerate(encode_records(tokenizer, ctx.records, config.max_length,
                                             method.instruction_labels))]
    terms = [TERMS[name](ctx) for name in method.terms]
    selection = PARAMETERS[method.parameters]
    ctx.model.train()
    set_seed(config.seed)  # new weights (LoRA, masks) are drawn the same in every process
    ctx.model = selection.prepare(ctx)
    return ctx, terms, selection


# Parameter selections whose trained state the Trainer's own save can gather whole under
# FSDP or DeepSpeed: every weight, or peft's adapters. SEAT's sparse parametrisation keeps
# its frozen base and its index as buffers beside the trained values, which those shard.
GATHERED_SAVE = ("full", "lora", "lora-adapter")


def sharded_weights(trainer: Any = None) -> str | None:
    """``"FSDP"`` or ``"DeepSpeed ZeRO-3"`` when the weights are split across processes (as
    the trainer runs, or before it exists as the launcher asked), else None. ZeRO-1 and -2
    split only the optimizer state and gradients: every process holds the whole model."""
    kind = sharding(trainer)
    if kind != "DeepSpeed":
        return kind
    stage = (trainer.accelerator.state.deepspeed_plugin.zero_stage if trainer is not None
             else int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")))
    return "DeepSpeed ZeRO-3" if stage == 3 else None


def refuse_unsaveable_sharding(selection: ParameterSelection, loaded: Any) -> None:
    """Before the model loads: what cannot be saved whole after an FSDP or ZeRO-3 run."""
    kind = sharded_weights()
    if kind is None:
        return
    if selection.name not in GATHERED_SAVE:
        raise UserError(f"parameters '{selection.name}' cannot be gathered for saving under "
                        f"{kind}: train it with DDP (torchrun or accelerate launch without "
                        f"{kind}), or use full or LoRA parameters under {kind}")
    if loaded is not None:
        raise UserError(f"under {kind} give the model as a spec (config.model), not loaded: "
                        "its trained weights are reassembled from that spec when saved")


def check_full_state_save(trainer: Any, kind: str) -> None:
    """The Trainer's save must write the whole state, not per-process shards: refused before
    training otherwise, naming the accelerate setting to change."""
    state = trainer.accelerator.state
    if kind == "FSDP":
        dict_type = str(getattr(state.fsdp_plugin, "state_dict_type", ""))
        if "FULL_STATE_DICT" not in dict_type:
            raise UserError(f"FSDP saves per-process shards ({dict_type}); forgetkit writes a "
                            "whole checkpoint: set fsdp_state_dict_type: FULL_STATE_DICT in "
                            "the accelerate config")
    else:  # DeepSpeed ZeRO-3
        zero = (state.deepspeed_plugin.deepspeed_config or {}).get("zero_optimization", {})
        if zero.get("stage3_gather_16bit_weights_on_model_save") is not True:
            raise UserError("DeepSpeed ZeRO-3 saves no whole weights unless told to: set "
                            "zero3_save_16bit_model: true (stage3_gather_16bit_weights_on_"
                            "model_save) in the accelerate / DeepSpeed config")


def reassemble(gathered: Path, config: TrainConfig, selection: ParameterSelection
               ) -> torch.nn.Module:
    """The trained model, on the CPU, from what the Trainer's own save wrote to ``gathered``
    after a sharded run: the whole model, or the adapters put back on ``config.model``."""
    options = models.LoadOptions(**{**models.LoadOptions.of(config).__dict__, "device": "cpu"})
    if selection.name == "full":
        return models.load(str(gathered), options=options)[0]
    from peft import PeftModel

    base, _ = models.load(config.model, seed=config.seed, options=options)
    return PeftModel.from_pretrained(base, str(gathered))


def train(config: TrainConfig, extra_terms: list | None = None,
          callbacks: list | None = None, method: Method | None = None,
          loaded: tuple[Any, Any] | None = None) -> Path:
    """Fine-tune ``config.model`` on ``config.data`` with ``config.method``; return the output.

    The output folder holds a plain checkpoint (safetensors, config, tokenizer) that reloads
    with ``AutoModelForCausalLM.from_pretrained``; LoRA runs also keep the adapter under
    ``adapter/``. ``forgetkit_run.json`` records the config and the training log.
    ``callbacks`` are ``transformers.TrainerCallback`` objects passed to the Trainer;
    ``method`` is a composed row not in the method table (an unlearning method's);
    ``loaded`` a ``(model, tokenizer)`` already in memory, trained in place of loading
    ``config.model`` (which then only names it).
    """
    if config.data is None or config.output is None:
        raise UserError("train needs both 'data' and 'output' (--data FILE --output DIR)")
    output = Path(config.output)
    check_output(output, run_inputs(config))
    if not config.resume:
        refuse_existing(output, config.overwrite)
    method = method or get_method(config.method)
    refuse_unsaveable_sharding(PARAMETERS[method.parameters], loaded)
    lr = config.learning_rate or method.default_learning_rate
    checkpoints = work_dir(output)
    definition = run_definition(config.flat(), method.name, defining_inputs(config))
    # Checked before the model loads: a refused resume costs nothing.
    last = resume_point(checkpoints, definition) if config.resume else None
    if not config.resume and is_main_process():
        start_fresh(checkpoints, definition)  # before set-up passes write shared files there
    callbacks = list(callbacks or [])
    # the monitor's sets and rules are read now: a bad file or rule fails before the model loads
    monitor = (next((c for c in callbacks if isinstance(c, ForgettingMonitor)), None)
               or monitor_from_config(config, read_qa(config.data, Fields.of(config)),
                                      Fields.of(config)))
    ctx, terms, selection = prepare_run(config, method, loaded)
    trainer = ForgetTrainer(
        model=ctx.model,
        # transforms may adjust the config; min_steps counts the examples they made
        args=training_arguments(ctx.config, lr, checkpoints, len(ctx.examples)),
        train_dataset=ListDataset(ctx.examples),
        data_collator=QACollator(ctx.tokenizer.pad_token_id),
        processing_class=ctx.tokenizer,
        loss_terms=terms + list(extra_terms or []),
        callbacks=[c for c in callbacks if c is not monitor],
    )
    if monitor is not None:
        monitor.tokenizer = monitor.tokenizer or ctx.tokenizer
        monitor.attach(trainer)
    kind = sharded_weights(trainer)
    if kind is not None:
        check_full_state_save(trainer, kind)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    if monitor is not None:
        warn_unmet(monitor)

    env = environment(started, trainer.accelerator.unwrap_model(trainer.model))
    gathered = None
    if kind is not None:  # every process: the Trainer gathers the whole state and saves it
        gathered = checkpoints / "gathered"
        trainer.save_model(str(gathered))

    def save() -> None:
        trained = (reassemble(gathered, config, selection) if gathered is not None
                   else trainer.accelerator.unwrap_model(trainer.model))
        refuse_diverged(trained, trainer.state.log_history, checkpoints)
        with atomic_output_dir(output, overwrite=config.overwrite or config.resume) as tmp:
            if selection.is_peft:
                for adapter in trained.peft_config.values():
                    adapter.base_model_name_or_path = config.model  # the spec, not a cache
                trained.save_pretrained(tmp / "adapter")
            final = selection.finalize(trained)
            if config.save_dtype != "auto":
                final = final.to(models.DTYPES[config.save_dtype])
            final.config.use_cache = True  # Trainer turns the KV cache off while training
            final.save_pretrained(tmp, safe_serialization=True)
            env["saved_dtype"] = str(next(final.parameters()).dtype).removeprefix("torch.")
            ctx.tokenizer.save_pretrained(tmp)
            run = {"config": config.flat(), "learning_rate": lr,
                   "environment": env,
                   "n_examples": len(ctx.examples), "notes": ctx.notes,
                   "global_step": trainer.state.global_step,
                   "train_metrics": result.metrics, "log_history": trainer.state.log_history}
            if gathered is not None:
                run["notes"] = {**ctx.notes, "saved": f"gathered by the Trainer under {kind}"}
            if monitor is not None:
                run["monitor"] = monitor.summary()
            (tmp / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
        shutil.rmtree(checkpoints, ignore_errors=True)

    on_first_process("saving the trained model", save)
    trainer.accelerator.wait_for_everyone()
    return output
