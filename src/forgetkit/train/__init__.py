"""Training: one recipe, one Trainer, methods composed of registered parts.

* ``run.py``: the recipe top to bottom (config -> data -> model -> method -> Trainer -> save);
  ``trainer.py``: the Trainer whose loss is a weighted sum of terms, in one forward;
* ``config.py``: ``TrainConfig``, the run options plus the options of the method's parts;
* ``registry.py``: the parts (parameter selections, loss terms, data transforms) and the
  methods, each registered by name with the options it reads; ``methods.py``: the method
  table, rows of parts (``seat`` = ``sparse`` parameters + ``ce`` + ``kl``);
* one file per part: ``select_full``/``select_lora``/``select_sparse`` (which weights move,
  ``sparse.py`` the mask machinery), ``losses`` (CE), ``kl_to_base`` (SEAT's KL),
  ``lfu/`` (LfU), ``ewc``, ``clora``, ``neftune``, ``replay``, ``rtuning``, ``sdft``,
  ``l2_to_base`` (a whole method in one file).

See docs/training.md and docs/extending.md.
"""

from forgetkit.callable_package import make_callable  # noqa: E402

make_callable(__name__, "forgetkit.api:train")  # forgetkit.train(...) is forgetkit.api.train
