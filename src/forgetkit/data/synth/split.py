"""Hold out whole subjects: no held-out entity is ever trained on."""

from __future__ import annotations

import random
from collections.abc import Sequence

from forgetkit.data.records import QARecord
from forgetkit.errors import UserError


def split_by_subject(records: Sequence[QARecord], holdout: float | int,
                     seed: int) -> tuple[list[QARecord], list[QARecord]]:
    """Split records into (train, held-out) by subject, so no held-out entity is trained on.

    ``holdout`` is a fraction of subjects (a float in (0, 1)) or a number of subjects (an
    int). Records without a subject count as their own group. Order within each part is kept.
    """
    groups: dict[object, list[int]] = {}
    for i, record in enumerate(records):
        key: object = record.subject if record.subject is not None else ("__record__", i)
        groups.setdefault(key, []).append(i)
    total = len(groups)
    if isinstance(holdout, bool):
        raise UserError(f"holdout must be a fraction or a count of subjects, got {holdout!r}")
    if isinstance(holdout, float):
        if not 0.0 < holdout < 1.0:
            raise UserError(f"holdout fraction must be in (0, 1), got {holdout}")
        count = max(1, round(holdout * total))
    elif isinstance(holdout, int):
        count = holdout
    else:
        raise UserError(f"holdout must be a float fraction or an int count, got {holdout!r}")
    if not 1 <= count < total:
        raise UserError(f"holding out {count} of {total} subjects leaves an empty part; "
                         f"choose between 1 and {total - 1} subjects")
    rng = random.Random(f"split:{seed}")
    held_keys = set(rng.sample(list(groups), count))
    held_rows = {i for key in held_keys for i in groups[key]}
    train = [r for i, r in enumerate(records) if i not in held_rows]
    heldout = [r for i, r in enumerate(records) if i in held_rows]
    return train, heldout
