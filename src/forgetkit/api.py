"""The entry points of the Python API, as ``forgetkit.train``, ``forgetkit.unlearn``,
``forgetkit.repair``, ``forgetkit.evaluate`` and ``forgetkit.audit``.

Each takes what the command line takes, by the same flat option names, and also what a
Python user holds: a loaded model and its tokenizer instead of a spec, and QA records, a
``datasets.Dataset`` or a list of rows (any shape forgetkit reads) instead of a data file::

    import forgetkit

    out = forgetkit.train(model=model, tokenizer=tok, data=dataset, method="seat",
                          gamma=1.0, output="runs/seat")
    scores = forgetkit.evaluate(out, unseen="unseen.jsonl", known="known.jsonl")
    forgetkit.repair(base="base-folder", finetuned=out, output="runs/seat-dg")
    forgetkit.unlearn(model="runs/seat", forget=forget_rows, retain=retain_rows,
                      method="kif", output="runs/kif")

In-memory data is written to a temporary JSON Lines file for the run (the run record then
fingerprints its content); a loaded model is trained as it is, never copied or reloaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Data = Any  # a path or hf: spec, QA records, a datasets.Dataset, or rows


def _is_source(data: Data) -> bool:
    return data is None or isinstance(data, str | Path)


@contextmanager
def _as_files(fields: Any, **sets: Data) -> Iterator[dict[str, Any]]:
    """Data sources as they are; in-memory data as temporary JSON Lines files."""
    from forgetkit.data.records import write_qa
    from forgetkit.train.external import records_of

    with tempfile.TemporaryDirectory(prefix="forgetkit-data-") as tmp:
        out = {}
        for name, data in sets.items():
            out[name] = data if _is_source(data) else write_qa(
                records_of(data, fields), Path(tmp) / f"{name}.jsonl")
        yield out


def _fields(options: dict[str, Any]) -> Any:
    from forgetkit.data.formats import Fields

    return Fields(options.get("question_field", "question"),
                  options.get("answer_field", "answer"), options.get("subject_field", "subject"))


def _loaded(model: Any, tokenizer: Any) -> tuple[str | None, tuple | None]:
    """(spec, None) for a spec or path; (its name, (model, tokenizer)) for a loaded model."""
    if model is None or isinstance(model, str | Path):
        return (str(model) if model is not None else None), None
    if tokenizer is None:
        raise TypeError("a loaded model needs its tokenizer: pass tokenizer=...")
    from forgetkit.lm.models import _finish_tokenizer

    name = getattr(getattr(model, "config", None), "_name_or_path", "") or "in-memory model"
    return name, (model, _finish_tokenizer(tokenizer))


def train(config: Any = None, /, *, model: Any = None, tokenizer: Any = None,
          data: Data = None, **options: Any) -> Path:
    """Fine-tune with a method; returns the output folder (``forgetkit train``).

    ``config``: a ``TrainConfig``, or none and the options as keywords (``method``,
    ``output``, ``gamma``...).
    """
    from forgetkit.train.config import TrainConfig
    from forgetkit.train.run import train as run_train

    spec, loaded = _loaded(model, tokenizer)
    with _as_files(_fields(options), data=data) as files:
        if config is None:
            given = {k: v for k, v in (("model", spec), ("data", files["data"]))
                     if v is not None}
            config = TrainConfig(**given, **options)
        elif options or model is not None or data is not None:
            raise TypeError("give a TrainConfig or keyword options, not both")
        return run_train(config, loaded=loaded)


def unlearn(config: Any = None, /, *, model: Any = None, tokenizer: Any = None,
            forget: Data = None, retain: Data = None, **options: Any) -> Path:
    """Unlearn the forget set's subjects, keep the retain set's (``forgetkit unlearn``)."""
    from forgetkit.unlearn.config import UnlearnConfig
    from forgetkit.unlearn.run import unlearn as run_unlearn

    spec, loaded = _loaded(model, tokenizer)
    with _as_files(_fields(options), forget=forget, retain=retain) as files:
        if config is None:
            given = {k: v for k, v in (("model", spec), ("forget", files["forget"]),
                                       ("retain", files["retain"])) if v is not None}
            config = UnlearnConfig(**given, **options)
        elif options or model is not None or forget is not None or retain is not None:
            raise TypeError("give an UnlearnConfig or keyword options, not both")
        return run_unlearn(config, loaded=loaded)


def repair(base: Any, finetuned: Any, output: str | Path, method: str = "dg-hard",
           **options: Any) -> dict[str, Any]:
    """Repair a fine-tune against its base, streamed from their safetensors folders
    (``forgetkit repair``); a loaded model is saved to a temporary folder first. Returns
    the summary."""
    from forgetkit.lm import models
    from forgetkit.repair.apply import repair as run_repair

    with tempfile.TemporaryDirectory(prefix="forgetkit-repair-") as tmp:
        paths = []
        for name, value in (("base", base), ("finetuned", finetuned)):
            if isinstance(value, str | Path):
                paths.append(value)
            else:
                model, tokenizer = value if isinstance(value, tuple) else (value, None)
                if tokenizer is None:
                    raise TypeError(f"a loaded {name} model is given as (model, tokenizer)")
                paths.append(models.save(model, tokenizer, Path(tmp) / name))
        return run_repair(paths[0], paths[1], output, method=method, **options)


def audit(base: str | Path, models: Any, output: str | Path, **options: Any) -> dict[str, Any]:
    """``forgetkit audit``: the base and each fine-tune measured with intervals, into the
    folder ``output`` (report.html, results.json, results.md); returns the results.

    models: ``{label: spec}`` or ``["label=spec", ...]``; ``options`` are the command's
    flags by name (``data``, ``unseen``, ``known``, ``tasks``, ``limit``, ``repair``,
    ``seeds``, ``judge``, ``overwrite``...), a single path or name allowed where the
    command repeats a flag.
    """
    from forgetkit.audit.run import run_audit
    from forgetkit.lm.models import LoadOptions

    given = (list(models.items()) if isinstance(models, dict) else
             [m.partition("=")[::2] for m in ([models] if isinstance(models, str) else models)])
    for flag in ("data", "unseen", "known", "tasks", "repair"):
        if isinstance(options.get(flag), str | Path):
            options[flag] = [options[flag]]
    load = {k: options.pop(k) for k in ("dtype", "device", "attn_implementation", "revision",
                                        "trust_remote_code") if k in options}
    return run_audit(str(base), [f"{label}={spec}" for label, spec in given], Path(output),
                     load=LoadOptions(**load) if load else None, **options)


def _sets(given: Any) -> list[Any]:
    """One question set, or a list of them: a list of sources or of record lists is many
    sets; a list of records or rows is one."""
    if not isinstance(given, list | tuple):
        return [given]
    if all(isinstance(x, str | Path | list | tuple) or hasattr(x, "column_names")
           for x in given):
        return list(given)
    return [given]


def evaluate(model: Any, tokenizer: Any = None, *, ft: Data | Sequence[Data] = (),
             unseen: Data | Sequence[Data] = (), known: Data | Sequence[Data] = (),
             max_new_tokens: int = 48, batch_size: int = 16, progress: bool = True,
             load: Any = None) -> dict[str, Any]:
    """The core metrics of each question set's role (``forgetkit eval``), for a spec or a
    loaded model. Each of ``ft``, ``unseen``, ``known`` is one set or a list of sets."""
    from forgetkit.data.formats import Fields
    from forgetkit.eval.evaluate import EvalSet
    from forgetkit.eval.evaluate import evaluate as run_evaluate
    from forgetkit.lm import models
    from forgetkit.train.external import records_of

    spec, loaded = _loaded(model, tokenizer)
    sets = []
    for role, given in (("ft", ft), ("unseen", unseen), ("known", known)):
        for i, data in enumerate(_sets(given)):
            name = Path(data).stem if isinstance(data, str | Path) else f"{role}{i}"
            sets.append(EvalSet(name, role, records_of(data, Fields())))
    model, tokenizer = loaded or models.load(spec, options=load)
    return {"model": spec, **run_evaluate(model, tokenizer, sets, max_new_tokens=max_new_tokens,
                                          batch_size=batch_size, progress=progress)}


__all__ = ["evaluate", "repair", "train", "unlearn"]
