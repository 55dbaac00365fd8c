import pytest
import torch
from transformers import AutoModelForCausalLM

from forgetkit.lm import models


def test_tiny_model_is_deterministic_per_seed():
    a, _ = models.load(models.TINY, seed=3)
    b, _ = models.load(models.TINY, seed=3)
    c, _ = models.load(models.TINY, seed=4)
    wa, wb, wc = (m.model.layers[0].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)


def test_tiny_tokenizer_has_chat_template_and_pad(tiny):
    _, tok = tiny
    assert tok.pad_token is not None and tok.eos_token == "<|im_end|>"
    text = tok.apply_chat_template([{"role": "user", "content": "Hi?"}],
                                   add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")
    # Any text round-trips through the byte-level vocabulary.
    s = "Zyxqv Ørsted 42 — ok"
    assert tok.decode(tok(s, add_special_tokens=False)["input_ids"]) == s


def test_saved_model_reloads_with_plain_transformers(tiny, tmp_path):
    model, tok = tiny
    out = models.save(model, tok, tmp_path / "ckpt")
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    plain = AutoModelForCausalLM.from_pretrained(out)
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert torch.allclose(plain(ids).logits, model(ids).logits, atol=1e-6)
    again, tok2 = models.load(str(out))
    assert tok2.get_vocab() == tok.get_vocab()


def test_save_refuses_existing_output(tiny, tmp_path):
    model, tok = tiny
    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="already exists"):
        models.save(model, tok, out)
    assert (out / "keep.txt").read_text() == "user file"


def test_failed_save_leaves_no_partial_output(tiny, tmp_path, monkeypatch):
    model, tok = tiny

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tok, "save_pretrained", broken)
    with pytest.raises(OSError, match="No space"):
        models.save(model, tok, tmp_path / "ckpt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec, message", [
    ("", "empty model spec"),
    ("no/such/path/model", "no such folder or file"),
    ("./missing.gguf", "GGUF file not found"),
])
def test_bad_specs_give_clear_errors(spec, message):
    with pytest.raises(models.ModelLoadError, match=message):
        models.load(spec)


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(models.ModelLoadError, match="no config.json"):
        models.load(str(tmp_path))


def test_unreachable_hub_fails_fast_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelLoadError, match="HF_HUB_OFFLINE is set and the model is "
                       "not in the local cache"):
        models.load("some-org/some-model-that-is-not-cached")


def test_resolve_kinds(tmp_path):
    assert models.resolve(models.BUNDLED).kind == "bundled"
    assert models.resolve(models.TINY).kind == "tiny"
    assert models.resolve("meta-llama/Llama-3.1-8B-Instruct").kind == "hub"
    (tmp_path / "config.json").write_text("{}")
    assert models.resolve(str(tmp_path)).kind == "folder"
