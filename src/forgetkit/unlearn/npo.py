"""``npo``: Negative Preference Optimization (Zhang et al., 2024, Eq. 3).

    L_NPO = (2 / beta) * E[ log(1 + (pi_theta(a|q) / pi_ref(a|q))^beta) ]
          = (2 / beta) * E[ softplus(beta * (log pi_theta(a|q) - log pi_ref(a|q))) ]

over the forget answers, pi(a|q) the probability of the whole answer and pi_ref the frozen
input model. It equals (2/beta) log 2 at theta = ref and falls towards 0 as the answer becomes
unlikely; unlike gradient ascent its gradient fades there, so it does not run away.
pi_ref never changes, so log pi_ref(a|q) is computed once per example before training.
``npo-rt`` adds the retain cross-entropy (the paper's NPO-RT).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field

from forgetkit.config import Options
from forgetkit.lm.scoring import answer_logprob_sums, answer_logprobs
from forgetkit.train.registry import RunContext, register_term
from forgetkit.unlearn import retain  # noqa: F401  (registers retain-ce)
from forgetkit.unlearn.registry import UnlearningMethod, register_unlearning


def npo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean over examples of (2/beta) log(1 + (pi/pi_ref)^beta), from log pi and log pi_ref."""
    return (2.0 / beta) * F.softplus(beta * (logp - ref_logp)).mean()


@dataclass
class NPO:
    ref_logp: torch.Tensor  # [n_examples]: log pi_ref(answer | question)
    beta: float = 0.1
    weight: float = 1.0
    name: str = "npo"
    needs_hidden_states: bool = False

    def __call__(self, ctx) -> torch.Tensor:
        logp, _ = answer_logprob_sums(ctx.outputs.logits, ctx.labels)
        ref = self.ref_logp.to(logp.device)[ctx.extras["example_index"]]
        return npo_loss(logp, ref, self.beta)


class NPOOptions(Options):
    npo_beta: float = Field(0.1, gt=0, description="NPO: beta")


@register_term("npo", options=NPOOptions)
def build_npo(ctx: RunContext) -> NPO:
    ref, _ = answer_logprobs(ctx.model, ctx.examples, ctx.tokenizer.pad_token_id)
    return NPO(ref, beta=ctx.config.npo_beta)


NPO_METHOD = register_unlearning(UnlearningMethod(
    "npo", "Negative Preference Optimization on the forget answers", terms=("npo",)))
NPO_RT = register_unlearning(UnlearningMethod(
    "npo-rt", "NPO + cross-entropy on the retain answers", terms=("npo", "retain-ce")))

__all__ = ["NPO", "NPO_METHOD", "NPO_RT", "npo_loss"]
