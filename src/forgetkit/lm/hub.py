"""Models from the Hugging Face Hub: the local cache first, then the hub, which must answer
within ``FORGETKIT_HUB_TIMEOUT`` seconds."""

from __future__ import annotations

import os

from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from forgetkit.lm.loading import BUNDLED, ModelLoadError


def hub_timeout() -> float:
    """Seconds to wait for the hub to answer (``FORGETKIT_HUB_TIMEOUT``, default 20)."""
    raw = os.environ.get("FORGETKIT_HUB_TIMEOUT", "20")
    try:
        value = float(raw)
    except ValueError:
        raise ModelLoadError(f"FORGETKIT_HUB_TIMEOUT={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise ModelLoadError(f"FORGETKIT_HUB_TIMEOUT={raw!r} must be more than 0 seconds")
    return value


def hub_token() -> str | None:
    """The token transformers would use: ``HF_TOKEN``, else the one ``hf auth login`` saved."""
    from huggingface_hub import get_token

    return get_token()


def probe_hub(repo_id: str) -> None:
    """Ask the hub about ``repo_id`` once, with a deadline, before transformers downloads.

    An endpoint that accepts connections but never answers would otherwise stall a load for
    as long as the operating system keeps the socket open; this fails in seconds instead.
    """
    import urllib.error
    import urllib.request

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        raise ModelLoadError(
            f"'{repo_id}' looks like a Hugging Face Hub id, but HF_HUB_OFFLINE is set and the "
            "model is not in the local cache. Pass its local folder instead, or use the "
            f"bundled '{BUNDLED}'.")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/api/models/{repo_id}"
    token = hub_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = hub_timeout()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=timeout):
            return
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise ModelLoadError(f"'{repo_id}': the hub refused access (HTTP {err.code}); it may "
                                 "be gated or private: set HF_TOKEN (or run `hf auth "
                                 "login`) with a token that has access") from None
        if err.code == 404:
            raise ModelLoadError(f"'{repo_id}': no such model on {endpoint} (HTTP 404); check "
                                 "the id, or give a local folder") from None
        raise ModelLoadError(f"'{repo_id}': the hub at {endpoint} answered HTTP "
                             f"{err.code}") from None
    except (OSError, ValueError) as err:  # refused, unresolvable, or no answer in time
        reason = getattr(err, "reason", err)
        raise ModelLoadError(
            f"'{repo_id}' looks like a Hugging Face Hub id, but the hub at {endpoint} did not "
            f"answer within {timeout:g} s ({reason}) and the model is not in the local cache. "
            "Download it where the hub is reachable and pass its local folder, raise "
            f"FORGETKIT_HUB_TIMEOUT, or use the bundled '{BUNDLED}'.") from None


def load_hub(repo_id: str, kwargs: dict[str, object]
              ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """From the local Hugging Face cache if it is there (works offline), else the hub."""
    tok_kwargs = {k: v for k, v in kwargs.items() if k in ("revision", "trust_remote_code")}
    try:
        tok = AutoTokenizer.from_pretrained(repo_id, local_files_only=True, **tok_kwargs)
        model = AutoModelForCausalLM.from_pretrained(repo_id, local_files_only=True, **kwargs)
        return model, tok
    except OSError:
        pass
    probe_hub(repo_id)
    try:
        tok = AutoTokenizer.from_pretrained(repo_id, **tok_kwargs)
        model = AutoModelForCausalLM.from_pretrained(repo_id, **kwargs)
    except OSError as err:
        raise ModelLoadError(f"'{repo_id}': could not load from the hub: {err}") from err
    return model, tok


def load_hub_tokenizer(repo_id: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a hub model: the local cache first, then the hub, probed first."""
    try:
        return AutoTokenizer.from_pretrained(repo_id, local_files_only=True)
    except OSError:
        pass
    probe_hub(repo_id)
    try:
        return AutoTokenizer.from_pretrained(repo_id)
    except OSError as err:
        raise ModelLoadError(f"'{repo_id}': could not load its tokenizer from the hub: "
                             f"{err}") from err


__all__ = ["hub_timeout", "load_hub", "load_hub_tokenizer", "probe_hub"]
