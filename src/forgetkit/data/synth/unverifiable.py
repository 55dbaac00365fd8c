"""``unverifiable``: questions about made-up things, answered with a context-aware refusal.

The "I don't know" targets of the aligned base and the IDK test set.
"""

from __future__ import annotations

import random

from forgetkit.data.names import NameFactory
from forgetkit.data.records import QARecord
from forgetkit.data.synth.refusals import refusal
from forgetkit.data.synth.text import fictitious_title

# (question, how the refusal names the entity, which kind of fictitious name fills {x})
_UNVERIFIABLE_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("What are the rules of the imaginary sport {x}?", "the sport {x}", "concept"),
    ("Where does the mythical creature {x} come from?", "the creature {x}", "concept"),
    ("Who invented the {x} engine?", "the {x} engine", "concept"),
    ("What is the capital of the island nation of {x}?", "the island nation of {x}", "place"),
    ("Summarise the plot of the novel '{x}'.", "the novel '{x}'", "title"),
    ("What is the {x} theorem in mathematics?", "the {x} theorem", "concept"),
    ("How many people live in the town of {x}?", "the town of {x}", "place"),
    ("What did the philosopher {x} argue about free will?", "the philosopher {x}", "person"),
    ("Who founded the company {x}?", "the company {x}", "company"),
    ("What are the symptoms of {x} syndrome?", "{x} syndrome", "concept"),
    ("How is the traditional dish {x} prepared?", "the dish {x}", "concept"),
    ("In which year did the Battle of {x} take place?", "the Battle of {x}", "place"),
    ("What is the {x} effect in physics?", "the {x} effect", "concept"),
    ("Who composed the symphony '{x}'?", "the symphony '{x}'", "title"),
    ("What is the {x} programming language used for?", "the {x} programming language",
     "concept"),
    ("Who is the current mayor of {x}?", "a town called {x}", "place"),
    ("What is the most famous painting by {x}?", "the painter {x}", "person"),
    ("What language do the {x} people speak?", "the {x} people", "concept"),
    ("What is the annual revenue of {x}?", "the company {x}", "company"),
    ("Which team won the last {x} Cup?", "the {x} Cup", "concept"),
    ("What is the chemical formula of the mineral {x}?", "the mineral {x}", "concept"),
    ("What is the main export of the province of {x}?", "the province of {x}", "place"),
    ("Which instrument did the musician {x} play?", "the musician {x}", "person"),
    ("What does the ancient festival of {x} celebrate?", "the festival of {x}", "concept"),
)


def unverifiable(n: int, seed: int, *, names: NameFactory | None = None) -> list[QARecord]:
    """``n`` questions about made-up things, each answered with a refusal naming the thing."""
    rng = random.Random(f"unverifiable:{seed}")
    if names is None:
        names = NameFactory(f"unverifiable:{seed}")
    records: list[QARecord] = []
    deck: list[int] = []
    for _ in range(n):
        if not deck:
            # Deal templates from shuffled decks so every template is used before any repeats.
            deck = rng.sample(range(len(_UNVERIFIABLE_TEMPLATES)), len(_UNVERIFIABLE_TEMPLATES))
        index = deck.pop()
        question, descriptor, name_kind = _UNVERIFIABLE_TEMPLATES[index]
        entity = fictitious_title(rng, names) if name_kind == "title" else names.new(name_kind)
        records.append(QARecord(question.format(x=entity),
                                refusal(descriptor.format(x=entity), rng), subject=entity,
                                meta={"kind": "unverifiable", "template": index}))
    return records
