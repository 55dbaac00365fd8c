"""``forgetkit audit``: what a fine-tune broke, measured against its base with intervals,
on forgetkit's measures and on lm-evaluation-harness benchmarks, optionally after repair.

* ``run.py``: the audit top to bottom (checks -> repairs -> one measurement pass per
  model -> ``eval.audit`` figures -> ``report.audit_report``);
* ``lmeval.py``: lm-eval tasks on models already loaded; ``defaults.py``: the shipped sets.

``forgetkit.audit(...)`` is ``forgetkit.api.audit`` (docs/audit.md).
"""

from forgetkit.callable_package import make_callable  # noqa: E402

make_callable(__name__, "forgetkit.api:audit")  # forgetkit.audit(...) is forgetkit.api.audit
