"""Shared fixtures: a tiny random Llama with the offline test tokenizer."""

from __future__ import annotations

import os

import pytest

# Keep tests on the offline path and quiet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny():
    from forgetkit import models

    return models.load(models.TINY)
