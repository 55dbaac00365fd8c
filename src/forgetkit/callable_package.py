"""Packages that are also functions: ``forgetkit.train(...)`` runs a training while
``forgetkit.train.run`` stays the module it is.

A module's class may be replaced by a subclass of ``types.ModuleType`` (Python 3.5+); the
one used here adds ``__call__``, which imports the target function on first use, so
importing the package stays as cheap as before.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def make_callable(package: str, target: str) -> None:
    """Make the package named ``package`` callable as ``target`` ("module:function")."""
    module_name, _, function = target.partition(":")

    class CallablePackage(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(module_name), function)(*args, **kwargs)

    CallablePackage.__call__.__doc__ = f"Calls {target.replace(':', '.')}."
    sys.modules[package].__class__ = CallablePackage


__all__ = ["make_callable"]
