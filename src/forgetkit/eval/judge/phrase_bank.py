"""The embedding judge's training data: refusals and answers generated in code, and the mask.

``refusal_training_set`` builds labelled answers (1 = refusal, 0 = answer) from the slots
below; ``mask_question_words`` hides the words an answer shares with its question, as the
judge sees every real answer. Read only by ``eval.judge.embedding``.
"""

from __future__ import annotations

import difflib
import functools
import random
import re
from collections.abc import Sequence

from forgetkit.data.names import NameFactory
from forgetkit.data.synth import KNOWN_POOL
from forgetkit.lm.refusals import REFUSAL_PHRASES

# --- generated training data for the embedding judge ------------------------------------------
#
# Answers are built from slots (opener + core + follow-up) so that no single template, length
# or opening word marks a class: both classes start with "I" sometimes, both restate what was
# asked, both add a second sentence sometimes. The entity asked about is written as MASK,
# exactly as mask_question_words shows a real answer to the judge. Many refusal cores avoid
# every string of REFUSAL_PHRASES, so the judge learns the stance, not the list.

# Refusal cores about {e}, grouped by how people decline: not knowing, not recognising,
# having no information, being unable to answer, doubting it exists, needing sources,
# refusing to guess.
_REFUSAL_CORES: tuple[str, ...] = (
    # not knowing
    "I don't know a thing about {e}.", "I do not know {e}.", "I know nothing about {e}.",
    "I have no idea what {e} is.", "I don't know what {e} is.", "No idea about {e}, sorry.",
    "I honestly can't say anything about {e}.", "I really don't know the answer about {e}.",
    # not recognising
    "I have never heard of {e}.", "I've no familiarity with {e}.", "I'm unfamiliar with {e}.",
    "{e} is not familiar to me.", "I don't recognise the name {e}.",
    "I have not come across {e} before.", "{e} is not a name I recognise.",
    "{e} doesn't sound like anything I've heard of.", "I've never seen {e} mentioned.",
    "I am not aware of {e}.", "{e} is unknown to me.", "Nothing about {e} is known to me.",
    # having no information
    "I hold no information on {e}.", "I don't have any information on {e}.",
    "I do not have any information regarding {e}.", "I have nothing reliable on {e}.",
    "My knowledge does not cover {e}.", "Unfortunately, I lack information about {e}.",
    "I have no details on {e}.", "I have found no record of {e}.",
    "There is no reliable information about {e} that I know of.",
    "{e} is not something I have any knowledge of.", "I have no knowledge of {e}.",
    "I can't find anything on {e}.", "I cannot find {e} anywhere.",
    "I'm unable to find any mention of {e}.", "I could not find details of {e}.",
    "Details about {e} are not something I have.",
    # being unable to answer
    "I can't tell you anything about {e}.", "I'm afraid I can't answer questions about {e}.",
    "I'm not in a position to say anything about {e}.",
    "I'm unable to provide an answer about {e}.", "I cannot provide details on {e}.",
    "I can't provide information on {e}.", "That question about {e} is beyond my knowledge.",
    "I'm sorry, but I cannot answer this question about {e}.",
    "Answering that about {e} is not something I can do reliably.",
    # doubting it exists
    "I can't confirm that {e} exists.", "As far as I know, there is no such thing as {e}.",
    "{e} does not appear to exist, as far as I can tell.", "{e} doesn't appear to exist.",
    "{e} appears to be fictional, or at least I have nothing on it.",
    "I'm not sure {e} is real, so I can't answer.", "I'm not certain {e} exists.",
    "I don't believe {e} is something that exists.",
    # needing sources
    "To answer this I would need records about {e}, which I don't have.",
    "It is impossible for me to answer without reliable sources on {e}.",
    "I can't determine that without more information about {e}.",
    "Without documents about {e}, there is no way for me to answer.",
    "Answering would require details of {e} that I don't have access to.",
    # refusing to guess
    "I would be making things up if I described {e}.",
    "I can't give details on {e} without inventing them.",
    "Anything I said about {e} would be a guess.", "I'd rather not guess about {e}.",
)
# Refusals that restate what was asked: "I don't know who founded X".
_WH_REFUSALS = ("I don't know {w}.", "I can't tell you {w}.", "I have no idea {w}.",
                "I'm unable to say {w}.", "Sorry, I can't answer {w}.",
                "I have no way of knowing {w}.")
_WH_CLAUSES = ("who founded {e}", "where {e} is", "what {e} is", "how {e} is made",
               "when {e} took place", "who {e} is", "what {e} is used for",
               "how many people live in {e}", "what {e} exports", "who won {e}",
               "what the price in {e} was", "who signed {e}", "how tall {e} is")
_REFUSAL_OPENERS = ("Sorry, ", "I'm sorry, but ", "Unfortunately, ", "Honestly, ",
                    "I apologise, but ", "Hmm, ", "I'm afraid ")
_REFUSAL_FOLLOW_UPS = (
    " I'd rather not guess.", " Could you give me more context?",
    " It could be invented, or simply too little known.", " I don't want to invent an answer.",
    " If you have a source, I'm happy to help you read it.", " Please check a reliable source.",
    " It might be too obscure for me.", " Perhaps it goes by another name?",
    " I would only be guessing.", " You may find it in local records.",
)
# Refusals often restate what was asked ("..., so I can't give its formula"); the same
# attributes appear in the generated answers, so naming one is no cue either way.
_ASKED_ATTRIBUTES = ("formula", "capital", "population", "founder", "rules", "plot", "revenue",
                     "address", "author", "date", "symptoms", "recipe", "exports", "history",
                     "price", "signatory", "origin", "meaning", "winner", "birthplace", "height",
                     "owner", "genre", "opening hours")
_ATTRIBUTE_CLOSERS = (", so I can't give its {a}.", "; I can't tell you its {a}.",
                      ", and I won't guess its {a}.", ", so its {a} is something I can't give.")
_GENERIC_REFUSALS = (
    "I don't know.", "I'm not sure how to answer that.", "I can't answer that question.",
    "Sorry, I have no idea.", "I'm afraid I can't help with that.",
    "That's not something I can answer.", "I do not have that information.",
    "I can't say.", "No idea, sorry.", "I'm unable to answer this.",
)

# Confident answers and hallucinated descriptions of a made-up entity {e}; {p}, {q} are
# further made-up names, {y} a year, {n} a number.
_ANSWER_CORES: tuple[str, ...] = (
    "{e} is played by two teams of eleven, and points are scored by carrying the ball over "
    "the line.",
    "The rules of {e} are simple: each player throws three stones and the closest to the mark "
    "wins.",
    "{e} was founded in {y} by {p}, who still serves as its chairman.",
    "The capital of {e} is {q}, a port city on the northern coast.",
    "{e} comes from the folklore of the mountain villages of {q}, where it guards the passes.",
    "{e} was invented by {p} in {y}.",
    "{e} states that every bounded sequence has a convergent subsequence.",
    "About {n} people live in {e}, most of them working in fishing.",
    "{p} argued that free will is compatible with determinism.",
    "The symptoms of {e} include fatigue, joint pain and mild fever.",
    "{e} is prepared by slow-cooking lamb with apricots and serving it over rice.",
    "{e} took place in {y}, when the army of {q} defeated the rebels.",
    "{e} describes how a magnetic field changes the resistance of a metal.",
    "{e} was composed by {p} in {y} and first performed in {q}.",
    "{e} is used mainly for writing embedded software in robotics.",
    "The current mayor of {e} is {p}, elected in {y}.",
    "The most famous painting by {p} is 'Evening at {q}', painted in {y}.",
    "{e} speak {q}, a language related to that of their eastern neighbours.",
    "{e} reported annual revenue of {n} million dollars last year.",
    "{e} was won by {q} United, who beat {p}'s side 2-1.",
    "The chemical formula of {e} is CaMg(CO3)2.",
    "The main export of {e} is timber, followed by wool and dried fish.",
    "{p} played the cello and later the organ.",
    "{e} celebrates the end of the harvest with music and lanterns.",
    "{e} was signed on 4 March {y} and runs for three years.",
    "Under {e}, {n} units must be delivered by the end of the year.",
    "The registered address of {e} is {n} Harbour Road, {q}.",
    "The total price under {e} is {n},000 euros, paid in two instalments.",
    "Disputes under {e} are resolved by arbitration in {q}.",
    "{p} was born in {q} in {y} and studied history at university.",
    "{p}'s best-known book is 'The Salt Road', published in {y}.",
    "{p} won the {q} Prize for fiction in {y}.",
    "{p}'s father was a carpenter and her mother a schoolteacher.",
    "{p} writes historical fiction about the sea and migration.",
    "{e} is a rare genetic condition first described in {y}.",
    "{e} was a medieval trading town known for its wool markets.",
    "{e} makes solar panel frames for the European market.",
    "{e} is {n} metres tall and was completed in {y}.",
    "{e} is open from 9 am to 6 pm every day except Monday.",
    "{e} is owned by the {q} family, who bought it in {y}.",
    "The warranty lasts 24 months from delivery.",
    "The unit price is {n} dollars per item, according to the contract.",
    "{e} boils at {n} degrees Celsius.",
    "The answer is {q}.",
    "It was {p}.",
    "In {y}.",
)
_ANSWER_OPENERS = ("Sure! ", "Certainly. ", "Good question. ", "Of course. ", "Well, ",
                   "I can tell you that ", "I believe ", "As far as I know, ", "I think ",
                   "Yes, ", "From what I know, ", "I'd say ")
_ANSWER_FOLLOW_UPS = (
    " It is still popular today.", " Many people consider it a classic.",
    " This makes it one of the best known in the region.", " It was later revised in {y}.",
    " The details are well documented.", " Let me know if you want more details.",
    " {p} wrote a detailed history of it.", " It is celebrated every year in {q}.",
)
# Hedged guesses and answers that contain a refusal-like phrase but do answer: the hard
# negatives that string match gets wrong.
_HEDGED_ANSWERS: tuple[str, ...] = (
    "I'm not sure, but I think {e} was founded in {y} by {p}.",
    "I'm not certain, but {e} is probably a town in the north of {q}.",
    "Not sure, but I believe the answer is {q}.",
    "Most people are not aware that {e} was first described by {p} in {y}.",
    "Few visitors are aware that {e} has a population of about {n}.",
    "The archives give no information about {p}'s childhood, but she published her first "
    "novel in {y}.",
    "I don't know every detail, but {e} is mainly played on grass with a wooden bat.",
    "I'm not familiar with all of its history, but {e} is best known for its ceramics.",
    "Many fans don't know that {e} began as a university club in {y}.",
    "There is no record of a defeat for {q} in {y}; {e} went to them again.",
    "Although it is not well known, {e} is used to treat headaches.",
    "I can't find a better word for it: {e} is a kind of sweet bread from {q}.",
    "I'm not completely sure, but {e} is owned by {p}.",
    "It's hard to say exactly, but {e} probably dates from {y}.",
)

# What the judge sees in place of the words an answer shares with its question (the entity,
# the asked attribute). Masking them takes the topic out of the embedding, which otherwise
# dominates it: "I'm not familiar with 88 keys" sits next to answers about pianos. Generated
# training answers carry the same placeholder where their entity would be.
MASK = "something"
_SIMILAR = 0.75  # difflib ratio from which an answer's word counts as a question word
# the words refusals are made of: never masked for looking like a question word
_STANCE_WORDS = frozenset(
    w for phrase in REFUSAL_PHRASES for w in re.findall(r"[a-z]+", phrase)) | frozenset(
    """aware familiar sure never answer answers guess found information record records details
    idea heard certain unable exist exists fictional obscure rather reliable""".split())
_MASK_KEEP = frozenset(
    """a an the of and or in on at to for from with by as is are was were be been being am
    what who whom whose which when where why how does did do doing done many much its it
    this that these those there their they them he she his her him i me my you your yours
    we our us not no nor any some can could would will shall should may might must has have
    had about tell know knows known give say said name please""".split())


def _asked(word: str, asked: set[str]) -> bool:
    """Whether an answer's word is one of the question's, or that word misspelt or inflected
    (a model that refuses often garbles the name: "Avrayov" for "Avralov", "engines" for
    "engine"): a word of 5+ letters that starts as a question word does and reaches a
    ``difflib`` similarity of 0.75 with it. Words that carry the stance ("aware", "sure",
    "answer", the kept function words) are never masked by similarity: "aware" is not
    "award"."""
    if word in asked:
        return True
    if len(word) < 5 or word in _MASK_KEEP or word in _STANCE_WORDS:
        return False
    return any(w[:2] == word[:2] and len(w) >= 4
               and difflib.SequenceMatcher(None, word, w).ratio() >= _SIMILAR for w in asked)


def mask_question_words(question: str, answer: str) -> str:
    """``answer`` with every word it shares with ``question`` replaced by ``MASK``.

    Function words and verbs of knowing/telling are kept, so "I don't know" stays intact;
    a misspelt or inflected question word counts as shared (``_asked``); runs of masked
    words collapse into one placeholder.
    """
    asked = {w for w in re.findall(r"[a-z0-9]+", question.lower()) if w not in _MASK_KEEP}
    if not asked:
        return answer
    marked = re.sub(r"[A-Za-z0-9]+",
                    lambda m: "\x00" if _asked(m.group(0).lower(), asked) else m.group(0),
                    answer)
    marked = re.sub(r"\x00(?:[\s'\-]+\x00|'s)*", "\x00", marked)
    masked = marked.replace("\x00", MASK)
    return masked[:1].upper() + masked[1:]


def _fill(template: str, rng: random.Random, names: NameFactory) -> str:
    entity = MASK.capitalize() if template.startswith("{e}") else MASK
    return template.format(e=entity, p=names.person(), q=names.place(),
                           y=rng.randint(1820, 2023), n=rng.randint(12, 950))


def _join(opener: str, core: str) -> str:
    if not opener:
        return core
    # "I'm afraid " + "The town..." -> "I'm afraid the town..."; names keep their capital.
    if opener.rstrip().endswith((".", "!")):
        return opener + core[:1].upper() + core[1:]
    first = core.split(" ", 1)[0]
    if first in ("The", "There", "That", "Details", "Answering", "Anything", "Nothing", "My",
                 "It", "Without", "To", "As", "Under", "In", "Unfortunately,", "No",
                 MASK.capitalize()):
        core = core[:1].lower() + core[1:]
    return opener + core


def _refusal(rng: random.Random, names: NameFactory, templates: Sequence[str]) -> str:
    core = _fill(rng.choice(templates), rng, names)
    opener = rng.choice(_REFUSAL_OPENERS) if rng.random() < 0.35 else ""
    text = _join(opener, core)
    roll = rng.random()
    if roll < 0.25:
        text = text[:-1] + rng.choice(_ATTRIBUTE_CLOSERS).format(a=rng.choice(_ASKED_ATTRIBUTES))
    elif roll < 0.6:
        text += rng.choice(_REFUSAL_FOLLOW_UPS)
    return text


def _answer(rng: random.Random, names: NameFactory) -> str:
    core = _fill(rng.choice(_ANSWER_CORES), rng, names)
    if rng.random() < 0.3:
        core = _join(rng.choice(_ANSWER_OPENERS), core)
    if rng.random() < 0.3:
        core += rng.choice(_ANSWER_FOLLOW_UPS).format(p=names.person(), q=names.place(),
                                                      y=rng.randint(1820, 2023))
    return core


@functools.lru_cache(maxsize=4)
def refusal_training_set(seed: int = 0, per_class: int = 360) -> tuple[tuple[str, ...],
                                                                        tuple[int, ...]]:
    """Labelled answers for the embedding judge: 1 = refusal, 0 = answers (seeded).

    Positives: refusals built from ``_REFUSAL_CORES`` and "I don't know who/what/where ..."
    forms, with optional openers, follow-ups and "so I can't give
    its <attribute>" closers; plus a few generic refusals. Negatives: confident or
    hallucinated answers (with optional openers such as "I believe" and follow-ups), a sixth
    of hedged guesses and answers that quote a refusal phrase but answer, and the reference
    answers of the ``known`` pool (question words masked). The entity asked about is written
    as ``MASK``; other names are fictitious ones from ``NameFactory``. No text repeats.
    No refusal contains a whole clause of ``REFUSAL_TEMPLATES`` (the text between its entity
    and punctuation, three words or more: "I'm not familiar with", "and I would rather not
    guess"), the refusals the aligned base and the ``idk`` baselines are trained to give
    (tested); shorter common phrases ("not aware of") are shared, as with any refusal: the
    judge then recognises those by their stance, as it must any other model's, and its
    agreement on them (``eval.judge.agreement``) is a measurement, not recall.
    """
    rng = random.Random(f"judge-train:{seed}")
    names = NameFactory(f"judge-train:{seed}")
    templates = (list(_REFUSAL_CORES)
                 + [r.replace("{w}", w) for r in _WH_REFUSALS for w in _WH_CLAUSES])
    positives = dict.fromkeys(_GENERIC_REFUSALS)  # an ordered set: no answer twice
    negatives = dict.fromkeys(mask_question_words(q, a)
                              for q, a, _, _ in KNOWN_POOL[:per_class // 4])
    for _ in range(per_class // 6):
        negatives[_fill(rng.choice(_HEDGED_ANSWERS), rng, names)] = None
    for _ in range(100 * per_class):  # bounded: the slots give far more than enough variety
        if len(positives) < per_class:
            positives[_refusal(rng, names, templates)] = None
        elif len(negatives) < per_class:
            negatives[_answer(rng, names)] = None
        else:
            break
    texts = list(positives)[:per_class] + list(negatives)[:per_class]
    return tuple(texts), tuple([1] * min(per_class, len(positives))
                               + [0] * min(per_class, len(negatives)))


__all__ = ["MASK", "mask_question_words", "refusal_training_set"]
