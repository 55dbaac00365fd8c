"""forgetkit: control what a fine-tuned language model keeps and what it loses.

The Python API: ``forgetkit.train``, ``forgetkit.unlearn``, ``forgetkit.repair``,
``forgetkit.audit`` and ``forgetkit.evaluate`` (``forgetkit/api.py``); each but evaluate is
also the package of its own code.
"""

import importlib
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # ``forgetkit.train`` and the others are imported on first use, not with forgetkit.
    if name in ("train", "unlearn", "repair", "audit"):
        return importlib.import_module(f"forgetkit.{name}")
    raise AttributeError(f"module 'forgetkit' has no attribute {name!r}")


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """The core metrics of question sets for a model: see ``forgetkit.api.evaluate``."""
    # The facade over every layer, imported on first use like the packages above.
    return importlib.import_module("forgetkit.api").evaluate(*args, **kwargs)
