"""Pronounceable fictitious names for the synthetic benchmarks.

Names are built from syllables (onset + vowel + coda) so that a tokenizer splits them like
ordinary words rather than into random characters. Every coined word is checked, ignoring
case, against ``REAL_NAMES`` and resampled on a hit, so a "fictitious" entity never points at
something the model may already know (a person, city, country or company).

Module functions draw one name from a ``random.Random``; ``NameFactory`` hands out names that
are unique within the factory and share no coined word with each other or with an
``exclude`` set, which is how datasets (and SEAT's entity perturbation) avoid collisions.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence

from forgetkit.errors import UserError

# Common real first names, surnames, cities, countries and companies (lower case, one word
# each: multi-word names contribute their distinctive words, e.g. "york", "kong").
REAL_NAMES: frozenset[str] = frozenset("""
    james john robert michael william david richard joseph thomas charles christopher daniel
    matthew anthony mark paul steven andrew kevin brian george edward ronald timothy jason
    mary patricia jennifer linda elizabeth barbara susan jessica sarah karen nancy lisa
    margaret betty sandra ashley emily donna michelle dorothy carol amanda melissa deborah
    maria anna emma olivia sophia isabella mia amelia ava charlotte laura elena nina julia
    lucas noah liam ethan oliver henry leo max sam ali omar ahmed mohammed muhammad fatima
    aisha priya raj arjun wei li ming hiroshi yuki kenji akira carlos jose luis juan miguel
    pablo diego ivan olga dmitri natasha pierre marie jean claude hans fritz klaus giulia
    marco luca giovanni francesca sofia alexander victor simon peter martin adam eva clara
    smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez
    gonzalez wilson anderson taylor moore jackson white harris clark lewis walker hall young
    allen king wright scott green baker adams nelson hill campbell mitchell roberts carter
    wang zhang chen liu yang huang zhao kim park choi nguyen tran muller schmidt schneider
    fischer weber meyer wagner becker rossi russo ferrari esposito bianchi romano silva
    santos ferreira pereira oliveira kowalski nowak ivanov petrov smirnov tanaka sato suzuki
    takahashi watanabe singh kumar sharma patel gupta dubois bernard durand leroy moreau
    novak hansen larsen jensen nielsen andersson johansson karlsson
    london paris berlin rome madrid tokyo beijing moscow cairo lagos lima delhi mumbai sydney
    toronto chicago boston dallas denver seattle austin houston vienna prague warsaw oslo
    lisbon dublin athens milan naples venice florence munich hamburg zurich geneva brussels
    amsterdam seoul osaka kyoto bangkok manila jakarta nairobi dakar havana quito bogota
    santiago montreal vancouver melbourne auckland lyon marseille porto seville valencia
    sofia riga tallinn vilnius kyiv kiev minsk helsinki stockholm copenhagen bergen tunis
    accra kampala lusaka harare durban perth adelaide oxford cambridge bristol leeds york
    orlando phoenix atlanta miami reno tulsa toledo verona parma bologna genoa turin padua
    pisa siena dresden leipzig bonn cologne essen bremen graz linz salzburg basel bern
    lucerne lugano nice cannes toulouse bordeaux nantes rennes lille ghent bruges antwerp
    utrecht leiden delft malaga granada bilbao cordoba coimbra braga faro shanghai karachi
    dhaka istanbul tehran baghdad riyadh dubai hanoi taipei singapore kolkata chennai
    bangalore hong kong angeles francisco vegas orleans
    france germany italy spain japan china india brazil canada mexico russia egypt kenya
    nigeria peru chile cuba iran iraq israel turkey greece poland sweden norway finland
    denmark ireland portugal austria belgium hungary romania bulgaria serbia croatia albania
    latvia estonia lithuania ukraine georgia armenia jordan oman qatar yemen sudan mali
    niger chad ghana togo benin gabon congo angola zambia malawi uganda rwanda somalia libya
    tunisia algeria morocco nepal bhutan laos vietnam korea tonga samoa fiji malta cyprus
    monaco panama belize haiti bolivia uruguay paraguay ecuador colombia venezuela guyana
    suriname australia zealand argentina pakistan bangladesh indonesia thailand malaysia
    philippines mongolia syria lebanon ethiopia tanzania namibia botswana iceland
    switzerland netherlands slovakia slovenia moldova kosovo
    apple google alphabet microsoft amazon meta facebook tesla nvidia intel samsung sony
    toyota honda nissan siemens bosch nestle unilever shell exxon chevron boeing airbus
    pfizer novartis roche bayer oracle cisco adobe netflix disney nike adidas puma ikea lego
    nokia ericsson philips volvo fiat renault peugeot danone heineken visa paypal uber lyft
    airbnb spotify zara gucci prada rolex canon nikon panasonic hitachi yamaha mazda subaru
    kia hyundai lenovo huawei xiaomi alibaba tencent baidu infosys tata walmart target
    costco pepsi pepsico coca cola starbucks kodak xerox dell vodafone orange aramco
    anthropic openai qualcomm mattel hasbro nintendo sega atari ibm hp porsche audi bmw
    mercedes benz ford chrysler dodge
""".split())

# Substrings a generated word must not contain, so a coined name never reads as a slur.
_UNSEEMLY = ("fuck", "shit", "cunt", "nigg", "fag", "rape", "nazi", "piss", "cock", "dick",
             "slut", "whore", "porn", "anus", "penis", "sex", "kill", "dead")

_SIMPLE_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
                  "qu", "th", "sh")
_CLUSTER_ONSETS = ("br", "dr", "fl", "fr", "gl", "gr", "kl", "kr", "pl", "pr", "sk", "st", "tr",
                   "vr")
# Plain vowels weighted by how common they are in names; diphthongs kept rare.
_VOWELS = ("a",) * 5 + ("e",) * 5 + ("o",) * 4 + ("i",) * 3 + ("u",) * 2 + ("ai", "ei", "ou")
_MEDIAL_CODAS = ("l", "r", "n", "s", "m")
_FINAL_CODAS = ("n", "r", "l", "s", "m", "th", "rn", "st", "k", "nd", "rd", "x")

_FIRST_NAME_ENDINGS = ("", "", "", "a", "o", "el", "ar", "in", "ia", "en", "is")
_SURNAME_ENDINGS = ("", "", "", "e", "ane", "ov", "ell", "ard", "ine", "ak")
_STEM_ENDINGS = ("", "", "a", "on", "ex", "ia", "is", "ora")
_PLACE_ENDINGS = ("", "", "", "ford", "wick", "haven", "dale", "mere", "holm", "vale", "moor",
                  "stead", "port", "ovo", "enne", "ara", "heim")
_CONCEPT_ENDINGS = ("", "", "", "ball", "ix", "ium", "ette", "ock", "an", "ane")

COMPANY_SUFFIXES: tuple[str, ...] = (
    "Holdings", "Labs", "Logistics", "Partners", "Dynamics", "Industries", "Systems", "Group",
    "Technologies", "Manufacturing", "Trading", "Works", "Analytics", "Foods", "Materials",
    "Energy", "Robotics", "Textiles", "Biotech", "Shipping",
)

# Spelling that is hard to say: 4+ consonants or 3+ vowels in a row, a tripled letter,
# doubled a/i/u, "quu".
_UNPRONOUNCEABLE = re.compile(r"[^aeiou]{4,}|[aeiou]{3,}|(.)\1\1|aa|ii|uu|quu")
_MAX_TRIES = 10_000

NameMaker = Callable[[random.Random], tuple[str, tuple[str, ...]]]


def _syllable(rng: random.Random, first: bool, last: bool, after_consonant: bool) -> str:
    if first and rng.random() < 0.15:
        onset = ""  # a few names start with a vowel (Orvane, Ilsemar)
    elif not after_consonant and rng.random() < 0.2:
        onset = rng.choice(_CLUSTER_ONSETS)  # clusters only after a vowel, to stay sayable
    else:
        onset = rng.choice(_SIMPLE_ONSETS)
    vowel = rng.choice(_VOWELS)
    if last:
        coda = rng.choice(_FINAL_CODAS) if rng.random() < 0.6 else ""
    else:
        coda = rng.choice(_MEDIAL_CODAS) if rng.random() < 0.3 else ""
    return onset + vowel + coda


def _word(rng: random.Random, min_syllables: int, max_syllables: int,
          endings: Sequence[str] = ("",), max_len: int = 12) -> str:
    """One capitalised pronounceable word that is not a real name."""
    for _ in range(_MAX_TRIES):
        counts = range(min_syllables, max_syllables + 1)
        # Shorter names are likelier: long coined names read as noise.
        count = rng.choices(counts, weights=[2.0 ** -i for i in range(len(counts))])[0]
        ending = rng.choice(endings)
        if count == 1 and not ending:
            continue  # a bare one-syllable word is too likely to be a real English word
        parts: list[str] = []
        for i in range(count):
            after_consonant = bool(parts) and parts[-1][-1] not in "aeiou"
            parts.append(_syllable(rng, i == 0, i == count - 1, after_consonant))
        word = "".join(parts)
        if ending[:1] in ("a", "e", "i", "o", "u"):
            word = word.rstrip("aeiou")  # "Bome" + "ell" -> "Bomell", not "Bomeell"
        word += ending
        if not 4 <= len(word) <= max_len or _UNPRONOUNCEABLE.search(word):
            continue
        if word in REAL_NAMES or any(bad in word for bad in _UNSEEMLY):
            continue
        return word.capitalize()
    raise RuntimeError("could not generate a pronounceable fictitious word; "
                       "the syllable inventory is too constrained")


def _person(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    first = _word(rng, 2, 3, _FIRST_NAME_ENDINGS, max_len=8)
    last = _word(rng, 2, 3, _SURNAME_ENDINGS, max_len=10)
    return f"{first} {last}", (first, last)


def _company(rng: random.Random,
             suffixes: Sequence[str] | None = None) -> tuple[str, tuple[str, ...]]:
    stem = _word(rng, 2, 3, _STEM_ENDINGS, max_len=10)
    return f"{stem} {rng.choice(suffixes or COMPANY_SUFFIXES)}", (stem,)


def _place(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    # Two-syllable stems keep "-ford"/"-wick" names away from real English towns.
    place = _word(rng, 2, 3, _PLACE_ENDINGS, max_len=12)
    return place, (place,)


def _concept(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    concept = _word(rng, 1, 3, _CONCEPT_ENDINGS, max_len=11)
    return concept, (concept,)


def person_name(rng: random.Random) -> str:
    """A fictitious first and last name, e.g. "Velimar Quostrane"."""
    return _person(rng)[0]


def company_name(rng: random.Random, suffixes: Sequence[str] | None = None) -> str:
    """A fictitious company: coined stem + business suffix, e.g. "Trelvora Dynamics"."""
    return _company(rng, suffixes)[0]


def place_name(rng: random.Random) -> str:
    """A fictitious town, e.g. "Brantasse" or "Quorvelmere"."""
    return _place(rng)[0]


def concept_name(rng: random.Random) -> str:
    """A single coined word for a made-up thing, e.g. "Flornball"."""
    return _concept(rng)[0]


def is_real_name(name: str) -> bool:
    """True if ``name`` or any of its words is in ``REAL_NAMES`` (ignoring case)."""
    lowered = name.lower()
    return lowered in REAL_NAMES or any(tok in REAL_NAMES for tok in _tokens(lowered))


def _tokens(name: str) -> list[str]:
    return [tok for tok in re.split(r"[^a-z0-9]+", name.lower()) if tok]


_MAKERS: dict[str, NameMaker] = {
    "person": _person,
    "company": _company,
    "place": _place,
    "concept": _concept,
}
NAME_KINDS: tuple[str, ...] = tuple(_MAKERS)


class NameFactory:
    """Hands out fictitious names that never repeat within the factory.

    Besides whole names, no coined word is reused either (no second "Velimar", no town named
    like a company stem), so entities stay separable for SEAT perturbation and KIF. Names in
    ``exclude`` (and their words) are never handed out.
    """

    def __init__(self, seed: int | str = 0, exclude: Iterable[str] = ()) -> None:
        self._rng = random.Random(seed)
        self._taken_names: set[str] = set()
        self._taken_tokens: set[str] = set()
        self.issued: list[str] = []
        self.reserve(exclude)

    def reserve(self, names: Iterable[str]) -> None:
        """Never hand out these names, nor a name that reuses one of their words."""
        if isinstance(names, str):
            names = [names]  # a bare string would otherwise be reserved letter by letter
        for name in names:
            self._taken_names.add(name.strip().lower())
            self._taken_tokens.update(_tokens(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._taken_names

    def new(self, kind: str) -> str:
        """A fresh name of ``kind``: one of ``NAME_KINDS``."""
        if kind not in _MAKERS:
            raise UserError(f"unknown name kind {kind!r}; known kinds: {', '.join(NAME_KINDS)}")
        return self._issue(_MAKERS[kind], kind)

    def person(self) -> str:
        return self._issue(_person, "person")

    def company(self, suffixes: Sequence[str] | None = None) -> str:
        return self._issue(lambda rng: _company(rng, suffixes), "company")

    def place(self) -> str:
        return self._issue(_place, "place")

    def concept(self) -> str:
        return self._issue(_concept, "concept")

    def _issue(self, make: NameMaker, kind: str) -> str:
        for _ in range(_MAX_TRIES):
            name, coined = make(self._rng)
            if name.lower() in self._taken_names:
                continue
            if any(tok.lower() in self._taken_tokens for tok in coined):
                continue
            self._taken_names.add(name.lower())
            self._taken_tokens.update(tok.lower() for tok in coined)
            self.issued.append(name)
            return name
        raise RuntimeError(f"NameFactory found no unused {kind} name in {_MAX_TRIES} tries "
                           f"({len(self.issued)} names issued); use a new factory or a "
                           "smaller exclude set")
