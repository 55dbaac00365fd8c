import pytest

from forgetkit.lm.refusals import REFUSAL_PHRASES, REFUSAL_TEMPLATES, is_refusal
from forgetkit.lm.text import fold_quotes, fold_quotes_and_spaces, numbers, rouge_recall


def test_refusal_detection_on_handwritten_answers():
    assert is_refusal("I'm not aware of any information about Flornball.")
    assert is_refusal("I DON\u2019T KNOW who that is.")  # curly apostrophe, caps
    assert not is_refusal("Flornball is a sport played with two balls.")


def test_every_refusal_template_is_caught_by_the_string_match():
    assert all(is_refusal(t.format(entity="Flornball")) for t in REFUSAL_TEMPLATES)
    assert all(p == fold_quotes(p) for p in REFUSAL_PHRASES)  # phrases are stored folded


def test_the_two_foldings_differ_only_in_whitespace():
    text = "  I DON\u2019T\n know \u2018Zeth\u2019  "
    assert fold_quotes(text) == "  i don't\n know 'zeth'  "
    assert fold_quotes_and_spaces(text) == "i don't know 'zeth'"


def test_numbers_drop_thousands_separators_and_keep_order():
    assert numbers("Paid 1,200 then -3.5, total 45,000 in 2021") == ["1200", "-3.5", "45000",
                                                                    "2021"]


def test_rouge_recall_on_handwritten_strings():
    r = rouge_recall("the contract was signed in May", "signed in May")
    assert r["rouge1_recall"] == pytest.approx(3 / 6)
    assert rouge_recall("a b c", "a b c")["rougeL_recall"] == 1.0
    assert rouge_recall("a b c", "x y")["rouge1_recall"] == 0.0
    # Order matters for ROUGE-L but not ROUGE-1.
    r = rouge_recall("one two three four", "four three two one")
    assert r["rouge1_recall"] == 1.0 and r["rougeL_recall"] == 0.25
