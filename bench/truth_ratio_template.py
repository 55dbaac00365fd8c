"""Does the truth ratio tell a model that knows the forget set from one that never saw it?

Scores the unlearning demo's knowing model and retain oracle on the demo's 40 forget
questions and compares their per-question truth ratios (KS test, as forget quality does)
twice: with the wrong answers in the short answer's template (``meta.perturbed_answers``)
and in the paraphrased answer's (``meta.perturbed_paraphrased_answers``, what the suite
uses). Run after ``forgetkit demo --unlearn``:

    python bench/truth_ratio_template.py results/demo/unlearn/models
    python bench/truth_ratio_template.py results/demo/references     # after --seeds N
"""

import sys

import numpy as np

from forgetkit.eval import tofu
from forgetkit.eval.unlearning import _pairs
from forgetkit.lm import models
from forgetkit.lm.scoring import score_answers
from forgetkit.studies.unlearning import DEFAULT, demo_setting

KINDS = {"answer template": "perturbed", "paraphrase template": "perturbed_paraphrased"}


def main(folder: str) -> None:
    forget = demo_setting(DEFAULT).forget
    pairs, rows = _pairs(forget, truth_ratio=True)
    ratios: dict[str, dict[str, np.ndarray]] = {}
    for label in ("knowing", "retain"):
        model, tok = models.load(f"{folder}/{label}")
        lp = score_answers(model, tok, pairs, progress=False).mean_logprob
        para = [lp[e["paraphrased"]] for e in rows]
        ratios[label] = {kind: tofu.truth_ratio(para, [[lp[j] for j in e[key]] for e in rows])
                         for kind, key in KINDS.items()}
        del model
    print(f"n = {len(forget)} forget questions; the KS test detects D >= "
          f"{tofu.ks_detectable(len(forget)):.3f}")
    for kind in KINDS:
        knows, oracle = ratios["knowing"][kind], ratios["retain"][kind]
        d, p = tofu.ks_test(knows, oracle)
        print(f"{kind}: median R knowing {np.median(knows):.3f}, oracle {np.median(oracle):.3f};"
              f" forget truth ratio knowing {tofu.truth_ratio_score(knows, 'forget'):.3f}, "
              f"oracle {tofu.truth_ratio_score(oracle, 'forget'):.3f}; KS D = {d:.3f}, "
              f"p = {p:.2e}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/truth_ratio_template.py FOLDER  (holding knowing/ and "
                 "retain/)")
    main(sys.argv[1])
