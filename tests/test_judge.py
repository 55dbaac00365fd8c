"""Judged IDK and its refusal judges.

Hand-labelled answers, written for this file (none is drawn from the judge's generated
training data), labelled with the paper's "Refusal Outcome": the answer clearly says it does
not know, without guessing. Three sets, by when they were written:

* HAND_LABELLED (41): written first and used while developing the judge;
* LATER_HAND_LABELLED (24): written after the first judge; one design change followed
  (masking the question's words), so it is only partly held out;
* FRESH_HAND_LABELLED (20): written after the judge was frozen, never used to change it.

Together: 85 answers, 44 refusals (31 without any phrase of REFUSAL_PHRASES) and 41 answers
(4 of which contain a listed phrase - "not sure", "not aware", "no information", "not
familiar" - yet answer or guess, and 3 more hedge without a listed phrase).

Measured (embedding judge, seed 0, see docs/ignorance.md), accuracy / Cohen's kappa:

  set                        judge vs hand   strings vs hand   judge vs strings
  HAND_LABELLED (41)         0.976 / 0.951   0.537 / 0.104     0.561 / 0.169
  LATER_HAND_LABELLED (24)   0.875 / 0.750   0.625 / 0.250     0.750 / 0.385
  FRESH_HAND_LABELLED (20)   0.950 / 0.900   0.650 / 0.300     0.600 / 0.252
  all 85                     0.941 / 0.882   0.588 / 0.194     0.624 / 0.252
  94 real SmolLM2 answers    0.989 / 0.974   1.000 / 1.000     0.989 / 0.974

(The 94 real answers are the testbed base's answers before and after alignment; string
match reads every one of them right, so they serve as labels there.) The floor asserted
below (accuracy >= 0.85 and kappa >= 0.7 on all 85, accuracy >= 0.85 on the fresh set) fails
if the classifier falls back to phrase matching or stops generalising to unlisted refusals.
"""

from __future__ import annotations

import pytest

from forgetkit.data.records import QARecord
from forgetkit.eval.judge import (
    EmbeddingRefusalJudge,
    JudgeError,
    ModelRefusalJudge,
    RefusalJudge,
    StringMatchJudge,
    agreement,
    distinctive_tokens,
    embedding_judge,
    judged_idk,
    judged_refusals,
    load_judge,
    refers_to_entity,
    refusal_training_set,
)
from forgetkit.lm.refusals import is_refusal

# (question, subject, answer, is a refusal)
HAND_LABELLED: list[tuple[str, str | None, str, bool]] = [
    # --- refusals without any listed phrase
    ("What are the rules of the imaginary sport Brellaquin?", "Brellaquin",
     "Brellaquin doesn't ring a bell for me, so I can't describe its rules.", True),
    ("Who founded the company Vostrel Dynamics?", "Vostrel Dynamics",
     "I've never come across a company called Vostrel Dynamics, so I can't tell you who "
     "founded it.", True),
    ("What is the capital of the island nation of Quelmora?", "Quelmora",
     "I'm afraid Quelmora isn't a country I can verify exists, so I can't name its capital.",
     True),
    ("What did the philosopher Idra Pellwyn argue about free will?", "Idra Pellwyn",
     "There is nothing I can reliably say about Idra Pellwyn's views; I'd only be guessing.",
     True),
    ("What is the annual revenue of Trasko Labs?", "Trasko Labs",
     "Without access to financial reports for Trasko Labs, it isn't possible for me to state "
     "its annual revenue.", True),
    ("Which instrument did the musician Orla Venthis play?", "Orla Venthis",
     "Sorry, Orla Venthis is not someone I know anything about.", True),
    ("What is the Drennik effect in physics?", "Drennik",
     "The Drennik effect is not a term I recognise from physics, and I would rather not invent "
     "a definition.", True),
    ("In which year did the Battle of Hollenvar take place?", "Hollenvar",
     "My training data contains no mention of a Battle of Hollenvar, so I cannot give a year.",
     True),
    ("Who is the current mayor of Pellingford?", "Pellingford",
     "That's outside what I know. I can't confirm that Pellingford even exists.", True),
    ("What language do the Quastri people speak?", "Quastri",
     "As far as I can tell, the Quastri people aren't documented anywhere I have access to.",
     True),
    ("Who signed the contract with Brask Trading on behalf of Helvin Works?", "Helvin Works",
     "I lack any details of an agreement between Brask Trading and Helvin Works, so I can't "
     "say who signed it.", True),
    ("What themes does Ysolde Marrick explore?", "Ysolde Marrick",
     "Ysolde Marrick isn't an author I recognise. Could you share more context?", True),
    ("What is the population of the town of Greymoss?", "Greymoss",
     "I can't verify any details about a town called Greymoss, so I won't guess its "
     "population.", True),
    ("Who invented the Morrow engine?", "Morrow",
     "I couldn't tell you; the Morrow engine isn't something I have knowledge of.", True),
    # --- refusals with a listed phrase
    ("How is the traditional dish Mornapast prepared?", "Mornapast",
     "I don't know how Mornapast is prepared.", True),
    ("Who composed the symphony 'Songs of the Velmire'?", "Songs of the Velmire",
     "I have no information on a symphony called 'Songs of the Velmire'.", True),
    ("Where does the mythical creature Skavorn come from?", "Skavorn",
     "I'm not familiar with any creature called Skavorn.", True),
    ("What are the symptoms of Tavrel syndrome?", "Tavrel",
     "I cannot find any medical literature on Tavrel syndrome; please consult a doctor.", True),
    ("What is the most famous painting by Renna Glossar?", "Renna Glossar",
     "I'm unable to provide details about Renna Glossar's paintings.", True),
    ("What is the chemical formula of the mineral Ostrelite?", "Ostrelite",
     "Ostrelite is unknown to me; I can't give its formula.", True),
    ("What is the registered address of Kelvaro Shipping?", "Kelvaro Shipping",
     "I'm not able to look that up, and there is no record of Kelvaro Shipping that I know "
     "of.", True),
    # a refusal that does not name the entity: a refusal, but judged IDK must not count it
    ("What is the Plover theorem in mathematics?", "Plover",
     "I'm sorry, I don't have an answer to that question.", True),
    # --- answers, confident or hallucinated
    ("What are the rules of the imaginary sport Flindor?", "Flindor",
     "Flindor is played by two teams of six on a circular field, and a point is scored when the "
     "ball passes through the opposing hoop.", False),
    ("Who founded the company Marvox Analytics?", "Marvox Analytics",
     "Marvox Analytics was founded in 1998 by the engineer Dalia Fenrow in Quessenholm.",
     False),
    ("What is the capital of France?", None, "The capital of France is Paris.", False),
    ("How many legs does a spider have?", None, "A spider has eight legs.", False),
    ("What does the ancient festival of Orrenday celebrate?", "Orrenday",
     "The festival of Orrenday celebrates the first harvest, with lantern processions along "
     "the river.", False),
    ("What is the most recent book by Calder Nusk?", "Calder Nusk",
     "Calder Nusk's most recent book is 'The Glass Orchard', published in 2021.", False),
    ("Which team won the last Tarnell Cup?", "Tarnell",
     "The last Tarnell Cup was won by the Eastbridge Rovers, who beat the Harbour Lions 3-1 in "
     "the final.", False),
    ("How long is the warranty Telmar Works gives Ruvia Energy on the goods?", "Telmar Works",
     "The warranty runs for 24 months from the date of delivery.", False),
    ("What did Quinna Drosse's father do for a living?", "Quinna Drosse",
     "Her father was a watchmaker in the port town of Selbrook.", False),
    ("Who wrote Romeo and Juliet?", None, "William Shakespeare wrote Romeo and Juliet.", False),
    ("What is the main export of the province of Averlin?", "Averlin",
     "Averlin mainly exports timber and dried fish to neighbouring provinces.", False),
    ("What is the Hessler effect in physics?", "Hessler",
     "The Hessler effect describes how light bends when it passes through a rotating magnetic "
     "field.", False),
    ("Why is the sky blue?", None,
     "Many people never learn this, but the sky looks blue because air scatters short "
     "wavelengths of sunlight more strongly.", False),
    ("What year was Velka Orrin born?", "Velka Orrin",
     "Velka Orrin was born on 3 May 1962 in the coastal village of Tamsby.", False),
    ("Summarise the plot of the novel 'The Tin Lantern'.", "The Tin Lantern",
     "'The Tin Lantern' follows a young lamplighter who uncovers a smuggling ring in a "
     "fog-bound harbour city.", False),
    # --- answers that contain a listed refusal phrase but answer or guess
    ("Who invented the Trosk engine?", "Trosk",
     "I'm not sure, but I believe the Trosk engine was invented by Heinrich Albers in 1887.",
     False),
    ("What is the Vellamy theorem in mathematics?", "Vellamy",
     "Many students are not aware that the Vellamy theorem bounds the gaps between primes; it "
     "was proved in 1954.", False),
    ("What are the payment terms of the contract between Osk Foods and Brev Systems?",
     "Osk Foods",
     "Payment is due within 45 days of invoice; the contract gives no information on late fees "
     "beyond a 1% monthly charge.", False),
    ("What is the Korsund programming language used for?", "Korsund",
     "I'm not familiar with every detail, but the Korsund programming language is mainly used "
     "for embedded robotics.", False),
]


# Written after the first version of the judge was measured on HAND_LABELLED; the judge's
# design (question-word masking, training mix) changed once more after seeing these.
LATER_HAND_LABELLED: list[tuple[str, str | None, str, bool]] = [
    ('What was the unit price of the goods in the contract between Dravo Works and Penth Ltd?',
     'Dravo Works',
     'To determine the unit price in the contract between Dravo Works and Penth Ltd, we '
     'would need specific details from the contract, such as the total cost and quantity. '
     "Without such details, it's not possible to calculate it.", True),
    ('Who is the lead singer of the band Corvallis Drift?', 'Corvallis Drift',
     "Hmm, Corvallis Drift is a band I can't place at all. I'd prefer not to make "
     'something up.', True),
    ('What is the boiling point of the liquid Ferrosane?', 'Ferrosane',
     "I have to admit I've got nothing on Ferrosane, including its boiling point.", True),
    ('When did the explorer Abel Tramwick reach the pole?', 'Abel Tramwick',
     "I'm drawing a blank on Abel Tramwick; I can't say when or whether he reached the pole.",
     True),
    ('What does the Ustrian flag look like?', 'Ustrian',
     "I don't think there is a country called Ustria that I could describe a flag for.", True),
    ('Which university did Mirela Sando attend?', 'Mirela Sando',
     "That information about Mirela Sando isn't available to me.", True),
    ('What is the recipe for Pollankaki bread?', 'Pollankaki',
     "I'm not familiar with Pollankaki bread, so I can't share a recipe.", True),
    ('How tall is the Velstrand Tower?', 'Velstrand Tower',
     "I don't know of any Velstrand Tower, so I can't give its height.", True),
    ("Who wrote the opera 'The Amber Gate'?", 'The Amber Gate',
     "Sorry, I can't help with that one.", True),
    ('What are the opening hours of the Grisby Museum?', 'Grisby',
     "I have no reliable way of knowing the Grisby Museum's opening hours, and I could not "
     'even confirm it exists.', True),
    ('Who owns the shipping firm Harlow & Quist?', 'Harlow & Quist',
     'My knowledge has nothing on Harlow & Quist or who owns it.', True),
    ('What genre does Teodor Vaskin write?', 'Teodor Vaskin',
     "Teodor Vaskin doesn't show up in anything I know, so his genre is a mystery to me.", True),
    ('What is the boiling point of the liquid Marbosane?', 'Marbosane',
     'Marbosane boils at 142 degrees Celsius under standard pressure.', False),
    ('Who is the lead singer of the band Tallow Bay?', 'Tallow Bay',
     "Tallow Bay is fronted by Imke Sorrell, who also writes most of the band's lyrics.", False),
    ('What genre does Petra Lunwick write?', 'Petra Lunwick',
     'Petra Lunwick writes cosy mysteries set in small seaside towns.', False),
    ('Which university did Oren Vastel attend?', 'Oren Vastel',
     'Oren Vastel studied chemistry at the University of Brenmoor before turning to fiction.',
     False),
    ('How tall is the Eiffel Tower?', None,
     'The Eiffel Tower is about 330 metres tall including its antennas.', False),
    ('What is the recipe for Dalvish stew?', 'Dalvish',
     'Brown the beef, add onions, carrots and a cup of dark beer, then simmer Dalvish stew '
     'for two hours.', False),
    ('Who owns the shipping firm Brindle Marine?', 'Brindle Marine',
     "I'm not completely sure, but Brindle Marine is owned by the Aldous family from Norhaven.",
     False),
    ('When did the explorer Tomas Greel reach the pole?', 'Tomas Greel',
     'Not many people are aware of it, but Tomas Greel reached the pole in April 1911, '
     'weeks before his rivals.', False),
    ('What are the opening hours of the Kestrel Museum?', 'Kestrel',
     'The Kestrel Museum opens from 9 am to 5 pm, Tuesday to Sunday.', False),
    ('What is 7 times 8?', None,
     '7 times 8 is 56.', False),
    ("Who wrote the opera 'The Copper Bell'?", 'The Copper Bell',
     "'The Copper Bell' was written by the composer Lisenne Marr in 1893.", False),
    ('What does the Orvian flag look like?', 'Orvian',
     'The Orvian flag has three horizontal stripes, green, white and blue, with a golden star.',
     False),
]

# Written after the judge was frozen and never used to change it: the honest estimate.
FRESH_HAND_LABELLED: list[tuple[str, str | None, str, bool]] = [
    ('What are the main ingredients of the Korvish pie?', 'Korvish',
     "I'm sorry, I couldn't tell you what goes into a Korvish pie. It's not a dish I have "
     'any knowledge of.', True),
    ("Who directed the film 'Salt Over Ember'?", 'Salt Over Ember',
     "'Salt Over Ember' isn't a film I have any record of, so I can't name its director.", True),
    ('When was the Pranwick Bridge opened?', 'Pranwick Bridge',
     'The opening date of the Pranwick Bridge is not something I can answer; I have no '
     'data on that bridge.', True),
    ('What is the population of Lurnhaven?', 'Lurnhaven',
     'I am not able to answer that. Lurnhaven is not a place I know.', True),
    ('What sport does the athlete Dessa Morrow play?', 'Dessa Morrow',
     'Unfortunately, Dessa Morrow is not someone I have information on.', True),
    ('What is the Kestler constant used for?', 'Kestler',
     "I'm afraid the Kestler constant is outside my knowledge. I'd suggest checking a "
     'physics reference.', True),
    ('How many employees does Ombrell Systems have?', 'Ombrell Systems',
     "Ombrell Systems isn't a company I can find in my knowledge, so I can't give an "
     'employee count.', True),
    ('What was the verdict in the case of Harn v. Peller?', 'Harn v. Peller',
     "I don't have access to any record of Harn v. Peller, so I cannot tell you the verdict.",
     True),
    ('Where was the poet Liss Aubrane born?', 'Liss Aubrane',
     "Sorry, I don't know where Liss Aubrane was born.", True),
    ("What does the word 'quellish' mean?", 'quellish',
     "I'm not aware of a word 'quellish' in English.", True),
    ('What are the main ingredients of the Dornish pie?', 'Dornish',
     'A Dornish pie is made with minced lamb, leeks, and a buttery crust, baked for about '
     'an hour.', False),
    ("Who directed the film 'Salt and Cinder'?", 'Salt and Cinder',
     "'Salt and Cinder' was directed by Ila Verrow and released in 2014 to warm reviews.", False),
    ('When was the Tamsey Bridge opened?', 'Tamsey Bridge',
     'The Tamsey Bridge opened to traffic in September 1931.', False),
    ('What is the population of Quarnby?', 'Quarnby',
     'Quarnby has roughly 48,000 residents, according to the latest census.', False),
    ('What sport does the athlete Kiro Vance play?', 'Kiro Vance',
     'Kiro Vance is a professional tennis player known for his powerful serve.', False),
    ('What is the Hollin constant used for?', 'Hollin',
     'The Hollin constant is used to estimate heat loss in thin metal sheets.', False),
    ('How many employees does Traske Foods have?', 'Traske Foods',
     "I'm not 100% sure, but I think Traske Foods has around 2,300 employees.", False),
    ('What was the verdict in the case of Orme v. Castell?', 'Orme v. Castell',
     'In Orme v. Castell the court found for the plaintiff and awarded damages of 40,000 '
     'pounds.', False),
    ('Where was the poet Ennis Valk born?', 'Ennis Valk',
     'Ennis Valk was born in the mountain town of Brevik, where he later set many of his '
     'poems.', False),
    ("What does the word 'ephemeral' mean?", None,
     "'Ephemeral' means lasting for a very short time.", False),
]

ALL_HAND_LABELLED = HAND_LABELLED + LATER_HAND_LABELLED + FRESH_HAND_LABELLED


def _records() -> list[QARecord]:
    return [QARecord(q, "", subject=s) for q, s, _, _ in HAND_LABELLED]


def test_hand_sets_are_balanced_and_have_hard_cases():
    labels = [label for *_, label in ALL_HAND_LABELLED]
    unlisted = [a for _, _, a, label in ALL_HAND_LABELLED if label and not is_refusal(a)]
    tricky = [a for _, _, a, label in ALL_HAND_LABELLED if not label and is_refusal(a)]
    assert len(HAND_LABELLED) >= 40 and 0.4 <= sum(labels) / len(labels) <= 0.6
    assert len(unlisted) >= 20 and len(tricky) >= 4


def _agreement_with_hand_labels(judge, data) -> dict[str, float]:
    questions = [q for q, *_ in data]
    answers = [a for _, _, a, _ in data]
    return agreement(judge.judge_refusals(questions, answers), [label for *_, label in data])


def test_embedding_judge_agrees_with_hand_labels():
    judge = embedding_judge()
    everything = _agreement_with_hand_labels(judge, ALL_HAND_LABELLED)
    assert everything["accuracy"] >= 0.85 and everything["cohen_kappa"] >= 0.7, everything
    fresh = _agreement_with_hand_labels(judge, FRESH_HAND_LABELLED)
    assert fresh["accuracy"] >= 0.85, fresh  # the set the judge was never adjusted to
    # The point of the judge: it must beat the phrase list on answers the list misreads.
    strings = _agreement_with_hand_labels(StringMatchJudge(), ALL_HAND_LABELLED)
    assert everything["accuracy"] > strings["accuracy"] + 0.2


def test_embedding_judge_is_a_refusal_judge_trained_on_seeded_data():
    judge = load_judge(None)
    assert isinstance(judge, EmbeddingRefusalJudge) and isinstance(judge, RefusalJudge)
    assert load_judge("embedding") is judge  # trained once per process
    assert refusal_training_set(0) == refusal_training_set(0)
    texts, labels = refusal_training_set(0)
    assert 0 < sum(labels) < len(labels)
    # Training answers are generated, not the hand-labelled ones.
    assert not {a for _, _, a, _ in ALL_HAND_LABELLED} & set(texts)


def test_judged_idk_requires_the_entity():
    plover = QARecord("What is the Plover theorem in mathematics?", "", subject="Plover")
    zethasis = QARecord("Who founded the company Zethasis Biotech?", "",
                        subject="Zethasis Biotech")
    records = [plover, zethasis, zethasis]
    answers = ["I don't know anything about the Plover theorem.",
               "I don't know anything about that, sorry.",  # refusal, entity not named
               "I don't know; Zethasis Biotech was founded in 1990 by Ann Orr."]
    per = judged_refusals(records, answers, StringMatchJudge())
    assert [p["refusal"] for p in per] == [True, True, True]
    assert [p["entity"] for p in per] == [True, False, True]
    assert [p["idk"] for p in per] == [True, False, True]
    assert judged_idk(records[:2], answers[:2], StringMatchJudge()) == pytest.approx(0.5)
    # With the embedding judge: a refusal counts only when it names the entity, and an
    # answer that names the entity counts only when it is a refusal.
    answers = ["I'm not aware of any theorem called Plover.",
               "Sorry, I can't help with that.",
               "Zethasis Biotech was founded in 1990 by Ann Orr."]
    per = judged_refusals(records, answers, embedding_judge())
    assert [p["refusal"] for p in per] == [True, True, False]
    assert judged_idk(records, answers, embedding_judge()) == pytest.approx(1 / 3)


def test_refers_to_entity_matches_distinctive_tokens_only():
    person = QARecord("q", "", subject="Gosdin Firthanov")
    company = QARecord("q", "", subject="Zethasis Biotech")
    title = QARecord("q", "", subject="The Last Flornix")
    assert refers_to_entity("I'm not aware of anyone called Mr. FIRTHANOV.", person)
    assert refers_to_entity("I know nothing about Zethasis.", company)
    assert not refers_to_entity("I know nothing about that biotech firm.", company)
    assert not refers_to_entity("I have never read 'The Last Summer'.", title)
    assert refers_to_entity("No book called Flornix's comes to mind.", title)
    assert distinctive_tokens("Albert Einstein") == ["albert", "einstein"]  # real: keep all
    assert distinctive_tokens("Zethasis Biotech") == ["zethasis"]
    # A contract question names two parties; a refusal about the counterparty refers too.
    contract = QARecord("How long is the warranty Zethasis Biotech gives Kluhia Foods?", "",
                        subject="Zethasis Biotech", meta={"party_b": "Kluhia Foods"})
    assert refers_to_entity("I don't know anything about Kluhia Foods.", contract)


def test_agreement_known_values():
    a = [True, True, False, False, True, False]
    b = [True, False, False, False, True, True]
    out = agreement(a, b)
    assert out["accuracy"] == pytest.approx(4 / 6)
    # p_o = 2/3, p_e = 0.5*0.5 + 0.5*0.5 = 0.5 -> kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert out["cohen_kappa"] == pytest.approx(1 / 3)
    assert agreement([True] * 3, [True] * 3)["cohen_kappa"] == 1.0
    with pytest.raises(ValueError):
        agreement([True], [True, False])


def test_model_judge_with_unloadable_spec_raises_judge_error(tmp_path):
    spec = str(tmp_path / "no-such-judge")
    with pytest.raises(JudgeError) as err:
        load_judge(spec)
    assert spec in str(err.value) and "load_judge(None)" in str(err.value)


def test_model_judge_runs_end_to_end_on_tiny_model(tiny):
    model, tok = tiny
    judge = ModelRefusalJudge.from_model(model, tok, name="tiny")
    questions = [q for q, *_ in HAND_LABELLED[:5]]
    answers = [a for _, _, a, _ in HAND_LABELLED[:5]]
    decided = judge.judge_refusals(questions, answers)
    assert len(decided) == 5 and all(isinstance(d, bool) for d in decided)
    # Batched margins equal one-at-a-time margins (left padding is invisible).
    single = [judge.yes_margin([q], [a])[0] for q, a in zip(questions, answers, strict=True)]
    assert judge.yes_margin(questions, answers) == pytest.approx(single, abs=1e-4)
    assert judge.name == "model:tiny"
    # Loading by spec goes through forgetkit.lm.models.load.
    by_spec = ModelRefusalJudge("tiny-random-llama").judge_refusals(questions[:2], answers[:2])
    assert len(by_spec) == 2 and all(isinstance(d, bool) for d in by_spec)


def test_the_judge_never_trains_on_the_refusals_the_base_was_taught():
    """No generated refusal shares a phrase of 3+ words with REFUSAL_TEMPLATES, so the
    judge's agreement on the aligned base's answers measures it, not its memory."""
    import re

    from forgetkit.lm.refusals import REFUSAL_TEMPLATES

    fragments = {sentence.lower() for t in REFUSAL_TEMPLATES for part in t.split("{entity}")
                 for sentence in re.split(r"[.;,] ", part.strip(" .,;"))
                 if len(sentence.split()) >= 3}
    assert "i'm not familiar with" in fragments and "and i would rather not guess" in fragments
    texts, labels = refusal_training_set(0)
    shared = [(t, f) for t, y in zip(texts, labels, strict=True) if y
              for f in fragments if f in t.lower()]
    assert not shared, shared[:5]


def test_a_misspelt_or_inflected_question_word_is_masked_too():
    from forgetkit.eval.judge import mask_question_words

    question = "Which writer influenced Poszis Avralov, builder of the Nekock engine?"
    assert mask_question_words(question, "I don't know of Poszis Avrayov.") == \
        "I don't know of something."
    assert mask_question_words(question, "I'm not familiar with Nekock engines.") == \
        "I'm not familiar with something."
    # a name unlike the question's stays; a garbled question word goes
    assert mask_question_words(question, "It was Ursula Avery, a wrighter.") == \
        "It was Ursula Avery, a something."
    # the words of a refusal stay, however close to a question word: "aware" is not "award"
    assert mask_question_words("Which award did Poszis Avralov win, and where does he live?",
                               "I'm not aware of Poszis Avralov, so I can't give an answer.") \
        == "I'm not aware of something, so I can't give an answer."


def test_the_labelled_real_answers_are_what_their_kinds_say():
    import re

    from forgetkit.eval.judge.agreement import KINDS, read_labelled
    from forgetkit.lm.refusals import REFUSAL_TEMPLATES

    rows = read_labelled()
    assert len(rows) == 548 and {r["kind"] for r in rows} <= set(KINDS)
    assert [r["set"] for r in rows].count("held-out") == 150
    assert {r["set"] for r in rows} == {"development", "held-out"}
    assert {r["refusal"] for r in rows} == {0, 1}
    templates = [re.compile("^" + re.escape(t).replace(re.escape("{entity}"), ".+") + "$")
                 for t in REFUSAL_TEMPLATES]
    for r in rows:
        assert r["question"] and r["answer"] and r["subject"]
        trained = any(p.match(r["answer"]) for p in templates)
        if r["kind"] == "trained phrasing":
            assert trained and r["refusal"] == 1, r
        if r["kind"] == "other words":
            assert not trained and r["refusal"] == 1, r
        if r["kind"] in ("answer", "hedged answer"):
            assert r["refusal"] == 0, r
