"""Evaluation: what a model keeps and what it forgets, measured from shared passes.

* ``registry``: every metric as one registration (name, what it reads, direction, title);
  suites, comparisons and reports read it.
* ``evaluate``: the core suite, one generation pass per question set; ``metrics`` holds its
  text and next-token measures.
* ``compare``: base, fine-tuned and repaired models scored by what the repair won back.
* ``ignorance``: the SEAT paper's ignorance-awareness suite (IAS, IA reduction, drift).
* ``unlearning``: the unlearning suite, with ``tofu``, ``leakage``, ``latent``, ``relearn``.
* ``robustness``: the LfU paper's robustness measures.
* ``judge/``: refusal judges (string match, embedding, a judge model); ``activations``:
  the ignorance probe's logistic fit on residual-stream activations (read by ``lm/``).

Generation, answer scoring and activations themselves live in ``forgetkit.lm``. Nothing here
imports report/ or the command line; ``forgetkit.cli.evaluate`` is the ``eval`` command.
"""
