"""SEAT inside a user's own TRL SFTTrainer: the frozen coordinates stay bit-identical and
the KL term is part of the loss the trainer optimises."""

import torch

from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.train.external import prepare
from forgetkit.train.sparse import build_masks


def test_seat_runs_inside_trl_sft_trainer(tmp_path):
    from trl import SFTConfig, SFTTrainer

    model, tok = models.load(models.TINY)
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    prepared = prepare(model, tok, synth("contracts", 1, seed=0)[:8], method="seat",
                       sparsity=0.8, gamma=1.0)
    assert "perturbed_input_ids" in prepared.train_dataset.column_names
    args = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=3, per_device_train_batch_size=4,
                     learning_rate=1e-2, logging_steps=1, report_to="none", save_strategy="no",
                     use_cpu=True, **prepared.trainer_arguments())
    trainer = prepared.trainer(SFTTrainer, args=args, processing_class=tok)
    assert isinstance(trainer, SFTTrainer)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss_kl" in h]
    assert logged and all(h["loss_kl"] >= 0 for h in logged)  # the KL term is in the loss
    assert any(h["loss_kl"] > 0 for h in logged)
    final = dict(prepared.finalize(trainer.model).named_parameters())
    masks = build_masks({n: base[n] for n in final}, 0.8, seed=0)
    moved = 0
    for name, mask in masks.items():
        assert torch.equal(final[name][~mask], base[name][~mask]), name
        moved += int(not torch.equal(final[name][mask], base[name][mask]))
    assert moved > 0
