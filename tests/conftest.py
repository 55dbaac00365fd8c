"""Shared fixtures: a tiny random Llama with the offline test tokenizer."""

from __future__ import annotations

import os

import pytest

# Keep tests on the offline path and quiet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny():
    from forgetkit.lm import models

    return models.load(models.TINY)


@pytest.fixture
def fake_aligned_base(tmp_path, monkeypatch):
    """``fake_aligned_base(module)``: a saved tiny model (plus known questions) that stands in
    for the cached aligned base of a demo module, whose ``prepare_base`` is patched to it."""
    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth
    from forgetkit.lm import models

    def install(module):
        base = tmp_path / "base"
        if not (base / "model").is_dir():
            model, tok = models.load(models.TINY)
            models.save(model, tok, base / "model")
            write_qa(synth("known", 4, seed=0), base / "data" / "known.jsonl")
        monkeypatch.setattr(module, "prepare_base",
                            lambda progress=True: (base, {"subjects": [], "recipe": {}}))
        return base

    return install


@pytest.fixture
def contracts_file(tmp_path):
    """Eight contract questions in a JSONL file."""
    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth

    return write_qa(synth("contracts", 1, seed=0)[:8], tmp_path / "train.jsonl")
