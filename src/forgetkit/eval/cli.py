"""Old import path of the ``forgetkit eval`` command glue, now ``forgetkit.cli_eval``.

Kept so that ``forgetkit.cli`` keeps importing ``run_eval`` from here until it imports
``forgetkit.cli_eval`` itself; library code imports neither.
"""

from forgetkit.cli_eval import SUITES, eval_sets, run_eval, run_unlearning_eval

__all__ = ["SUITES", "eval_sets", "run_eval", "run_unlearning_eval"]
