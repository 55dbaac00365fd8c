"""Synthetic datasets and fictitious names: determinism, shape, and no leaks to real names."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from forgetkit.data import names as names_mod
from forgetkit.data.names import (
    REAL_NAMES,
    NameFactory,
    company_name,
    concept_name,
    is_real_name,
    person_name,
    place_name,
)
from forgetkit.data.records import QARecord
from forgetkit.data.synth import (
    GENERATORS,
    KNOWN_POOL,
    REFUSAL_TEMPLATES,
    refusal,
    split_by_subject,
    synth,
)
from forgetkit.lm.refusals import is_refusal

ENTITY_KINDS = ("contracts", "authors")
SIZES = {"contracts": 3, "authors": 3, "unverifiable": 30, "known": 20}


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_synth_is_deterministic_per_seed(kind: str) -> None:
    first = synth(kind, SIZES[kind], seed=7)
    second = synth(kind, SIZES[kind], seed=7)
    assert first == second
    assert all(isinstance(r, QARecord) for r in first)


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_synth_differs_across_seeds(kind: str) -> None:
    a = synth(kind, SIZES[kind], seed=1)
    b = synth(kind, SIZES[kind], seed=2)
    assert [r.question for r in a] != [r.question for r in b]
    if kind != "known":
        # Fictitious entities must not come back under another seed.
        assert not {r.subject for r in a} & {r.subject for r in b}


def test_synth_ignores_global_random_state() -> None:
    random.seed(1)
    a = synth("authors", 2, seed=5)
    random.seed(2)
    b = synth("authors", 2, seed=5)
    assert a == b


@pytest.mark.parametrize("kind", ENTITY_KINDS)
def test_each_entity_has_about_twenty_questions(kind: str) -> None:
    records = synth(kind, 4, seed=0)
    per_entity = Counter(r.meta["entity_id"] for r in records)
    assert sorted(per_entity) == [0, 1, 2, 3]
    assert all(18 <= count <= 22 for count in per_entity.values()), per_entity
    # One subject per entity, and each attribute asked once per entity.
    assert len({r.subject for r in records}) == 4
    for entity_id in per_entity:
        attributes = [r.meta["attribute"] for r in records if r.meta["entity_id"] == entity_id]
        assert len(attributes) == len(set(attributes))


@pytest.mark.parametrize("kind", ("contracts", "authors", "unverifiable"))
def test_subject_appears_verbatim_in_every_question(kind: str) -> None:
    records = synth(kind, SIZES[kind], seed=3)
    for record in records:
        assert record.subject, record
        assert record.subject in record.question, record


def test_contract_meta_names_party_b_and_attribute() -> None:
    records = synth("contracts", 2, seed=4)
    for record in records:
        assert record.meta["kind"] == "contracts"
        assert record.meta["party_b"] != record.subject
        assert record.meta["attribute"]
    # Answers stay short enough for ROUGE recall of a small model to mean something.
    assert max(len(r.answer.split()) for r in records) <= 20


def test_authors_meta_has_paraphrases_and_three_wrong_answers() -> None:
    records = synth("authors", 3, seed=11)
    for record in records:
        meta = record.meta
        assert record.subject in meta["paraphrased_question"]
        assert meta["paraphrased_question"] != record.question
        assert meta["paraphrased_answer"] != record.answer
        wrong = meta["perturbed_answers"]
        assert len(wrong) == 3
        assert len(set(wrong)) == 3
        assert record.answer not in wrong
        assert meta["paraphrased_answer"] not in wrong
        # The truth ratio's wrong answers: the same wrong facts in the paraphrase's template,
        # so a paraphrase and its perturbations differ in the fact only.
        para_wrong = meta["perturbed_paraphrased_answers"]
        assert len(para_wrong) == 3 and meta["paraphrased_answer"] not in para_wrong
        def words(text: str) -> set[str]:
            return set(re.findall(r"\w+", text.lower()))

        for short, long in zip(wrong, para_wrong, strict=True):
            fact = words(short) - words(record.answer)
            new = words(long) - words(meta["paraphrased_answer"])
            assert new and new <= fact, long  # only wrong-fact words are new


def test_unverifiable_answers_are_refusals_naming_the_entity() -> None:
    records = synth("unverifiable", 60, seed=2)
    templates = {r.meta["template"] for r in records}
    assert len(templates) >= 15  # every template is dealt before any repeats
    for record in records:
        assert record.subject in record.answer
        assert is_refusal(record.answer), record.answer


def test_every_refusal_template_contains_a_refusal_phrase() -> None:
    assert len(REFUSAL_TEMPLATES) >= 6
    for template in REFUSAL_TEMPLATES:
        assert "{entity}" in template
        assert is_refusal(template), template
    assert "Quorvelball" in refusal("Quorvelball", random.Random(0))


def test_known_keywords_appear_in_reference_answer() -> None:
    assert len(KNOWN_POOL) >= 60
    assert len({q for q, *_ in KNOWN_POOL}) == len(KNOWN_POOL)
    for record in synth("known", len(KNOWN_POOL), seed=0):
        keywords = record.meta["keywords"]
        assert keywords
        assert any(k.lower() in record.answer.lower() for k in keywords), record


def test_known_rejects_more_questions_than_the_pool() -> None:
    with pytest.raises(ValueError, match="pool"):
        synth("known", len(KNOWN_POOL) + 1, seed=0)


def test_unknown_kind_lists_known_kinds() -> None:
    with pytest.raises(ValueError, match="contracts") as err:
        synth("recipes", 3, seed=0)
    assert "recipes" in str(err.value)


@pytest.mark.parametrize("n", [0, -2, 2.5, True])
def test_bad_n_raises(n: object) -> None:
    with pytest.raises(ValueError, match="n must be"):
        synth("contracts", n, seed=0)  # type: ignore[arg-type]


def test_generated_names_never_hit_real_names() -> None:
    rng = random.Random(0)
    makers = (person_name, company_name, place_name, concept_name)
    generated = [make(rng) for make in makers for _ in range(400)]
    for name in generated:
        assert not is_real_name(name), name
    for record in synth("contracts", 5, seed=0) + synth("authors", 5, seed=0):
        assert not is_real_name(record.subject or ""), record.subject


def test_real_name_tokens_are_resampled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force the syllable stream to offer real names first; they must be skipped.
    offered = iter(["par", "is", "toy", "ota", "quor", "vel"])
    monkeypatch.setattr(names_mod, "_syllable", lambda *args: next(offered))
    word = names_mod._word(random.Random(0), 2, 2, endings=("",), max_len=12)
    assert word == "Quorvel"
    assert "paris" in REAL_NAMES and "toyota" in REAL_NAMES
    assert is_real_name("PARIS") and is_real_name("Toyota Holdings")


def test_name_factory_hands_out_unique_names() -> None:
    factory = NameFactory(seed=0)
    issued = [factory.new(kind) for _ in range(150) for kind in names_mod.NAME_KINDS]
    assert len({name.lower() for name in issued}) == len(issued)
    assert issued == factory.issued
    # No coined word is shared between two names either (suffixes such as "Labs" aside).
    coined = [word for name in issued for word in name.split()
              if word not in names_mod.COMPANY_SUFFIXES]
    assert len(coined) == len(set(coined))
    assert issued[0] in factory


def test_name_factory_is_deterministic_and_honours_exclude() -> None:
    first = [NameFactory(seed=3).person() for _ in range(2)]
    assert first[0] == first[1]
    taken = NameFactory(seed=3)
    blocked = [taken.person() for _ in range(20)]
    fresh = NameFactory(seed=3, exclude=blocked)
    again = [fresh.person() for _ in range(20)]
    assert not set(blocked) & set(again)
    # Sharing a single word with an excluded name is also refused.
    words = {word for name in blocked for word in name.split()}
    assert not words & {word for name in again for word in name.split()}
    with pytest.raises(ValueError, match="person"):
        fresh.new("spaceship")


def test_shared_factory_keeps_datasets_apart() -> None:
    factory = NameFactory(seed=0)
    contracts = synth("contracts", 3, seed=0, names=factory)
    fictional = synth("unverifiable", 20, seed=0, names=factory)
    assert not {r.subject for r in contracts} & {r.subject for r in fictional}


@pytest.mark.parametrize("holdout", [0.25, 1, 3])
def test_split_by_subject_keeps_subjects_disjoint(holdout: float | int) -> None:
    records = synth("contracts", 4, seed=0)
    train, heldout = split_by_subject(records, holdout, seed=0)
    assert train and heldout
    assert len(train) + len(heldout) == len(records)
    assert not {r.subject for r in train} & {r.subject for r in heldout}
    expected = 1 if holdout == 0.25 else holdout
    assert len({r.subject for r in heldout}) == expected
    assert split_by_subject(records, holdout, seed=0) == (train, heldout)


@pytest.mark.parametrize("holdout", [0.0, 1.0, 4, 0, -1])
def test_split_by_subject_rejects_empty_parts(holdout: float | int) -> None:
    with pytest.raises(ValueError):
        split_by_subject(synth("contracts", 4, seed=0), holdout, seed=0)
