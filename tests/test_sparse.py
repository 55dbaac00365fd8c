import copy
import json

import pytest
import torch
from safetensors.torch import load_file

import forgetkit.train.sparse as sparse_module
from forgetkit.config import ConfigError
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.train.config import TrainConfig, load_train_config
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
        load_train_config(None, method="sparse", sparsity=bad)


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


def test_sparse_linear_matches_a_dense_weight_and_keeps_no_dense_copy(tiny):
    """Linear layers rebuild W in the backward: same loss and gradients as a dense W."""
    model, _ = tiny
    ids = torch.randint(0, model.config.vocab_size, (2, 9))
    masks = build_masks(dict(model.named_parameters()), 0.8, seed=3)
    sparse = sparsify(copy.deepcopy(model), masks)
    linear = sparse.get_submodule("model.layers.0.mlp.up_proj")
    assert "forward" in linear.__dict__  # runs through SparseLinear
    loss = sparse(input_ids=ids, labels=ids).loss
    loss.backward()

    dense = copy.deepcopy(model)
    dense_loss = dense(input_ids=ids, labels=ids).loss
    dense_loss.backward()
    torch.testing.assert_close(loss, dense_loss, rtol=1e-6, atol=1e-6)
    for name, mask in masks.items():
        owner = sparse.get_submodule(name.rpartition(".")[0])
        values = owner.parametrizations[name.rpartition(".")[2]].original
        expected = dict(dense.named_parameters())[name].grad.flatten()[mask.flatten()]
        torch.testing.assert_close(values.grad, expected, rtol=1e-5, atol=1e-6, msg=name)

    # The graph keeps x and the trainable values, never a dense weight of the layer.
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t,
                                                  lambda t: t):
        sparse(input_ids=ids, labels=ids)
    assert tuple(linear.weight.shape) not in {tuple(s) for s in saved}
    unsparsify(sparse)
    assert "forward" not in linear.__dict__


def sparse_and_dense(n_in: int, n_out: int, density: float, seed: int, batch: tuple[int, ...]):
    """A dense nn.Linear, a sparsified copy (bias trained whole: tensors without a mask are
    frozen), its mask, and one input for each (separate leaves, for separate gradients)."""
    torch.manual_seed(0)
    dense = torch.nn.Linear(n_in, n_out, bias=True)
    layer = copy.deepcopy(dense)
    mask = build_masks({"weight": dense.weight}, density, seed=seed)["weight"]
    sparsify(layer, {"weight": mask})
    layer.bias.requires_grad_(True)
    x = torch.randn(*batch, n_in, requires_grad=True)
    return dense, layer, mask, x, x.detach().clone().requires_grad_(True)


@pytest.mark.parametrize("block", [1 << 22, 20])  # one block; blocks of 2 rows
def test_sparse_linear_gradients_match_dense_autograd(monkeypatch, block):
    monkeypatch.setattr(sparse_module, "_BLOCK_ELEMENTS", block)
    dense, layer, mask, x, x_dense = sparse_and_dense(7, 13, 0.6, seed=1, batch=(3, 5))
    out = layer(x)
    torch.testing.assert_close(out, dense(x_dense))
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    (dense(x_dense) * weight).sum().backward()
    torch.testing.assert_close(x.grad, x_dense.grad)
    torch.testing.assert_close(layer.bias.grad, dense.bias.grad)
    values = layer.parametrizations.weight.original
    torch.testing.assert_close(values.grad, dense.weight.grad[mask])


@pytest.mark.parametrize("block", [1 << 22, 20])
def test_sparse_linear_follows_autocast_like_a_dense_linear(monkeypatch, block):
    """Under bf16 autocast (mixed-precision training) the layer computes in bf16 like
    F.linear and hands back float32 gradients for float32 inputs and values."""
    monkeypatch.setattr(sparse_module, "_BLOCK_ELEMENTS", block)
    dense, layer, mask, x, x_dense = sparse_and_dense(16, 24, 0.5, seed=2, batch=(4,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = layer(x), dense(x_dense)
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2)
    out.float().sum().backward()
    ref.float().sum().backward()
    values = layer.parametrizations.weight.original
    assert x.grad.dtype == values.grad.dtype == layer.bias.grad.dtype == torch.float32
    torch.testing.assert_close(x.grad, x_dense.grad, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(values.grad, dense.weight.grad[mask], rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(layer.bias.grad, dense.bias.grad, rtol=2e-2, atol=2e-2)


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
    from forgetkit.lm.tokenize import encode_records

    fisher = diagonal_fisher(base, encode_records(tok, read_qa(contracts_file)),
                             tok.pad_token_id, batch_size=8, progress=False)
    name = "model.layers.0.mlp.up_proj.weight"
    masks = build_masks({name: base.get_parameter(name)}, 0.8, "fisher",
                        scores={name: fisher[name]})
    chosen, rest = fisher[name][masks[name]], fisher[name][~masks[name]]
    assert chosen.min() >= rest.max()
    assert ctx.notes["sparse_mask"]["strategy"] == "fisher"
