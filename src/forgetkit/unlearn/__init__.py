"""Unlearning: remove what a fine-tuned model knows about some subjects, keep the rest.

* ``setting.py``: the forget / retain / all split of the fictitious-authors data, and the
  checks every run makes on its two sets;
* ``registry.py``: unlearning methods by name; each is a row of training parts (loss terms,
  data transforms, a parameter selection) trained by ``train.run.train``;
* one file per method: ``ga.py``, ``graddiff.py``, ``npo.py``, ``idk.py``, ``kif.py``; KIF's
  math lives in ``signature.py`` (mining) and ``suppression.py`` (gate and hook);
* ``run.py``: ``unlearn(config)``, the front end of ``forgetkit unlearn``.

See docs/kif.md.
"""

from forgetkit.callable_package import make_callable  # noqa: E402

make_callable(__name__, "forgetkit.api:unlearn")  # forgetkit.unlearn(...) is forgetkit.api.unlearn
