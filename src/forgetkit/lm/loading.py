"""How a model is loaded: dtype, device and the other ``from_pretrained`` options, and the
error every failed load raises."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forgetkit.errors import UserError

BUNDLED = "smollm2-135m-instruct"  # the embedded default model
TINY = "tiny-random-llama"  # a tiny random Llama built in code, for tests


class ModelLoadError(UserError, RuntimeError):
    """A model spec could not be resolved or loaded; the message says what to do."""


DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class LoadOptions:
    """How a model is loaded, with transformers' names for the same things.

    ``dtype``: ``auto`` keeps the checkpoint's own (float32 for GGUF and the built-in tiny
    model), or ``bfloat16``, ``float16``, ``float32``. ``device``: ``auto`` (the GPU when
    there is one), ``cpu``, ``cuda``, ``cuda:N``. Remote code never runs unless
    ``trust_remote_code`` is set.
    """

    dtype: str = "auto"
    device: str = "cpu"
    attn_implementation: str | None = None
    revision: str | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ModelLoadError(f"dtype {self.dtype!r}: choose auto, {', '.join(DTYPES)}")
        resolve_device(self.device)

    @classmethod
    def of(cls, options: object) -> LoadOptions:
        """The loading options an options object names (``dtype``, ``device``...)."""
        names = ("dtype", "device", "attn_implementation", "revision", "trust_remote_code")
        defaults = cls()
        return cls(**{n: getattr(options, n, getattr(defaults, n)) for n in names})

    def torch_dtype(self) -> torch.dtype | str:
        return "auto" if self.dtype == "auto" else DTYPES[self.dtype]

    def pretrained_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``from_pretrained``."""
        out: dict[str, object] = {"dtype": self.torch_dtype(),
                                  "trust_remote_code": self.trust_remote_code}
        if self.attn_implementation:
            out["attn_implementation"] = self.attn_implementation
        if self.revision:
            out["revision"] = self.revision
        return out


def resolve_device(device: str) -> torch.device:
    """``auto`` -> the first GPU when there is one, else the CPU; a GPU that is not there is
    refused with what there is."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ModelLoadError(f"device {device!r}: give auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index or 0) >= count:
            raise ModelLoadError(f"device {device!r}: this machine has {count} CUDA GPU(s); "
                                 "use --device auto or cpu")
    elif dev.type != "cpu":
        raise ModelLoadError(f"device {device!r}: give auto, cpu, cuda or cuda:N")
    return dev


__all__ = ["BUNDLED", "DTYPES", "TINY", "LoadOptions", "ModelLoadError", "resolve_device"]
