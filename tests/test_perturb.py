import pytest

from forgetkit.data.perturb import entity_perturb, infer_subjects, replace_subject
from forgetkit.data.records import DataError, QARecord
from forgetkit.data.synth import synth


def test_replaces_multi_token_names_everywhere_in_any_case():
    text = "Did Trelvora Dynamics pay? TRELVORA  DYNAMICS said trelvora dynamics's fee was due."
    out = replace_subject(text, "Trelvora Dynamics", "Quenby Labs")
    assert out == "Did Quenby Labs pay? Quenby Labs said Quenby Labs's fee was due."


def test_does_not_replace_inside_longer_words():
    assert replace_subject("Orn and Ornate", "Orn", "X") == "X and Ornate"


def test_one_fixed_copy_per_record_with_the_answer_unchanged():
    records = synth("contracts", 2, seed=3)
    a, b = entity_perturb(records, seed=1), entity_perturb(records, seed=1)
    assert a == b  # fixed: same seed, same copy
    subjects = {r.subject for r in records}
    for orig, pert in zip(records, a, strict=True):
        assert pert.answer == orig.answer
        assert orig.subject not in pert.question and pert.subject in pert.question
        assert pert.subject not in subjects
        assert pert.meta["perturbed_from"] == orig.subject
    # Each copy gets its own fictitious name.
    assert len({p.subject for p in a}) == len(a)


def test_contract_subjects_become_company_names_and_authors_person_names():
    company = entity_perturb(synth("contracts", 1, seed=0)[:1])[0].subject
    person = entity_perturb(synth("authors", 1, seed=0)[:1])[0].subject
    assert len(person.split()) == 2
    assert company.split()[-1][0].isupper() and company != person


def test_missing_subject_is_found_among_the_datasets_subjects():
    records = [QARecord("Who founded Acme Corp?", "Bob", "Acme Corp"),
               QARecord("When did Acme Corp open?", "1990")]
    assert infer_subjects(records)[1].subject == "Acme Corp"


def test_missing_subject_that_cannot_be_found_is_a_clear_error():
    records = [QARecord("Who founded Acme Corp?", "Bob", "Acme Corp"),
               QARecord("When did Borx open?", "1990")]
    with pytest.raises(DataError, match="record 1 .* has no 'subject'"):
        entity_perturb(records)


def test_subject_absent_from_its_question_is_a_clear_error():
    with pytest.raises(DataError, match="never occurs in its question"):
        entity_perturb([QARecord("Who founded it?", "Bob", "Acme Corp")])
