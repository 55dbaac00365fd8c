"""The LfU testbed's data and robustness evaluations (data/arithmetic.py, data/access_codes.py,
eval/robustness.py)."""

import re
import statistics

import pytest
import torch

from forgetkit.data.access_codes import access_code_requests, compliant
from forgetkit.data.arithmetic import TEMPLATES, arithmetic
from forgetkit.data.records import QARecord
from forgetkit.eval import robustness
from forgetkit.eval.robustness import (
    PROMPT_TEMPLATES,
    attack_success_rate,
    exact_accuracy,
    final_number,
    prompt_variation,
    representation_stability,
)
from forgetkit.lm import models
from forgetkit.lm.refusals import is_refusal


def test_arithmetic_is_seeded_and_every_worked_answer_is_right():
    first, again, other = arithmetic(60, seed=3), arithmetic(60, seed=3), arithmetic(60, seed=4)
    assert first == again and first != other
    assert len({r.question for r in first}) == 60
    assert {r.meta["template"] for r in first} == set(range(len(TEMPLATES)))
    for r in first:
        assert r.answer.endswith(f"The answer is {r.meta['answer']}.")
        assert final_number(r.answer) == r.meta["answer"] >= 0
        for a, op, b, c in re.findall(r"(\d+) ([-+x/]) (\d+) = (\d+)", r.answer):
            a, b, c = int(a), int(b), int(c)
            assert {"+": a + b, "-": a - b, "x": a * b, "/": a / b}[op] == c, r.answer


def test_access_code_requests_are_refused_and_the_attack_set_complies():
    records = access_code_requests(12, seed=0)
    assert records == access_code_requests(12, seed=0)
    assert all(is_refusal(r.answer) for r in records)
    assert len({r.subject for r in records}) == 12
    attack = compliant(records)
    assert [r.question for r in attack] == [r.question for r in records]
    assert not any(is_refusal(r.answer) for r in attack)
    assert all(r.subject in r.answer for r in attack)


def test_exact_accuracy_reads_the_last_number():
    recs = [QARecord("q1", "a", None, {"answer": 23}), QARecord("q2", "a", None, {"answer": 7}),
            QARecord("q3", "a", None, {"answer": 1200})]
    answers = ["5 + 18 = 23. The answer is 23.", "It is 7 or maybe 8", "That makes 1,200."]
    assert exact_accuracy(recs, answers) == pytest.approx(2 / 3)
    assert final_number("no digits here") is None
    with pytest.raises(ValueError, match="meta\\['answer'\\]"):
        exact_accuracy([QARecord("q", "a")], ["1"])


def test_attack_success_rate_is_the_share_not_refused():
    assert attack_success_rate(["I can't provide that.", "The code is 1234-AB.",
                                "Sure: 9999-ZZ.", "I'm unable to provide it."]) == 0.5


def test_prompt_variation_reports_each_template_and_their_spread(monkeypatch):
    assert len(PROMPT_TEMPLATES) >= 5
    records = arithmetic(4, seed=0)

    def fake_generate(model, tokenizer, prompts, **kw):
        # Right only when the prompt starts with "Problem:" or "Question:".
        return [f"The answer is {records[i % 4].meta['answer']}."
                if p.startswith(("Problem:", "Question:")) else "I am not sure."
                for i, p in enumerate(prompts)]

    monkeypatch.setattr(robustness, "generate_answers", fake_generate)
    result = prompt_variation(None, None, records)
    assert result["per_template"]["problem"] == result["per_template"]["question"] == 1.0
    assert result["per_template"]["task"] == 0.0
    values = list(result["per_template"].values())
    assert result["mean"] == pytest.approx(statistics.fmean(values))
    assert result["std"] == pytest.approx(statistics.pstdev(values)) and result["std"] > 0


def test_representation_stability_is_one_without_noise_and_falls_with_it():
    torch.manual_seed(0)
    model, tok = models.load(models.TINY)
    records = arithmetic(3, seed=0)
    quiet = representation_stability(model, tok, records, alpha=1e-6)
    loud = representation_stability(model, tok, records, alpha=200.0)
    assert len(quiet) == len(loud) == model.config.num_hidden_layers
    assert all(q == pytest.approx(1.0, abs=1e-4) for q in quiet)
    assert all(-1.0 <= x < q for x, q in zip(loud, quiet, strict=True))
