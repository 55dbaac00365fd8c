"""Training method presets: ``forgetkit train --method NAME``.

Each row composes registered parts (``registry.py``): a parameter selection, loss terms and
data transforms. The SEAT paper's ablations fall out of the composition: SEAT without
sparsity is ``full-kl``, SEAT without entity perturbation is ``sparse``. A method that
brings a part of its own registers its row in that part's file (``l2_to_base.py``), so adding
it is one file plus one import line below.
"""

from __future__ import annotations

from forgetkit.config import Options, owners

# Importing the parts registers them; a part's file may add its own row (l2_to_base.py).
from forgetkit.train import (  # noqa: F401
    clora,
    ewc,
    kl_to_base,
    l2_to_base,
    lfu,
    losses,
    neftune,
    registry,
    replay,
    rtuning,
    sdft,
    select_full,
    select_lora,
    select_sparse,
)
from forgetkit.train.registry import METHODS, Method, get_method, register_method

for _method in (
    Method("full", "full fine-tuning, cross-entropy on answers", "full",
           default_learning_rate=1e-5),  # SEAT paper, full FT
    Method("lora", "LoRA adapters (peft), cross-entropy on answers", "lora",
           default_learning_rate=1e-4),  # LfU paper, LoRA r=8
    Method("sparse", "fixed sparse mask (80% frozen by default): SEAT's 'sparse variant'",
           "sparse", default_learning_rate=2e-5),  # SEAT paper, sparse FT
    Method("seat", "SEAT: sparse mask + gamma * KL to the base on entity-perturbed inputs",
           "sparse", ("ce", "kl"), default_learning_rate=2e-5),  # SEAT paper
    Method("full-kl", "full fine-tuning + KL on entity-perturbed inputs: SEAT's 'EP variant'",
           "full", ("ce", "kl"), default_learning_rate=1e-5),
    Method("ewc", "full fine-tuning + EWC, Fisher on questions the base does not know",
           "full", ("ce", "ewc"), default_learning_rate=1e-5),
    Method("replay", "full fine-tuning with replay of the base's own refusals (ratio 1.0)",
           "full", transforms=("replay",), default_learning_rate=1e-5),
    Method("rtuning", "full fine-tuning on R-Tuning's data: answers padded with sure/unsure",
           "full", transforms=("rtuning",), default_learning_rate=1e-5),
    Method("clora", "LoRA with CLoRA's subspace regularisation of the adapter factors",
           "lora", ("ce", "clora"), default_learning_rate=1e-4),
    # LfU paper: every method trains LoRA r=8 at lr 1e-4 (docs/lfu.md)
    Method("lfu-lora", "LfU: LoRA + lambda * consistency of hidden states with an auxiliary "
           "LoRA pushed one ascent step", "lora", ("ce", "lfu-lora"), default_learning_rate=1e-4),
    Method("lfu-reps", "LfU (RepS): LoRA + consistency under one ascent step of a steering "
           "vector per layer", "lora", ("ce", "lfu-reps"), default_learning_rate=1e-4),
    Method("lfu-sam", "LoRA, CE at the adapters shifted one normalised ascent step (SAM-style; "
           "LfU Table 6b)", "lora", ("lfu-sam",), default_learning_rate=1e-4),
    Method("neftune", "LoRA with uniform noise on the input embeddings (NEFTune)", "lora",
           ("neftune",), default_learning_rate=1e-4),
    Method("im", "LoRA, loss on the instruction's own tokens too (instruction modelling)",
           "lora", default_learning_rate=1e-4, instruction_labels=True),
    Method("sdft", "LoRA on the base model's own rewrites of the answers (self-distillation)",
           "lora", transforms=("sdft",), default_learning_rate=1e-4),
):
    register_method(_method)


def option_owners() -> dict[type[Options], list[str]]:
    """Every option model of a training method, with the methods that read it."""
    return owners((c, m.name) for m in METHODS.values() for c in m.option_classes())


__all__ = ["METHODS", "Method", "get_method", "option_owners", "register_method"]
