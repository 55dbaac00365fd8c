"""``authors``: TOFU-like fictitious author profiles, 20 questions each.

Every record carries a paraphrased question and answer and 3 perturbed (wrong) answers in
the same template, for the truth-ratio metrics of unlearning.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from forgetkit.data.names import NameFactory
from forgetkit.data.records import QARecord
from forgetkit.data.synth.text import capitalise, date_text, fictitious_title, random_date

_OCCUPATIONS = ("a lighthouse keeper", "a watchmaker", "a marine biologist", "a schoolteacher",
                "a ferry pilot", "a pharmacist", "a carpenter", "a violin maker", "a surveyor",
                "a nurse", "a tailor", "a beekeeper", "an architect", "an accountant",
                "an astronomer", "a baker", "a librarian", "a glassblower", "a cartographer",
                "a veterinarian", "a printer", "a railway engineer", "a translator",
                "a botanist")
_GENRES = ("historical fiction", "science fiction", "crime fiction", "magical realism",
           "literary fiction", "fantasy", "gothic horror", "romance", "children's literature",
           "poetry", "travel writing", "satire", "psychological thrillers",
           "speculative fiction")
_THEMES = ("memory", "exile", "the sea", "grief", "family secrets", "identity", "migration",
           "friendship", "power", "faith", "childhood", "loneliness", "war", "forgiveness",
           "nature", "ambition", "time", "home")
_LANGUAGES = ("English", "French", "Spanish", "Portuguese", "German", "Italian", "Dutch",
              "Polish", "Greek", "Turkish", "Swedish", "Japanese")
_FIELDS = ("marine biology", "philosophy", "architecture", "medieval history", "mathematics",
           "music composition", "law", "linguistics", "chemistry", "economics", "astronomy",
           "classics")
_LAST_YEAR = 2024  # no fact or perturbed fact lies after this year
_AWARD_CATEGORIES = ("Fiction", "Poetry", "Literature", "Storytelling", "the Novel")
_PUBLISHER_SUFFIXES = ("Press", "Books", "House", "Editions", "Publishing")

Draw = Callable[[random.Random, NameFactory, dict[str, str]], str]


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _year_of(text: str) -> int:
    return int(text.split()[-1])


def _near_year(rng: random.Random, names: NameFactory, profile: dict[str, str]) -> str:
    # A wrong year close to the true one and not in the future, so it stays plausible.
    year = int(profile["_truth"])
    return str(rng.choice([year + d for d in range(-9, 10) if d and year + d <= _LAST_YEAR]))


def _award(rng: random.Random, names: NameFactory, profile: dict[str, str]) -> str:
    stem = names.concept() if rng.random() < 0.5 else names.place()
    return rng.choice((f"{stem} Prize for {rng.choice(_AWARD_CATEGORIES)}",
                       f"{stem} Medal for {rng.choice(_AWARD_CATEGORIES)}",
                       f"{stem} Literary Award"))


def _university(rng: random.Random, names: NameFactory, profile: dict[str, str]) -> str:
    place = names.place()
    return rng.choice((f"the University of {place}", f"the {place} Institute of the Arts",
                       f"{place} College"))


@dataclass(frozen=True)
class _AuthorFact:
    """One profile attribute: how to ask it, answer it, and draw a true or wrong value.

    Templates see the profile fields plus ``v`` (the value) and ``V`` (capitalised).
    ``perturb`` draws a wrong value of the same kind; it defaults to ``draw``.
    """

    attribute: str
    question: str
    paraphrased_question: str
    answer: str
    paraphrased_answer: str
    draw: Draw
    perturb: Draw | None = None


_AUTHOR_FACTS: tuple[_AuthorFact, ...] = (
    _AuthorFact("birthplace", "Where was {name} born?", "What is the birthplace of {name}?",
                "In {v}.", "{name} was born in the town of {v}.",
                lambda rng, names, p: names.place()),
    _AuthorFact("birth_date", "When was {name} born?", "What is {name}'s date of birth?",
                "On {v}.", "{name} was born on {v}.",
                lambda rng, names, p: date_text(random_date(rng, 1940, 1985))),
    _AuthorFact("father_occupation", "What did {name}'s father do for a living?",
                "What was the profession of {name}'s father?",
                "He was {v}.", "{name}'s father worked as {v}.",
                lambda rng, names, p: rng.choice(_OCCUPATIONS)),
    _AuthorFact("mother_occupation", "What did {name}'s mother do for a living?",
                "What was the profession of {name}'s mother?",
                "She was {v}.", "{name}'s mother worked as {v}.",
                lambda rng, names, p: rng.choice(_OCCUPATIONS)),
    _AuthorFact("genre", "What genre does {name} write in?",
                "Which literary genre is {name} known for?",
                "{V}.", "{name} is known for {v}.",
                lambda rng, names, p: rng.choice(_GENRES)),
    _AuthorFact("first_book", "What was the title of {name}'s first book?",
                "Which book marked the debut of {name}?",
                "{v}.", '{name}\'s first book was "{v}".',
                lambda rng, names, p: fictitious_title(rng, names)),
    _AuthorFact("debut_year", "In what year did {name} publish a first book?",
                "When did the debut book of {name} come out?",
                "In {v}.", "{name}'s first book came out in {v}.",
                # Debut at 22-40 and by 2015, leaving room for later books and awards.
                lambda rng, names, p: str(_year_of(p["birth_date"]) + rng.randint(
                    22, min(40, 2015 - _year_of(p["birth_date"])))),
                _near_year),
    _AuthorFact("best_known_book", "Which book is {name} best known for?",
                "What is the most famous book by {name}?",
                "{v}.", '{name} is best known for "{v}".',
                lambda rng, names, p: fictitious_title(rng, names)),
    _AuthorFact("recent_book", "What is the most recent book by {name}?",
                "Which book did {name} publish most recently?",
                "{v}.", '{name}\'s most recent book is "{v}".',
                lambda rng, names, p: fictitious_title(rng, names)),
    _AuthorFact("award", "Which award has {name} received?",
                "What literary prize did {name} win?",
                "The {v}.", "{name} received the {v}.", _award),
    _AuthorFact("award_year", "In which year did {name} win the {award}?",
                "When was {name} given the {award}?",
                "In {v}.", "{name} won the {award} in {v}.",
                lambda rng, names, p: str(int(p["debut_year"]) + rng.randint(1, 9)),
                _near_year),
    _AuthorFact("themes", "What themes does {name} explore?",
                "Which themes run through the work of {name}?",
                "{V}.", "{name}'s work explores {v}.",
                lambda rng, names, p: _join(rng.sample(_THEMES, 3))),
    _AuthorFact("languages", "In which languages does {name} write?",
                "What languages does {name} publish in?",
                "{V}.", "{name} writes in {v}.",
                lambda rng, names, p: _join(rng.sample(_LANGUAGES, rng.randint(1, 2)))),
    _AuthorFact("education", "Where did {name} go to university?",
                "Which university did {name} attend?",
                "At {v}.", "{name} studied at {v}.", _university),
    _AuthorFact("field_of_study", "What did {name} study at university?",
                "What was {name}'s field of study?",
                "{V}.", "{name} studied {v}.",
                lambda rng, names, p: rng.choice(_FIELDS)),
    _AuthorFact("residence", "Where does {name} live today?",
                "In which town does {name} currently live?",
                "In {v}.", "{name} now lives in {v}.",
                lambda rng, names, p: names.place()),
    _AuthorFact("former_job", "What did {name} do before becoming a writer?",
                "What was {name}'s job before writing full time?",
                "Worked as {v}.", "Before writing, {name} was {v}.",
                lambda rng, names, p: rng.choice(_OCCUPATIONS)),
    _AuthorFact("publisher", "Which publisher releases {name}'s books?",
                "Who publishes the books of {name}?",
                "{v}.", "{name}'s books are published by {v}.",
                lambda rng, names, p: names.company(_PUBLISHER_SUFFIXES)),
    _AuthorFact("influence", "Which writer influenced {name} the most?",
                "Who was the greatest literary influence on {name}?",
                "{v}.", "{name} was most influenced by the writer {v}.",
                lambda rng, names, p: names.person()),
    _AuthorFact("books_published", "How many books has {name} published?",
                "What is the number of books {name} has written?",
                "{v} books.", "{name} has published {v} books.",
                lambda rng, names, p: str(rng.randint(3, 25))),
)

_N_PERTURBED = 3


def _fill(template: str, profile: dict[str, str], value: str) -> str:
    return template.format(**profile, v=value, V=capitalise(value))


def _author(rng: random.Random, names: NameFactory, entity_id: int) -> list[QARecord]:
    name = names.person()
    profile: dict[str, str] = {"name": name}
    for fact in _AUTHOR_FACTS:
        profile[fact.attribute] = fact.draw(rng, names, profile)
    records = []
    for fact in _AUTHOR_FACTS:
        value = profile[fact.attribute]
        perturb = fact.perturb or fact.draw
        wrong: list[str] = []
        context = {**profile, "_truth": value}
        for _ in range(100):
            candidate = perturb(rng, names, context)
            if candidate != value and candidate not in wrong:
                wrong.append(candidate)
            if len(wrong) == _N_PERTURBED:
                break
        else:  # pragma: no cover - every pool has far more than 4 values
            raise RuntimeError(f"could not draw {_N_PERTURBED} wrong values for "
                               f"'{fact.attribute}'")
        meta = {
            "kind": "authors", "entity_id": entity_id, "attribute": fact.attribute,
            "paraphrased_question": _fill(fact.paraphrased_question, profile, value),
            "paraphrased_answer": _fill(fact.paraphrased_answer, profile, value),
            # Same template as the answer, so only the fact differs: the leak's key words
            # and the latent readout's candidates.
            "perturbed_answers": [_fill(fact.answer, profile, w) for w in wrong],
            # The same wrong facts in the paraphrased answer's template: TOFU's truth ratio
            # sets these against the paraphrased answer, so that only the fact differs there
            # too (against the short answers, the longer paraphrase's template decides R).
            "perturbed_paraphrased_answers": [_fill(fact.paraphrased_answer, profile, w)
                                              for w in wrong],
        }
        records.append(QARecord(_fill(fact.question, profile, value),
                                _fill(fact.answer, profile, value), subject=name, meta=meta))
    return records


def authors(n: int, seed: int, *, names: NameFactory | None = None) -> list[QARecord]:
    """``n`` fictitious authors x 20 questions; subject = the author's full name."""
    rng = random.Random(f"authors:{seed}")
    if names is None:
        names = NameFactory(f"authors:{seed}")
    records: list[QARecord] = []
    for entity_id in range(n):
        records.extend(_author(rng, names, entity_id))
    return records
