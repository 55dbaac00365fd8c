import json

import pytest
import torch
from safetensors.torch import load_file

from forgetkit import models
from forgetkit.config import ConfigError, TrainConfig, load_train_config
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.train.run import RUN_FILE, train
from forgetkit.train.sparse import SparseError, build_masks, mask_digest, sparsify, unsparsify


def test_masks_are_reproducible_and_have_the_asked_sparsity(tiny):
    model, _ = tiny
    params = dict(model.named_parameters())
    a = build_masks(params, 0.8, seed=1)
    assert mask_digest(a) == mask_digest(build_masks(params, 0.8, seed=1))
    assert mask_digest(a) != mask_digest(build_masks(params, 0.8, seed=2))
    trainable = sum(int(m.sum()) for m in a.values())
    total = sum(m.numel() for m in a.values())
    assert abs(trainable / total - 0.2) < 0.01


def test_magnitude_mask_keeps_the_largest_weights():
    w = torch.tensor([[0.1, -5.0], [3.0, 0.2]])
    mask = build_masks({"w": w}, 0.5, strategy="magnitude")["w"]
    assert mask.tolist() == [[False, True], [True, False]]


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_sparsity_outside_the_open_interval_is_rejected(bad):
    with pytest.raises(SparseError, match="strictly between 0 and 1"):
        build_masks({"w": torch.ones(4)}, bad)
    with pytest.raises(ConfigError, match="sparsity: .*strictly between 0 and 1"):
        load_train_config(None, sparsity=bad)


def test_unknown_strategy_is_rejected():
    with pytest.raises(SparseError, match="unknown mask strategy"):
        build_masks({"w": torch.ones(4)}, 0.5, strategy="vibes")


def test_tied_weights_share_trainable_values_and_stay_tied():
    model = models.tiny_model(64, tie_word_embeddings=True)
    emb = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight is emb
    masks = build_masks(dict(model.named_parameters()), 0.5, seed=0)
    sparsify(model, masks)
    trainable = [p for p in model.parameters() if p.requires_grad]
    # One values tensor per distinct weight: the tie is not trained twice.
    assert sum(p.numel() for p in trainable) == sum(int(m.sum()) for m in masks.values())
    with torch.no_grad():
        for p in trainable:
            p.add_(1.0)
    unsparsify(model)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


@pytest.fixture
def contracts_file(tmp_path):
    return write_qa(synth("contracts", 1, seed=0)[:12], tmp_path / "train.jsonl")


def test_frozen_coordinates_stay_bit_identical_even_with_weight_decay(contracts_file, tmp_path,
                                                                      tiny):
    out = train(TrainConfig(model=models.TINY, data=contracts_file, method="sparse",
                            output=tmp_path / "s", epochs=2, batch_size=4, learning_rate=1e-2,
                            weight_decay=0.5, save_strategy="no", progress=False))
    base_model, _ = tiny
    params = dict(base_model.named_parameters())
    masks = build_masks(params, 0.8, seed=0)
    trained = load_file(str(out / "model.safetensors"))
    moved = 0
    for name, mask in masks.items():
        before, after = params[name].detach(), trained[name]
        assert torch.equal(after[~mask], before[~mask]), name
        moved += int((after[mask] != before[mask]).sum())
    assert moved > 0.5 * sum(int(m.sum()) for m in masks.values())
    run = json.loads((out / RUN_FILE).read_text())
    assert run["notes"]["sparse_mask"]["digest"] == mask_digest(masks)


def test_optimizer_state_is_kept_only_for_trainable_coordinates(contracts_file, tmp_path):
    from transformers import TrainerCallback

    sizes = {}

    class Peek(TrainerCallback):
        def on_train_end(self, args, state, control, optimizer=None, model=None, **kw):
            sizes["state"] = sum(v.numel() for s in optimizer.state.values()
                                 for v in s.values() if torch.is_tensor(v) and v.dim() > 0)
            sizes["total"] = sum(p.numel() for p in models.tiny_model(1).parameters())

    train(TrainConfig(model=models.TINY, data=contracts_file, method="sparse",
                      output=tmp_path / "s", max_steps=2, batch_size=4, save_strategy="no",
                      progress=False), callbacks=[Peek()])
    vocab_total = sum(p.numel() for p in models.load(models.TINY)[0].parameters())
    # Adam keeps two moments per trainable coordinate: 2 x 20% of the weights.
    assert sizes["state"] == pytest.approx(2 * 0.2 * vocab_total, rel=0.01)


def test_fisher_mask_keeps_coordinates_with_the_largest_fisher(contracts_file, tmp_path):
    from forgetkit.train.fisher import diagonal_fisher
    from forgetkit.train.run import prepare_run

    cfg = TrainConfig(model=models.TINY, data=contracts_file, method="sparse",
                      mask_strategy="fisher", output=tmp_path / "o", progress=False)
    ctx, _, _ = prepare_run(cfg)
    base, tok = models.load(models.TINY)
    from forgetkit.data.records import read_qa
    from forgetkit.data.tokenize import encode_records

    fisher = diagonal_fisher(base, encode_records(tok, read_qa(contracts_file)),
                             tok.pad_token_id, batch_size=8, progress=False)
    name = "model.layers.0.mlp.up_proj.weight"
    masks = build_masks({name: base.get_parameter(name)}, 0.8, "fisher",
                        scores={name: fisher[name]})
    chosen, rest = fisher[name][masks[name]], fisher[name][~masks[name]]
    assert chosen.min() >= rest.max()
    assert ctx.notes["sparse_mask"]["strategy"] == "fisher"
