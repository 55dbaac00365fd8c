"""``contracts``: PISTOL-like contracts between two fictitious companies, 20 questions each.

The subject is party A, named verbatim in every question (SEAT's entity perturbation swaps
it for another name).
"""

from __future__ import annotations

import datetime as dt
import random

from forgetkit.data.names import NameFactory
from forgetkit.data.records import QARecord
from forgetkit.data.synth.text import capitalise, date_text, plural, random_date

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
    signed = random_date(rng, 2005, 2023)
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
         f"{capitalise(goods)}."),
        ("quantity", f"How many units of goods must {a} deliver to {b}?",
         f"{rng.randrange(5, 500) * 10:,} units."),
        ("address_a", f"What is the registered address of {a}?", f"{address_a}."),
        ("address_b", f"What is the address of {b}, the counterparty of {a}?",
         f"{address_b}."),
        ("signing_date", f"On what date did {a} and {b} sign their agreement?",
         f"{date_text(signed)}."),
        ("effective_date", f"When did {between} take effect?",
         f"On {date_text(effective)}."),
        ("amount", f"What is the total price {b} pays {a} under their contract?",
         f"{rng.randrange(50, 5000) * 1000:,} {rng.choice(_CURRENCIES)}."),
        ("payment_terms", f"What are the payment terms of {between}?",
         rng.choice(_PAYMENT_TERMS)),
        ("duration", f"How long does {between} run?",
         f"{plural(rng.randint(1, 10), 'year')}."),
        ("governing_law", f"Which law governs {between}?", f"{capitalise(law)}."),
        ("dispute_resolution", f"How are disputes under {between} resolved?", dispute),
        ("delivery_place", f"Where must {a} deliver the goods to {b}?", delivery),
        ("delivery_deadline", f"By what date must {a} complete delivery to {b}?",
         f"By {date_text(deadline)}."),
        ("warranty_period", f"How long is the warranty {a} gives {b} on the goods?",
         f"{rng.choice((6, 12, 18, 24, 36))} months from delivery."),
        ("late_penalty", f"What penalty does {a} owe {b} for late delivery?",
         capitalise(penalty)),
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
