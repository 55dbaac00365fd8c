"""``known``: easy general questions a small instruct model can answer.

Each comes with keywords that judge an answer correct; the known-question accuracy of every
study reads them.
"""

from __future__ import annotations

import random

from forgetkit.data.names import NameFactory
from forgetkit.data.records import QARecord
from forgetkit.errors import UserError

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
        raise UserError(f"known: asked for n={n} questions but the built-in pool has only "
                         f"{len(KNOWN_POOL)}; use n <= {len(KNOWN_POOL)}")
    rng = random.Random(f"known:{seed}")
    records = []
    for index in rng.sample(range(len(KNOWN_POOL)), n):
        question, answer, keywords, topic = KNOWN_POOL[index]
        meta = {"kind": "known", "keywords": list(keywords), "topic": topic,
                "pool_index": index}
        records.append(QARecord(question, answer, subject=None, meta=meta))
    return records
