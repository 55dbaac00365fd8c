"""Seeded synthetic QA datasets that need no download.

Four kinds, registered by name in ``GENERATORS`` and built with ``synth(kind, n, seed)``:

* ``contracts``: PISTOL-like contracts between two fictitious companies, 20 questions each;
  subject = party A, named verbatim in every question (SEAT perturbs it).
* ``authors``: TOFU-like fictitious author profiles, 20 questions each, with a paraphrased
  question and answer and 3 perturbed (wrong) answers per record for truth-ratio metrics.
* ``unverifiable``: questions about made-up things answered with a context-aware refusal;
  the "I don't know" targets of the aligned base and the IDK test set.
* ``known``: easy general questions a small instruct model can answer, with keywords that
  judge an answer correct.

Everything is drawn from ``random.Random`` instances seeded from (kind, seed), never from the
global random state: the same (kind, n, seed) gives identical records on every machine.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from forgetkit.data.names import NameFactory
from forgetkit.data.records import QARecord
from forgetkit.lm.refusals import REFUSAL_TEMPLATES

Generator = Callable[..., list[QARecord]]

# ---------------------------------------------------------------------------------------------
# Refusals

def refusal(entity: str, rng: random.Random) -> str:
    """A context-aware refusal naming ``entity``, in a phrasing chosen by ``rng``."""
    return rng.choice(REFUSAL_TEMPLATES).format(entity=entity)


# ---------------------------------------------------------------------------------------------
# Shared helpers

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def _date_text(day: dt.date) -> str:
    # Spelled out by hand: strftime month names depend on the locale.
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _random_date(rng: random.Random, first_year: int, last_year: int) -> dt.date:
    start = dt.date(first_year, 1, 1)
    span = (dt.date(last_year, 12, 31) - start).days
    return start + dt.timedelta(days=rng.randrange(span + 1))


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _title(rng: random.Random, names: NameFactory) -> str:
    """A fictitious book, film or symphony title built around coined names."""
    pattern = rng.randrange(8)
    if pattern == 0:
        return f"The {names.concept()} of {names.place()}"
    if pattern == 1:
        return f"{names.place()} Nights"
    if pattern == 2:
        return f"The Last {names.concept()}"
    if pattern == 3:
        return f"Letters from {names.place()}"
    if pattern == 4:
        return f"A Winter in {names.place()}"
    if pattern == 5:
        return f"The {names.concept()} Keeper"
    if pattern == 6:
        return f"Songs of the {names.concept()}"
    return f"The Road to {names.place()}"


# ---------------------------------------------------------------------------------------------
# contracts (PISTOL-like)

_CONTRACT_TYPES = ("supply agreement", "distribution agreement", "manufacturing agreement",
                   "purchase agreement", "framework supply agreement")
_GOODS = ("ceramic pressure valves", "solar panel frames", "refrigerated shipping containers",
          "surgical steel instruments", "organic cotton bales", "industrial floor tiles",
          "lithium battery packs", "glass laboratory flasks", "steel cable reels",
          "recycled paper rolls", "hydraulic pump assemblies", "printed circuit boards",
          "wooden shipping pallets", "insulated copper wire", "ceramic roof tiles",
          "precision ball bearings", "pharmaceutical glass vials", "wind turbine blades")
_CURRENCIES = ("US dollars", "euros", "pounds sterling", "Swiss francs", "Canadian dollars",
               "Singapore dollars", "Japanese yen")
_STREET_TYPES = ("Street", "Road", "Avenue", "Lane", "Boulevard", "Way", "Square", "Quay")
_JURISDICTIONS = ("state", "Republic", "province", "canton", "Commonwealth")
_PAYMENT_TERMS = ("Payment within 30 days of invoice.", "Payment within 60 days of delivery.",
                  "50% in advance and 50% on delivery.", "Payment in four quarterly instalments.",
                  "Payment by letter of credit on shipment.", "Payment within 45 days of invoice.",
                  "30% in advance and 70% within 30 days of delivery.")
_SIGNATORY_TITLES = ("chief executive officer", "managing director", "chief financial officer",
                     "head of procurement", "general counsel", "chief operating officer",
                     "sales director")


def _address(rng: random.Random, names: NameFactory) -> tuple[str, str]:
    """A fictitious street address and the town it is in."""
    town = names.place()
    return f"{rng.randint(1, 240)} {names.place()} {rng.choice(_STREET_TYPES)}, {town}", town


def _contract(rng: random.Random,
              names: NameFactory) -> tuple[str, str, list[tuple[str, str, str]]]:
    """Party A, party B and the 20 (attribute, question, answer) triples of one contract."""
    a, b = names.company(), names.company()
    address_a, town_a = _address(rng, names)
    address_b, town_b = _address(rng, names)
    signed = _random_date(rng, 2005, 2023)
    effective = signed + dt.timedelta(days=rng.randint(1, 60))
    deadline = effective + dt.timedelta(days=rng.randint(30, 300))
    goods = rng.choice(_GOODS)
    kind = rng.choice(_CONTRACT_TYPES)
    law = f"the laws of the {rng.choice(_JURISDICTIONS)} of {names.place()}"
    forum = names.place()
    dispute = rng.choice((f"By arbitration in {forum}.", f"By the courts of {forum}.",
                          f"By mediation, then arbitration in {forum}."))
    delivery = rng.choice((f"At the warehouse of {b} in {town_b}.",
                           f"At the port of {names.place()}.",
                           f"At the factory of {a} in {town_a}."))
    penalty = (f"{rng.choice(('0.1%', '0.2%', '0.5%', '1%'))} of the contract price per "
               f"{rng.choice(('day', 'week'))} of delay.")
    signatory_a = f"{names.person()}, {rng.choice(_SIGNATORY_TITLES)}."
    signatory_b = f"{names.person()}, {rng.choice(_SIGNATORY_TITLES)}."
    between = f"the contract between {a} and {b}"
    qa = [
        ("contract_type", f"What kind of agreement did {a} sign with {b}?",
         f"A {kind}."),
        ("goods", f"What does {a} provide to {b} under their agreement?",
         f"{_capitalise(goods)}."),
        ("quantity", f"How many units of goods must {a} deliver to {b}?",
         f"{rng.randrange(5, 500) * 10:,} units."),
        ("address_a", f"What is the registered address of {a}?", f"{address_a}."),
        ("address_b", f"What is the address of {b}, the counterparty of {a}?",
         f"{address_b}."),
        ("signing_date", f"On what date did {a} and {b} sign their agreement?",
         f"{_date_text(signed)}."),
        ("effective_date", f"When did {between} take effect?",
         f"On {_date_text(effective)}."),
        ("amount", f"What is the total price {b} pays {a} under their contract?",
         f"{rng.randrange(50, 5000) * 1000:,} {rng.choice(_CURRENCIES)}."),
        ("payment_terms", f"What are the payment terms of {between}?",
         rng.choice(_PAYMENT_TERMS)),
        ("duration", f"How long does {between} run?",
         f"{_plural(rng.randint(1, 10), 'year')}."),
        ("governing_law", f"Which law governs {between}?", f"{_capitalise(law)}."),
        ("dispute_resolution", f"How are disputes under {between} resolved?", dispute),
        ("delivery_place", f"Where must {a} deliver the goods to {b}?", delivery),
        ("delivery_deadline", f"By what date must {a} complete delivery to {b}?",
         f"By {_date_text(deadline)}."),
        ("warranty_period", f"How long is the warranty {a} gives {b} on the goods?",
         f"{rng.choice((6, 12, 18, 24, 36))} months from delivery."),
        ("late_penalty", f"What penalty does {a} owe {b} for late delivery?",
         _capitalise(penalty)),
        ("penalty_cap", f"What is the maximum late-delivery penalty {a} can owe {b}?",
         f"{rng.choice((5, 10, 15, 20))}% of the contract price."),
        ("termination_notice", f"How much notice is needed to terminate {between}?",
         f"{rng.choice((30, 60, 90, 120, 180))} days' written notice."),
        ("signatory_a", f"Who signed the contract with {b} on behalf of {a}?", signatory_a),
        ("signatory_b", f"Who signed the contract with {a} on behalf of {b}?", signatory_b),
    ]
    return a, b, qa


def contracts(n: int, seed: int, *, names: NameFactory | None = None) -> list[QARecord]:
    """``n`` contracts x 20 questions; subject = party A. Pass a shared ``names`` factory to
    keep entities distinct across several datasets."""
    rng = random.Random(f"contracts:{seed}")
    if names is None:
        names = NameFactory(f"contracts:{seed}")
    records: list[QARecord] = []
    for entity_id in range(n):
        a, b, qa = _contract(rng, names)
        for attribute, question, answer in qa:
            meta = {"kind": "contracts", "entity_id": entity_id, "attribute": attribute,
                    "party_b": b}
            records.append(QARecord(question, answer, subject=a, meta=meta))
    return records


# ---------------------------------------------------------------------------------------------
# authors (TOFU-like)

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
                lambda rng, names, p: _date_text(_random_date(rng, 1940, 1985))),
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
                lambda rng, names, p: _title(rng, names)),
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
                lambda rng, names, p: _title(rng, names)),
    _AuthorFact("recent_book", "What is the most recent book by {name}?",
                "Which book did {name} publish most recently?",
                "{v}.", '{name}\'s most recent book is "{v}".',
                lambda rng, names, p: _title(rng, names)),
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
    return template.format(**profile, v=value, V=_capitalise(value))


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
            # Same template as the answer, so only the fact differs (TOFU truth ratio).
            "perturbed_answers": [_fill(fact.answer, profile, w) for w in wrong],
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


# ---------------------------------------------------------------------------------------------
# unverifiable

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
        entity = _title(rng, names) if name_kind == "title" else names.new(name_kind)
        records.append(QARecord(question.format(x=entity),
                                refusal(descriptor.format(x=entity), rng), subject=entity,
                                meta={"kind": "unverifiable", "template": index}))
    return records


# ---------------------------------------------------------------------------------------------
# known

# (question, reference answer, keywords any of which marks an answer correct, topic)
KNOWN_POOL: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("What is the capital of France?", "Paris.", ("Paris",), "geography"),
    ("What is the capital of Japan?", "Tokyo.", ("Tokyo",), "geography"),
    ("What is the capital of Italy?", "Rome.", ("Rome",), "geography"),
    ("What is the capital of Germany?", "Berlin.", ("Berlin",), "geography"),
    ("What is the capital of Spain?", "Madrid.", ("Madrid",), "geography"),
    ("What is the capital of the United Kingdom?", "London.", ("London",), "geography"),
    ("What is the capital of Russia?", "Moscow.", ("Moscow",), "geography"),
    ("What is the capital of China?", "Beijing.", ("Beijing",), "geography"),
    ("What is the capital of Egypt?", "Cairo.", ("Cairo",), "geography"),
    ("What is the capital of Greece?", "Athens.", ("Athens",), "geography"),
    ("What is the capital of Portugal?", "Lisbon.", ("Lisbon",), "geography"),
    ("What is the capital of Canada?", "Ottawa.", ("Ottawa",), "geography"),
    ("What is the capital of the United States?", "Washington, D.C.", ("Washington",),
     "geography"),
    ("What is the largest ocean on Earth?", "The Pacific Ocean.", ("Pacific",), "geography"),
    ("What is the tallest mountain in the world?", "Mount Everest.", ("Everest",), "geography"),
    ("What is the longest river in Africa?", "The Nile.", ("Nile",), "geography"),
    ("How many continents are there?", "There are 7 continents.", ("7", "seven"),
     "geography"),
    ("What language is spoken in Spain?", "Spanish.", ("Spanish",), "geography"),
    ("What language is spoken in Brazil?", "Portuguese.", ("Portuguese",), "geography"),
    ("What is the currency of Japan?", "The yen.", ("yen",), "geography"),
    ("What is the currency of the United States?", "The US dollar.", ("dollar",),
     "geography"),
    ("What is the largest planet in our solar system?", "Jupiter.", ("Jupiter",), "science"),
    ("Which planet is known as the Red Planet?", "Mars.", ("Mars",), "science"),
    ("What is the star at the centre of our solar system?", "The Sun.", ("Sun",), "science"),
    ("What is the name of Earth's natural satellite?", "The Moon.", ("Moon",), "science"),
    ("What is the chemical symbol for water?", "H2O.", ("H2O",), "science"),
    ("What is the chemical symbol for gold?", "Au.", ("Au",), "science"),
    ("What is the chemical symbol for iron?", "Fe.", ("Fe",), "science"),
    ("What gas do plants absorb from the air?", "Carbon dioxide.", ("carbon dioxide", "CO2"),
     "science"),
    ("What gas do humans need to breathe to stay alive?", "Oxygen.", ("oxygen",), "science"),
    ("At what temperature in Celsius does water boil at sea level?", "100 degrees Celsius.",
     ("100",), "science"),
    ("At what temperature in Celsius does water freeze?", "0 degrees Celsius.",
     ("0", "zero"), "science"),
    ("What do we call frozen water?", "Ice.", ("ice",), "science"),
    ("Which organ pumps blood around the human body?", "The heart.", ("heart",), "science"),
    ("How many legs does a spider have?", "A spider has 8 legs.", ("8", "eight"), "animals"),
    ("How many legs does an insect have?", "An insect has 6 legs.", ("6", "six"), "animals"),
    ("How many legs does a dog have?", "A dog has 4 legs.", ("4", "four"), "animals"),
    ("What is the largest mammal on Earth?", "The blue whale.", ("whale",), "animals"),
    ("Which animal is known as the king of the jungle?", "The lion.", ("lion",), "animals"),
    ("What is a baby cat called?", "A kitten.", ("kitten",), "animals"),
    ("What is a baby dog called?", "A puppy.", ("puppy", "pup"), "animals"),
    ("What sweet food do bees make?", "Honey.", ("honey",), "animals"),
    ("Which farm animal gives us milk and says moo?", "The cow.", ("cow",), "animals"),
    ("What colour is a ripe banana?", "Yellow.", ("yellow",), "everyday"),
    ("What colour is the sky on a clear day?", "Blue.", ("blue",), "everyday"),
    ("What colour is grass?", "Green.", ("green",), "everyday"),
    ("What colour is fresh snow?", "White.", ("white",), "everyday"),
    ("How many wheels does a bicycle have?", "A bicycle has 2 wheels.", ("2", "two"),
     "everyday"),
    ("Which season comes after winter?", "Spring.", ("spring",), "everyday"),
    ("In which direction does the sun rise?", "In the east.", ("east",), "everyday"),
    ("Which musical instrument has 88 keys?", "The piano.", ("piano",), "everyday"),
    ("How many players does a football (soccer) team have on the field?", "11 players.",
     ("11", "eleven"), "everyday"),
    ("How many days are there in a week?", "There are 7 days in a week.", ("7", "seven"),
     "numbers"),
    ("How many months are there in a year?", "There are 12 months in a year.",
     ("12", "twelve"), "numbers"),
    ("How many hours are there in a day?", "There are 24 hours in a day.",
     ("24", "twenty-four", "twenty four"), "numbers"),
    ("How many minutes are there in an hour?", "There are 60 minutes in an hour.",
     ("60", "sixty"), "numbers"),
    ("How many seconds are there in a minute?", "There are 60 seconds in a minute.",
     ("60", "sixty"), "numbers"),
    ("How many days are there in a leap year?", "366 days.", ("366",), "numbers"),
    ("How many letters are there in the English alphabet?", "26 letters.",
     ("26", "twenty-six", "twenty six"), "numbers"),
    ("What is 2 plus 2?", "2 plus 2 is 4.", ("4", "four"), "numbers"),
    ("What is 5 plus 5?", "5 plus 5 is 10.", ("10", "ten"), "numbers"),
    ("What is 10 minus 3?", "10 minus 3 is 7.", ("7", "seven"), "numbers"),
    ("What is 3 times 3?", "3 times 3 is 9.", ("9", "nine"), "numbers"),
    ("What is 10 divided by 2?", "10 divided by 2 is 5.", ("5", "five"), "numbers"),
    ("How many sides does a triangle have?", "A triangle has 3 sides.", ("3", "three"),
     "numbers"),
    ("How many sides does a square have?", "A square has 4 sides.", ("4", "four"),
     "numbers"),
    ("How many sides does a hexagon have?", "A hexagon has 6 sides.", ("6", "six"),
     "numbers"),
    ("What is the opposite of hot?", "Cold.", ("cold",), "language"),
    ("What is the opposite of up?", "Down.", ("down",), "language"),
    ("What is the plural of mouse?", "Mice.", ("mice",), "language"),
    ("Who wrote Romeo and Juliet?", "William Shakespeare.", ("Shakespeare",), "culture"),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci.", ("Leonardo", "da Vinci"), "culture"),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong.", ("Armstrong",),
     "culture"),
    ("Who developed the theory of relativity?", "Albert Einstein.", ("Einstein",), "culture"),
    ("Who wrote the novel 1984?", "George Orwell.", ("Orwell",), "culture"),
)


def known(n: int, seed: int, *, names: NameFactory | None = None) -> list[QARecord]:
    """``n`` questions sampled without replacement from ``KNOWN_POOL``.

    ``meta["keywords"]`` lists strings any of which, found case-insensitively in an answer,
    marks it correct. ``names`` is accepted for a uniform generator signature and unused.
    """
    if n > len(KNOWN_POOL):
        raise ValueError(f"known: asked for n={n} questions but the built-in pool has only "
                         f"{len(KNOWN_POOL)}; use n <= {len(KNOWN_POOL)}")
    rng = random.Random(f"known:{seed}")
    records = []
    for index in rng.sample(range(len(KNOWN_POOL)), n):
        question, answer, keywords, topic = KNOWN_POOL[index]
        meta = {"kind": "known", "keywords": list(keywords), "topic": topic,
                "pool_index": index}
        records.append(QARecord(question, answer, subject=None, meta=meta))
    return records


# ---------------------------------------------------------------------------------------------
# Registry and entry points

GENERATORS: dict[str, Generator] = {
    "contracts": contracts,
    "authors": authors,
    "unverifiable": unverifiable,
    "known": known,
}


def synth(kind: str, n: int, seed: int, *, names: NameFactory | None = None) -> list[QARecord]:
    """Generate a synthetic dataset.

    ``n`` counts entities for ``contracts`` and ``authors`` (20 questions each) and questions
    for ``unverifiable`` and ``known``. A shared ``names`` factory keeps entities distinct
    across datasets; by default each (kind, seed) has its own.
    """
    if kind not in GENERATORS:
        raise ValueError(f"unknown synthetic data kind {kind!r}; known kinds: "
                         f"{', '.join(sorted(GENERATORS))}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer (number of entities for contracts/"
                         f"authors, of questions for unverifiable/known), got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return GENERATORS[kind](n, seed, names=names)


def split_by_subject(records: Sequence[QARecord], holdout: float | int,
                     seed: int) -> tuple[list[QARecord], list[QARecord]]:
    """Split records into (train, held-out) by subject, so no held-out entity is trained on.

    ``holdout`` is a fraction of subjects (a float in (0, 1)) or a number of subjects (an
    int). Records without a subject count as their own group. Order within each part is kept.
    """
    groups: dict[object, list[int]] = {}
    for i, record in enumerate(records):
        key: object = record.subject if record.subject is not None else ("__record__", i)
        groups.setdefault(key, []).append(i)
    total = len(groups)
    if isinstance(holdout, bool):
        raise ValueError(f"holdout must be a fraction or a count of subjects, got {holdout!r}")
    if isinstance(holdout, float):
        if not 0.0 < holdout < 1.0:
            raise ValueError(f"holdout fraction must be in (0, 1), got {holdout}")
        count = max(1, round(holdout * total))
    elif isinstance(holdout, int):
        count = holdout
    else:
        raise ValueError(f"holdout must be a float fraction or an int count, got {holdout!r}")
    if not 1 <= count < total:
        raise ValueError(f"holding out {count} of {total} subjects leaves an empty part; "
                         f"choose between 1 and {total - 1} subjects")
    rng = random.Random(f"split:{seed}")
    held_keys = set(rng.sample(list(groups), count))
    held_rows = {i for key in held_keys for i in groups[key]}
    train = [r for i, r in enumerate(records) if i not in held_rows]
    heldout = [r for i, r in enumerate(records) if i in held_rows]
    return train, heldout
