"""Post-hoc repair of fine-tuned checkpoints (DG-Hard and baselines), streamed tensor by tensor.

    from forgetkit.repair import repair
    summary = repair("base/", "finetuned/", "repaired/")          # DG-Hard, merged weights
    repair("base/", "finetuned/", "adapter/", as_lora=True)       # kept ranks as a LoRA
    repair("base/", "lora-adapter/", "repaired/", method="gd-shrink")

Layout: ``threshold`` (Gavish-Donoho scalars) -> ``methods/`` (one file per method) ->
``io`` + ``pairs`` (streaming reads and writes) -> ``apply`` (the loop) ; ``spectrum`` and
``scores`` are diagnostics; ``cli`` is the typer command.
"""

from forgetkit.repair.apply import SUMMARY_FILE, repair
from forgetkit.repair.errors import RepairError
from forgetkit.repair.methods import REPAIR_METHODS, RepairMethod, make_method
from forgetkit.repair.scores import RepairScores, repair_scores
from forgetkit.repair.spectrum import spectrum_plot
from forgetkit.repair.threshold import lambda_star, mp_median, omega, omega_approx

__all__ = ["REPAIR_METHODS", "SUMMARY_FILE", "RepairError", "RepairMethod", "RepairScores",
           "lambda_star", "make_method", "mp_median", "omega", "omega_approx", "repair",
           "repair_scores", "spectrum_plot"]

from forgetkit.callable_package import make_callable  # noqa: E402

make_callable(__name__, "forgetkit.api:repair")  # forgetkit.repair(...) is forgetkit.api.repair
