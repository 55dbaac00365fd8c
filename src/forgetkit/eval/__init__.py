"""Evaluation: what a model keeps and what it forgets, measured from shared passes.

* ``registry``: every metric as one registration (name, what it reads, direction, title);
  suites, comparisons and reports read it.
* ``evaluate``: the core suite, one generation pass per question set; ``metrics`` holds its
  text and next-token measures.
* ``compare``: base, fine-tuned and repaired models scored by what the repair won back.
* ``ignorance``: the SEAT paper's ignorance-awareness suite (IAS, IA reduction, drift).
* ``unlearning``: the unlearning suite, with ``tofu``, ``leakage``, ``latent``, ``relearn``.
* ``robustness``: the LfU paper's robustness measures.
* ``judge``, ``generate``, ``likelihood``, ``activations``: answers, refusal judgements,
  answer likelihoods and residual-stream activations the suites read.

Nothing here imports report/ or the command line; ``cli`` is only the old import path of
``forgetkit.cli_eval``, the ``forgetkit eval`` command's glue.
"""
