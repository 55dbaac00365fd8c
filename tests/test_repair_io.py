"""Streaming repair end to end: folders in, folders out, LoRA both ways, bad inputs, the CLI."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from typer.testing import CliRunner

from forgetkit.cli import app as forgetkit_app
from forgetkit.lm import models
from forgetkit.repair import RepairError, repair, spectrum_plot
from forgetkit.repair import io as repair_io
from forgetkit.repair.apply import SUMMARY_FILE, resolve_folder
from forgetkit.repair.io import CheckpointReader

# --------------------------------------------------------------------------- helpers


def write_folder(path: Path, tensors: dict[str, torch.Tensor], shards: int = 1,
                 config: dict | None = None) -> Path:
    """A minimal model folder: safetensors (optionally sharded with an index) + config."""
    path.mkdir(parents=True)
    names = list(tensors)
    if shards == 1:
        save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})
    else:
        weight_map = {}
        for i in range(shards):
            file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[i::shards]}
            save_file(part, path / file, metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(part, file))
        index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
        (path / "model.safetensors.index.json").write_text(json.dumps(index))
    cfg = {"model_type": "toy", "vocab_size": 100, "hidden_size": 128}
    (path / "config.json").write_text(json.dumps(config or cfg))
    (path / "tokenizer.json").write_text("{}")
    return path


def planted_pair(tmp_path: Path, shards: int = 1) -> tuple[Path, Path, dict]:
    """Base/fine-tuned folders: a rank-4 update plus noise in 'proj.weight', a zero delta in
    'same.weight', a 1-D and a small tensor that must keep their fine-tuned values."""
    gen = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(256, 4, generator=gen)).Q
    v = torch.linalg.qr(torch.randn(128, 4, generator=gen)).Q
    signal = (u * torch.tensor([2.0, 1.6, 1.2, 0.9])) @ v.T
    base = {"proj.weight": torch.randn(256, 128, generator=gen),
            "same.weight": torch.randn(64, 64, generator=gen),
            "norm.weight": torch.ones(128),
            "small.weight": torch.randn(16, 16, generator=gen)}
    ft = dict(base)
    ft["proj.weight"] = base["proj.weight"] + signal + 0.01 * torch.randn(256, 128, generator=gen)
    ft["norm.weight"] = base["norm.weight"] + 0.1
    ft["small.weight"] = base["small.weight"] + 0.1
    return (write_folder(tmp_path / "base", base, shards),
            write_folder(tmp_path / "ft", ft, shards), {"signal": signal, "base": base, "ft": ft})


def read_all(folder: Path) -> dict[str, torch.Tensor]:
    reader = CheckpointReader(folder)
    return {n: reader.read(n) for n in reader.names}


def folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny random Llama (bf16) and a perturbed copy, saved sharded like a real checkpoint."""
    root = tmp_path_factory.mktemp("tiny")
    model, tok = models.load(models.TINY)
    model = model.to(torch.bfloat16)
    gen = torch.Generator().manual_seed(1)
    base_dir, ft_dir = root / "base", root / "ft"
    model.save_pretrained(base_dir, max_shard_size="200KB")
    tok.save_pretrained(base_dir)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                low = torch.randn(p.shape[0], 2, generator=gen) @ torch.randn(2, p.shape[1],
                                                                              generator=gen)
                p += (0.05 * low + 0.002 * torch.randn(p.shape, generator=gen)).to(p.dtype)
            else:
                p += 0.01
    model.save_pretrained(ft_dir, max_shard_size="200KB")
    tok.save_pretrained(ft_dir)
    return base_dir, ft_dir


# --------------------------------------------------------------------------- streaming


def test_reader_lists_tensors_without_loading(tmp_path):
    base, _, _ = planted_pair(tmp_path, shards=2)
    reader = CheckpointReader(base)
    assert reader.index_name == "model.safetensors.index.json"
    assert reader.tensors["proj.weight"].shape == (256, 128)
    assert reader.tensors["proj.weight"].dtype == "F32"
    assert {s.file for s in reader.layout()} == {"model-00001-of-00002.safetensors",
                                                 "model-00002-of-00002.safetensors"}


def test_planted_folder_repair(tmp_path):
    base, ft, t = planted_pair(tmp_path)
    summary = repair(base, ft, tmp_path / "out")
    out = read_all(tmp_path / "out")
    rows = {r["name"]: r for r in summary["tensors"]}
    assert rows["proj.weight"]["kept_rank"] == 4
    repaired = out["proj.weight"] - t["base"]["proj.weight"]
    noisy = t["ft"]["proj.weight"] - t["base"]["proj.weight"]
    assert float((repaired - t["signal"]).norm()) < 0.3 * float((noisy - t["signal"]).norm())
    assert torch.equal(out["same.weight"], t["base"]["same.weight"])  # zero delta: base exactly
    assert rows["same.weight"]["action"] == "unchanged"
    assert torch.equal(out["norm.weight"], t["ft"]["norm.weight"])  # 1-D: fine-tuned value
    assert torch.equal(out["small.weight"], t["ft"]["small.weight"])  # < 1024 entries
    on_disk = json.loads((tmp_path / "out" / SUMMARY_FILE).read_text())
    assert on_disk["totals"]["repaired"] == 1 and on_disk["method"] == "dg-hard"
    assert 0 < rows["proj.weight"]["energy_kept"] < 1
    assert (tmp_path / "out" / "config.json").is_file()
    assert (tmp_path / "out" / "tokenizer.json").is_file()


def test_output_reloads_with_same_dtypes_and_sharding(tiny_pair, tmp_path):
    from transformers import AutoModelForCausalLM

    base, ft = tiny_pair
    before = (folder_hash(base), folder_hash(ft))
    summary = repair(base, ft, tmp_path / "out")
    assert (folder_hash(base), folder_hash(ft)) == before  # inputs never written
    src, out = CheckpointReader(ft), CheckpointReader(tmp_path / "out")
    assert out.index_name is not None
    assert {n: (i.file, i.dtype, i.shape) for n, i in out.tensors.items()} == {
        n: (i.file, i.dtype, i.shape) for n, i in src.tensors.items()}
    index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert index["weight_map"] == json.loads(
        (ft / "model.safetensors.index.json").read_text())["weight_map"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert model.model.embed_tokens.weight.dtype == torch.bfloat16
    with torch.no_grad():
        assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()
    assert all(r["kept_rank"] >= 2 for r in summary["tensors"] if r["action"] == "repaired")


def test_max_shard_size_reshards(tmp_path):
    base, ft, _ = planted_pair(tmp_path)
    repair(base, ft, tmp_path / "out", max_shard_size=100_000)
    reader = CheckpointReader(tmp_path / "out")
    assert reader.index_name is not None and len(reader.layout()) >= 2
    assert read_all(tmp_path / "out").keys() == read_all(ft).keys()


def test_batched_svd_path_gives_same_output(tmp_path):
    base, ft, _ = planted_pair(tmp_path)
    repair(base, ft, tmp_path / "one")
    repair(base, ft, tmp_path / "batched", batch_bytes=1 << 26)
    one, batched = read_all(tmp_path / "one"), read_all(tmp_path / "batched")
    for name, tensor in one.items():
        assert torch.allclose(tensor, batched[name], atol=1e-5)


@pytest.mark.parametrize("fast", [False, True])
def test_parallel_workers_give_the_one_at_a_time_output(tiny_pair, tmp_path, fast):
    base, ft = tiny_pair
    threads = torch.get_num_threads()
    one = repair(base, ft, tmp_path / "one", workers=1, fast=fast)
    many = repair(base, ft, tmp_path / "many", workers=3, fast=fast)
    assert torch.get_num_threads() == threads  # the calling thread's math threads come back
    assert [r["name"] for r in many["tensors"]] == [r["name"] for r in one["tensors"]]
    assert [r["kept_rank"] for r in many["tensors"]] == [r["kept_rank"] for r in one["tensors"]]
    assert sum(r["action"] == "repaired" for r in many["tensors"]) > 6
    a, b = read_all(tmp_path / "one"), read_all(tmp_path / "many")
    assert a.keys() == b.keys()
    for name, tensor in a.items():  # bf16 weights: one step of rounding at most
        assert torch.allclose(tensor.float(), b[name].float(), rtol=1e-2, atol=1e-3), name


def test_an_error_on_a_worker_reaches_the_caller_and_leaves_no_output(tiny_pair, tmp_path,
                                                                      monkeypatch):
    from forgetkit.repair.methods.spectral import SpectralMethod

    base, ft = tiny_pair
    real = SpectralMethod.repair_delta

    def failing(self, delta, name):
        if "layers.1.mlp" in name:
            raise RepairError(f"{name}: planted failure")
        return real(self, delta, name)

    monkeypatch.setattr(SpectralMethod, "repair_delta", failing)
    threads = torch.get_num_threads()
    with pytest.raises(RepairError, match="planted failure"):
        repair(base, ft, tmp_path / "out", workers=2)
    assert not (tmp_path / "out").exists() and torch.get_num_threads() == threads
    with pytest.raises(RepairError, match="workers must be at least 1, got 0"):
        repair(base, ft, tmp_path / "out", workers=0)


@pytest.mark.parametrize("method,options", [("gd-shrink", {}), ("rank", {"rank": 2}),
                                            ("wise-ft", {"alpha": 0.5}), ("dare", {"seed": 1}),
                                            ("ties-trim", {}), ("magnitude", {}),
                                            ("dg-hard", {"fast": True})])
def test_every_method_streams(tmp_path, method, options):
    base, ft, t = planted_pair(tmp_path)
    summary = repair(base, ft, tmp_path / "out", method=method, **options)
    assert summary["method"] == method
    out = read_all(tmp_path / "out")
    assert torch.equal(out["same.weight"], t["base"]["same.weight"])
    if method == "wise-ft":
        expected = t["base"]["proj.weight"] + 0.5 * (t["ft"]["proj.weight"]
                                                     - t["base"]["proj.weight"])
        assert torch.allclose(out["proj.weight"], expected, atol=1e-6)


def test_bundled_spec_resolves_to_its_cached_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_bundled_folder", lambda: tmp_path)
    assert resolve_folder(models.BUNDLED, "--base") == tmp_path
    with pytest.raises(RepairError, match="save it first"):
        resolve_folder(models.TINY, "--base")


# --------------------------------------------------------------------------- LoRA


@pytest.fixture(scope="module")
def tiny_f32(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("f32") / "base"
    models.save(*models.load(models.TINY), folder)
    return folder


def test_lora_adapter_input_is_merged(tiny_f32, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_f32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "up_proj"],
                        init_lora_weights=False, use_rslora=True)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(tmp_path / "adapter")
    merged = peft_model.merge_and_unload().state_dict()

    summary = repair(tiny_f32, tmp_path / "adapter", tmp_path / "out")
    out = read_all(tmp_path / "out")
    rows = {r["name"]: r for r in summary["tensors"]}
    name = "model.layers.0.self_attn.q_proj.weight"
    # A rank-4 LoRA delta has median singular value 0: DG-Hard keeps all of it.
    assert rows[name]["kept_rank"] == 4
    assert torch.allclose(out[name], merged[name], atol=1e-5)
    assert rows["model.layers.0.self_attn.k_proj.weight"]["action"] == "unchanged"
    assert (tmp_path / "out" / "config.json").is_file()


def test_lora_output_loads_in_peft_and_matches_merged(tiny_f32, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model, _ = models.load(models.TINY)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            low = 0.05 * torch.randn(p.shape[0], 3, generator=gen) @ torch.randn(
                3, p.shape[-1], generator=gen) if p.dim() == 2 else 0.01
            p += low + 0.001 * torch.randn(p.shape, generator=gen)
    ft = tmp_path / "ft"
    models.save(model, models.load_tokenizer(models.TINY), ft)

    summary = repair(tiny_f32, ft, tmp_path / "merged")
    lora = repair(tiny_f32, ft, tmp_path / "adapter", as_lora=True)
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 3
    assert lora["not_in_adapter"] == {}
    assert "model.norm" in cfg["modules_to_save"]

    ids = torch.tensor([[5, 17, 42, 99, 3]])
    expected = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(ids).logits
    base_model = AutoModelForCausalLM.from_pretrained(tiny_f32)
    adapted = PeftModel.from_pretrained(base_model, tmp_path / "adapter")
    with torch.no_grad():
        got = adapted(ids).logits
    assert torch.allclose(got, expected, atol=1e-4)
    ranks = {r["name"]: r["kept_rank"] for r in summary["tensors"] if r["kept_rank"]}
    assert set(ranks.values()) == {3}


def test_lora_output_leaves_tied_embeddings_out_and_says_so(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tok = models.load_tokenizer(models.TINY)
    base = models.tiny_model(len(tok), tie_word_embeddings=True)
    models.save(base, tok, tmp_path / "base")
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in base.parameters():
            if p.dim() == 2:  # low-rank signal, so DG-Hard keeps something
                p += 0.05 * torch.randn(p.shape[0], 2, generator=gen) @ torch.randn(
                    2, p.shape[1], generator=gen)
            p += 0.001 * torch.randn(p.shape, generator=gen)
    models.save(base, tok, tmp_path / "ft")
    summary = repair(tmp_path / "base", tmp_path / "ft", tmp_path / "adapter", as_lora=True)
    assert "tied" in summary["not_in_adapter"]["model.embed_tokens.weight"]
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "base"),
                                       tmp_path / "adapter")
    assert torch.isfinite(loaded(torch.tensor([[1, 2, 3]])).logits).all()


def test_device_that_is_not_there_is_refused(tmp_path):
    base, ft, _ = planted_pair(tmp_path)
    with pytest.raises(RepairError, match="--device"):
        repair(base, ft, tmp_path / "out", device="tpu")
    with pytest.raises(RepairError, match="runs on cpu or cuda"):
        repair(base, ft, tmp_path / "out", device="meta")  # a real torch device type
    if not torch.cuda.is_available():
        with pytest.raises(RepairError, match="no CUDA device"):
            repair(base, ft, tmp_path / "out", device="cuda")
    assert not (tmp_path / "out").exists()


def test_as_lora_needs_a_spectral_method(tiny_f32, tmp_path):
    with pytest.raises(RepairError, match="needs a spectral method"):
        repair(tiny_f32, tiny_f32, tmp_path / "out", method="dare", as_lora=True)


# --------------------------------------------------------------------------- bad inputs


def test_different_architectures_are_refused(tiny_f32, tmp_path):
    tok = models.load_tokenizer(models.TINY)
    models.save(models.tiny_model(len(tok), hidden_size=32), tok, tmp_path / "other")
    with pytest.raises(RepairError, match="different architectures.*hidden_size"):
        repair(tiny_f32, tmp_path / "other", tmp_path / "out")


def test_different_vocabulary_sizes_are_refused(tiny_f32, tmp_path):
    tok = models.load_tokenizer(models.TINY)
    models.save(models.tiny_model(len(tok) + 8), tok, tmp_path / "bigger")
    with pytest.raises(RepairError, match=r"vocabulary sizes differ.*embed_tokens"):
        repair(tiny_f32, tmp_path / "bigger", tmp_path / "out")


def test_missing_and_misshapen_tensors_are_named(tmp_path):
    base = write_folder(tmp_path / "base", {"a.weight": torch.zeros(64, 64),
                                            "b.weight": torch.zeros(64, 64),
                                            "c.weight": torch.zeros(32, 64)})
    ft = write_folder(tmp_path / "ft", {"a.weight": torch.ones(64, 64),
                                        "c.weight": torch.ones(64, 32),
                                        "extra.bias": torch.ones(3)})
    with pytest.raises(RepairError) as err:
        repair(base, ft, tmp_path / "out")
    message = str(err.value)
    assert "missing from the fine-tuned checkpoint: b.weight" in message
    assert "missing from the base checkpoint: extra.bias" in message
    assert "c.weight [32, 64] vs [64, 32]" in message
    assert not (tmp_path / "out").exists()


def test_nan_in_delta_names_the_tensor(tmp_path):
    base, ft, t = planted_pair(tmp_path)
    bad = dict(t["ft"])
    bad["proj.weight"] = bad["proj.weight"].clone()
    bad["proj.weight"][3, 5] = float("nan")
    write_folder(tmp_path / "bad", bad)
    with pytest.raises(RepairError, match=r"tensor proj.weight: .*1 NaN/Inf .*fine-tuned"):
        repair(base, tmp_path / "bad", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_read_leaves_no_output(tmp_path, monkeypatch):
    base, ft, _ = planted_pair(tmp_path)
    real = repair_io.read_tensor

    def failing(path, name):
        if name == "proj.weight" and path.parent == ft:
            raise OSError(errno.EIO, "Input/output error")
        return real(path, name)

    monkeypatch.setattr(repair_io, "read_tensor", failing)
    with pytest.raises(OSError, match="Input/output error"):
        repair(base, ft, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "ft"]  # temp dir removed


def test_identical_checkpoints_have_nothing_to_repair(tmp_path):
    base, _, t = planted_pair(tmp_path)
    copy = write_folder(tmp_path / "copy", t["base"])
    with pytest.raises(RepairError, match="nothing to repair"):
        repair(base, copy, tmp_path / "out")
    with pytest.raises(RepairError, match="same folder"):
        repair(base, base, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    base, ft, _ = planted_pair(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(RepairError, match="already exists.*--overwrite"):
        repair(base, ft, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    repair(base, ft, tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / SUMMARY_FILE).is_file()
    assert not (tmp_path / "out" / "keep.txt").exists()


def test_output_inside_an_input_is_refused(tmp_path):
    base, ft, _ = planted_pair(tmp_path)
    with pytest.raises(RepairError, match="inputs are never written"):
        repair(base, ft, ft / "repaired")
    with pytest.raises(RepairError, match="inputs are never written"):
        repair(base, ft, tmp_path, overwrite=True)


def test_disk_full_leaves_no_partial_output(tmp_path, monkeypatch):
    base, ft, _ = planted_pair(tmp_path)
    calls = {"n": 0}
    real = repair_io._write_at

    def full_disk(path, offset, data):
        calls["n"] += 1
        if calls["n"] > 2:  # the header goes through, then a tensor hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, offset, data)

    monkeypatch.setattr(repair_io, "_write_at", full_disk)
    with pytest.raises(RepairError, match="No space left on device"):
        repair(base, ft, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "ft"]  # temp dir removed


def test_pytorch_bin_only_folder_gets_a_hint(tmp_path):
    base, _, _ = planted_pair(tmp_path)
    (tmp_path / "binonly").mkdir()
    (tmp_path / "binonly" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(RepairError, match="safe_serialization=True"):
        repair(base, tmp_path / "binonly", tmp_path / "out")


# --------------------------------------------------------------------------- CLI and plots


def test_repair_command_runs_and_refuses_options_of_other_methods(tmp_path):
    base, ft, _ = planted_pair(tmp_path)
    runner = CliRunner()

    def repair_cli(out, *flags):
        return runner.invoke(forgetkit_app, ["repair", "--base", str(base), "--finetuned",
                                             str(ft), "--output", str(tmp_path / out), *flags])

    result = repair_cli("out", "--scale", "1.0", "--fast", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "1 tensors repaired" in result.output
    assert (tmp_path / "out" / "model.safetensors").is_file()

    bad = repair_cli("out2", "--alpha", "0.3")
    assert bad.exit_code == 2
    assert "alpha do not apply to method 'dg-hard'" in bad.output
    seeded = repair_cli("out2", "--seed", "1")
    assert seeded.exit_code == 2  # dg-hard draws nothing at random: a seed would be ignored
    assert "seed do not apply to method 'dg-hard'" in seeded.output
    again = repair_cli("out")
    assert again.exit_code == 2 and "already exists" in again.output
    no_workers = repair_cli("out3", "--workers", "0")
    assert no_workers.exit_code == 2 and "workers must be at least 1" in no_workers.output


def test_spectrum_plot_marks_the_planted_rank(tmp_path):
    base, ft, _ = planted_pair(tmp_path)
    info = spectrum_plot(base, ft, "proj.weight", tmp_path / "plots" / "proj.png")
    assert info["kept_rank"] == 4
    assert info["threshold"] > info["bulk_edge"]  # lambda*(beta) > 1 + sqrt(beta)
    png = (tmp_path / "plots" / "proj.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    with pytest.raises(RepairError, match="only 2-D tensors"):
        spectrum_plot(base, ft, "norm.weight", tmp_path / "x.png")


def test_safetensors_written_by_repair_open_with_safe_open(tmp_path):
    base, ft, _ = planted_pair(tmp_path)
    repair(base, ft, tmp_path / "out")
    with safe_open(tmp_path / "out" / "model.safetensors", framework="pt") as fh:
        assert fh.metadata() == {"format": "pt"}
        assert set(fh.keys()) == {"proj.weight", "same.weight", "norm.weight", "small.weight"}


def test_a_finetune_without_config_is_refused_before_anything_is_written(tmp_path):
    base, ft, _ = planted_pair(tmp_path)
    (ft / "config.json").unlink()
    with pytest.raises(RepairError, match="no config.json beside the weights"):
        repair(base, ft, tmp_path / "out")
    assert not (tmp_path / "out").exists()
