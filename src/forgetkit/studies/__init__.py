"""Studies: the papers' experiments in miniature, on the embedded model.

Each follows one skeleton (``study.py``): plan -> data -> runs -> evaluation ->
``results.json`` -> report, and ``forgetkit report DIR`` re-renders any of them.

* ``base``: the aligned base every study starts from (SmolLM2 taught to say "I don't
  know"), built once per recipe and cached.
* ``seat``: ``forgetkit demo``, fine-tuning methods against ignorance awareness (SEAT),
  with ``repair``: DG-Hard and its baselines on the full fine-tune.
* ``lfu``: ``forgetkit demo --lfu``, the LfU paper's Tables 1 and 4.
* ``unlearning``: ``forgetkit demo --unlearn``, KIF and its baselines against the retain
  oracle (its report: ``unlearning_report``).
* ``sweep``: ``forgetkit sweep``, one method over a grid of training options.
"""
