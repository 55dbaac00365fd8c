"""Judged IDK: the stand-in for the SEAT paper's human IDK score (IDK_HA, appendix B.4).

The paper's human judges give an answer 1 when it is a *refusal* (it clearly says it does not
know, without hallucinating) AND the refusal is *semantically entailed* by the question (it
refers to the question's entity rather than being a canned "I can't help"). ``judged_idk``
computes the same two-part score:

* refusal - decided by a ``RefusalJudge``:

  - ``EmbeddingRefusalJudge`` (default, offline): all-MiniLM-L6-v2 sentence embeddings (mean
    pooling, L2 norm) of the answer with the words it shares with the question masked
    (``mask_question_words``: the embedding then carries how the answer responds, not what
    it is about), and a logistic regression trained on labelled answers generated in code
    (``refusal_training_set``): refusals in many phrasings, including ones no string in
    ``REFUSAL_PHRASES`` matches, against confident answers, hallucinated descriptions of
    made-up entities, hedged guesses and answers that contain a refusal phrase but answer;
  - ``ModelRefusalJudge``: any causal LM ``forgetkit.lm.models.load`` accepts, asked through its
    chat template whether the answer declines to answer; "Yes" vs "No" next-token logits;
  - ``StringMatchJudge``: the IDK_SM phrase list, for comparison.

* entity - ``refers_to_entity``: the answer names the record's subject (case-insensitive,
  whole words), either in full or by one of its *distinctive* tokens. A token is distinctive
  when it is at least 3 characters long, not a generic word (function words, company and
  publisher suffixes, words the synthetic title templates use) and, when the name has any
  coined word, not a whole word of the MiniLM vocabulary: "Firthanov" stands for "Gosdin
  Firthanov", "Zethasis" for "Zethasis Biotech", but "Biotech" or "Nights" alone do not. Names
  in ``meta["party_b"]`` / ``meta["edge"]`` (the counterparty a contract question also names)
  count too: a refusal about either named party refers to the question. A record without a
  subject has no entity to check; its refusal decision alone counts.

Modules: ``base`` (the protocol and ``JudgeError``), ``entity`` (the entity check), ``score``
(judged IDK and agreement), ``string_match``, ``embedding`` with its generated training data in
``phrase_bank``, and ``model`` (a judge LM). ``load_judge`` picks one by spec.
"""

from __future__ import annotations

from forgetkit.eval.judge.base import EMBEDDING_PACKAGE, JudgeError, RefusalJudge
from forgetkit.eval.judge.embedding import EmbeddingRefusalJudge, SentenceEncoder, embedding_judge
from forgetkit.eval.judge.entity import distinctive_tokens, refers_to_entity
from forgetkit.eval.judge.model import JUDGE_PROMPT, ModelRefusalJudge
from forgetkit.eval.judge.phrase_bank import MASK, mask_question_words, refusal_training_set
from forgetkit.eval.judge.score import agreement, judged_idk, judged_refusals
from forgetkit.eval.judge.string_match import StringMatchJudge


def load_judge(spec: str | None = None) -> RefusalJudge:
    """A refusal judge by spec: None or 'embedding' (offline default), 'string-match', or a
    model spec for ``ModelRefusalJudge`` (anything ``forgetkit.lm.models.load`` accepts)."""
    if spec is None or spec == "embedding":
        return embedding_judge()
    if spec == "string-match":
        return StringMatchJudge()
    return ModelRefusalJudge(spec)


__all__ = ["EMBEDDING_PACKAGE", "JUDGE_PROMPT", "MASK", "EmbeddingRefusalJudge", "JudgeError",
           "ModelRefusalJudge", "RefusalJudge", "SentenceEncoder", "StringMatchJudge",
           "agreement", "distinctive_tokens", "embedding_judge", "judged_idk",
           "judged_refusals", "load_judge", "mask_question_words", "refers_to_entity",
           "refusal_training_set"]
