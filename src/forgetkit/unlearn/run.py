"""``unlearn(config)``: the front end of ``forgetkit unlearn`` over the training recipe.

Top to bottom: check the sets and the output -> pick the training row of the method ->
``train.run.train`` (forget set as data, retain partners as an extra input group) -> move
KIF's signatures into the output. The input model is only ever read.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from forgetkit.data.formats import Fields
from forgetkit.data.records import read_qa
from forgetkit.errors import UserError
from forgetkit.io import check_output
from forgetkit.train.run import is_main_process, run_inputs, train
from forgetkit.unlearn.config import UnlearnConfig
from forgetkit.unlearn.kif import pending_signatures
from forgetkit.unlearn.methods import get_unlearning, train_method
from forgetkit.unlearn.setting import check_sets

SIGNATURES_FILE = "kif_signatures.safetensors"


def unlearn(config: UnlearnConfig, callbacks: list | None = None,
            loaded: tuple | None = None) -> Path:
    """Unlearn ``config.forget`` from ``config.model``, keep ``config.retain``; return the output.

    The output is a merged checkpoint (or with ``adapter`` a peft adapter) plus
    ``forgetkit_run.json``; KIF adds ``kif_signatures.safetensors``. ``callbacks`` are passed
    to the Trainer; ``loaded`` is a ``(model, tokenizer)`` already in memory.
    """
    if config.forget is None or config.retain is None or config.output is None:
        raise UserError("unlearn needs --forget FILE, --retain FILE and --output DIR")
    output = Path(config.output)
    check_output(output, run_inputs(config))
    fields = Fields.of(config)
    check_sets(read_qa(config.forget, fields), read_qa(config.retain, fields),
               f"forget set {config.forget}", f"retain set {config.retain}")
    method = get_unlearning(config.method)
    row = train_method(method.name, config.parameters, config.adapter)
    uses_signatures = "kif-forget" in method.terms
    pending = pending_signatures(output)
    first = is_main_process()  # the process that writes the output
    try:
        train(config, callbacks=callbacks, method=row, loaded=loaded)
        if uses_signatures and first:
            source = Path(config.kif_signatures) if config.kif_signatures else pending
            tmp = output / f".{SIGNATURES_FILE}.tmp"
            shutil.copyfile(source, tmp)
            tmp.replace(output / SIGNATURES_FILE)
    finally:
        if first:
            pending.unlink(missing_ok=True)
    return output


__all__ = ["SIGNATURES_FILE", "unlearn"]
