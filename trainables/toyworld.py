"""A deterministic synthetic multilingual world: the embedded default's data.

English plus synthetic languages that express the same *facts* with their own vocabularies, word
orders and morphology. Names, cities, numbers and punctuation are shared by every language, as they
are in XLM-R's vocabulary; content words are shared with English at a per-language "cognate rate";
the farther languages add suffixes (object case, verb agreement), fuse negation into the verb and
leave question words in place. Distance from English is graded, never total.

A fact is "<name> [not] <verb> <number> [<adjective>] <noun> [in <city>]". Every toy task is built
from facts, so that what one task teaches (e.g. which changes contradict a sentence) can transfer to
another, and what a language shares with English decides how well zero-shot transfer works.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from functools import cache

# Bump when the languages or the pretraining corpus change: it is part of the phase-1 model's cache
# key. (A task's examples have their own version, ToyTask.version, so changing one task keeps the
# pretrained models and every other task's data and caches.)
GENERATOR_VERSION = 4

NAMES = ("anna", "boris", "chen", "dara", "emil", "fatima", "goran", "hana", "ivan", "jun", "kofi",
         "lena", "mira", "nico", "olga", "pavel", "rosa", "sami", "tariq", "yuki")
SURNAMES = ("smith", "kato", "silva", "novak", "okafor", "berg", "rossi", "tanaka")
CITIES = ("paris", "lima", "oslo", "cairo", "delhi", "quito", "seoul", "rome", "kyiv", "accra")
NUMBERS = tuple(str(n) for n in range(2, 13))
NOUNS = ("cat", "dog", "apple", "book", "car", "house", "boat", "lamp", "chair", "shoe", "cup",
         "hat", "kite", "drum", "ring", "key")
ADJECTIVES = ("red", "blue", "green", "small", "big", "old", "new", "white")
# Verbs come in antonym pairs: swapping a verb for its antonym contradicts the sentence.
ANTONYMS = {"buys": "sells", "finds": "loses", "likes": "hates", "opens": "closes", "holds": "drops"}
ANTONYMS |= {v: k for k, v in ANTONYMS.items()}
VERBS = tuple(sorted(ANTONYMS)) + ("sees", "paints")
FUNCTION_WORDS = ("not", "in", "then", "the", "who", "where", "how many")
QUESTION_WORDS = {"subject": "who", "city": "where", "number": "how many"}  # slot asked -> wh-word

# World knowledge (what the CommonsenseQA-like task asks): each thing's usual colour or size.
USUAL_COLOUR = dict(zip(NOUNS, ("white", "big", "red", "old", "blue", "big", "white", "small", "old", "new",
                                "white", "green", "blue", "red", "small", "green")))

# Word roles: the tagging tasks are built on them.
ROLES = ("PER", "NEG", "VERB", "NUM", "ADJ", "NOUN", "ADP", "LOC", "DET")


@dataclass(frozen=True)
class LanguageSpec:
    """How a language realises a fact. Distance from English grows with each difference."""

    code: str
    order: str  # constituent order of subject (S), verb (V) and object (O)
    adj_after_noun: bool
    postposition: bool  # "paris in" instead of "in paris"
    cognate_rate: float  # fraction of content and function words spelled as in English
    suffixes: bool = False  # morphology: an object-case suffix on nouns and an agreement suffix on verbs
    fused_negation: bool = False  # negation is a verb prefix, not a separate word
    wh_in_situ: bool = False  # question words stay where the answer would be (as in Japanese, Hindi)

    @property
    def distance(self) -> int:
        """Rank of how different this language is from English (0 = English): for sorting and tests."""
        return list(LANGUAGES).index(self.code)


LANGUAGES: dict[str, LanguageSpec] = {
    spec.code: spec
    for spec in (
        LanguageSpec("en", "SVO", adj_after_noun=False, postposition=False, cognate_rate=1.0),
        LanguageSpec("xa", "SVO", adj_after_noun=False, postposition=False, cognate_rate=0.6),
        LanguageSpec("xb", "SVO", adj_after_noun=True, postposition=False, cognate_rate=0.4),
        LanguageSpec("xc", "SOV", adj_after_noun=True, postposition=True, cognate_rate=0.25, suffixes=True,
                     wh_in_situ=True),
        LanguageSpec("xd", "VSO", adj_after_noun=True, postposition=True, cognate_rate=0.1, suffixes=True,
                     fused_negation=True, wh_in_situ=True),
    )
}
SYNTHETIC_LANGUAGES = tuple(code for code in LANGUAGES if code != "en")


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process and Python version (unlike ``hash``)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


@cache
def lexicon(code: str) -> dict[str, str]:
    """English word -> this language's word, for every translatable word."""
    spec = LANGUAGES[code]
    if code == "en":
        return {}
    rng = random.Random(stable_seed("lexicon", GENERATOR_VERSION, code))
    # Each language draws its pseudo-words from its own syllable inventory, so its subwords
    # differ from English and from the other synthetic languages.
    consonants = rng.sample("bdfghklmnprstvz", 8)
    vowels = rng.sample("aeiouy", 4)
    syllables = [c + v for c in consonants for v in vowels]
    words: dict[str, str] = {}
    used: set[str] = set()
    for word in NOUNS + ADJECTIVES + VERBS + FUNCTION_WORDS:
        if rng.random() < spec.cognate_rate:
            words[word] = word
            continue
        while True:
            candidate = "".join(rng.choice(syllables) for _ in range(rng.choice((2, 2, 3))))
            if candidate not in used:
                used.add(candidate)
                words[word] = candidate
                break
    # affixes of the morphologically richer languages, from the same syllables
    words["-obj"], words["-verb"], words["not-"] = rng.sample(syllables, 3)
    return words


@dataclass(frozen=True)
class Fact:
    subject: str  # a name, optionally "name surname"
    verb: str
    number: str
    noun: str
    adjective: str | None = None
    city: str | None = None
    negated: bool = False


def random_fact(rng: random.Random, *, adjective_rate: float = 0.6, city_rate: float = 0.5) -> Fact:
    subject = rng.choice(NAMES)
    if rng.random() < 0.3:
        subject += " " + rng.choice(SURNAMES)
    return Fact(
        subject=subject,
        verb=rng.choice(VERBS),
        number=rng.choice(NUMBERS),
        noun=rng.choice(NOUNS),
        adjective=rng.choice(ADJECTIVES) if rng.random() < adjective_rate else None,
        city=rng.choice(CITIES) if rng.random() < city_rate else None,
        negated=rng.random() < 0.15,
    )


def realize(fact: Fact, code: str, *, front_city: bool = False, ask: str | None = None) -> list[tuple[str, str]]:
    """The fact as (word, role) pairs in language ``code``; ``front_city`` moves the place first.

    ``ask`` ("subject", "city" or "number") makes it a question about that slot: the wh-word takes
    the slot's place (``wh_in_situ`` languages) or the front of the sentence, and "?" ends it.
    """
    spec = LANGUAGES[code]
    lex = lexicon(code)

    def tr(word: str) -> str:
        return lex.get(word, word)

    wh = [(tr(QUESTION_WORDS[ask]), "WH")] if ask else []
    subject = wh if ask == "subject" else [(w, "PER") for w in fact.subject.split()]
    verb_word = tr(fact.verb) + (tr("-verb") if spec.suffixes else "")
    if fact.negated and spec.fused_negation:
        verb = [(tr("not-") + verb_word, "VERB")]
    else:
        verb = ([(tr("not"), "NEG")] if fact.negated else []) + [(verb_word, "VERB")]
    noun_phrase = [(tr(fact.noun) + (tr("-obj") if spec.suffixes else ""), "NOUN")]
    if fact.adjective:
        adjective = [(tr(fact.adjective), "ADJ")]
        noun_phrase = noun_phrase + adjective if spec.adj_after_noun else adjective + noun_phrase
    obj = (wh if ask == "number" else [(fact.number, "NUM")]) + noun_phrase
    parts = {"S": subject, "V": verb, "O": obj}
    words = [pair for slot in spec.order for pair in parts[slot]]
    if fact.city or ask == "city":
        locative: list[tuple[str, str]] = wh if ask == "city" else [(str(fact.city), "LOC"), (tr("in"), "ADP")]
        locative = locative if spec.postposition else locative[::-1]
        words = locative + words if front_city else words + locative
    if ask and not spec.wh_in_situ:  # move the wh-word to the front
        words = wh + [pair for pair in words if pair[1] != "WH"]
    return words + [("?", "PUNCT")] if ask else words


def sentence(fact: Fact, code: str, *, front_city: bool = False, ask: str | None = None) -> str:
    return " ".join(word for word, _ in realize(fact, code, front_city=front_city, ask=ask))


def passage(facts: list[Fact], code: str) -> str:
    """Several facts as one text, sentences ended by "." (the context of the QA tasks)."""
    return " ".join(sentence(fact, code) + " ." for fact in facts)


# --- relations between facts: what the NLI and paraphrase tasks are made of -------------------

NLI_LABELS = ("entailment", "neutral", "contradiction")  # HF's order for MNLI/XNLI/ANLI


@dataclass(frozen=True)
class NLIPair:
    premise: Fact
    hypothesis: Fact
    label: int  # index into NLI_LABELS
    hypothesis_front_city: bool = False  # the hypothesis moves the place first (same meaning)


def nli_pair(rng: random.Random) -> NLIPair:
    """A premise, a hypothesis and its label; the label is drawn first so classes are balanced.

    Entailment says less (drops the adjective or the place) or says it in another order; neutral
    says more; contradiction changes one word (a number, an antonym) or the negation. An
    entailment is never a verbatim copy: telling a copy from a one-word change is what the toy
    encoders cannot learn from a few thousand examples (their numbers stay near one embedding).
    """
    label = rng.randrange(3)
    premise = random_fact(rng)
    if label == 0:
        if premise.city is None and premise.adjective is None:
            premise = replace(premise, city=rng.choice(CITIES))
        options = (["drop_adj"] if premise.adjective else []) + (["drop_city", "reorder"] if premise.city else [])
        change = rng.choice(options)
        if change == "reorder":
            return NLIPair(premise, premise, 0, hypothesis_front_city=True)
        hypothesis = replace(premise, adjective=None) if change == "drop_adj" else replace(premise, city=None)
        return NLIPair(premise, hypothesis, 0)
    if label == 1:  # neutral: the hypothesis adds something the premise does not say
        premise = replace(premise, adjective=None) if rng.random() < 0.5 else replace(premise, city=None)
        if premise.adjective is None:
            return NLIPair(premise, replace(premise, adjective=rng.choice(ADJECTIVES)), 1)
        return NLIPair(premise, replace(premise, city=rng.choice(CITIES)), 1)
    change = rng.choice(["number", "negation"] + (["antonym"] if premise.verb in ANTONYMS else []))
    if change == "number":
        hypothesis = replace(premise, number=rng.choice([n for n in NUMBERS if n != premise.number]))
    elif change == "antonym":
        hypothesis = replace(premise, verb=ANTONYMS[premise.verb])
    else:
        hypothesis = replace(premise, negated=not premise.negated)
    return NLIPair(premise, hypothesis, 2)


def paraphrase_pair(rng: random.Random) -> tuple[Fact, Fact, int]:
    """(a, b, 1) when b states the same fact, (a, b, 0) when two of its elements differ (PAWS-style:
    most words still shared). Two, not one: like the NLI pairs, a single changed word is what the
    toy encoders cannot tell from a copy."""
    a = random_fact(rng)
    if rng.random() < 0.5:
        return a, a, 1
    b = a
    for change in rng.sample(["subject", "noun", "number", "verb"], 2):
        if change == "subject":
            b = replace(b, subject=rng.choice([n for n in NAMES if n != a.subject.split()[0]]))
        elif change == "noun":
            b = replace(b, noun=rng.choice([n for n in NOUNS if n != a.noun]))
        elif change == "number":
            b = replace(b, number=rng.choice([n for n in NUMBERS if n != a.number]))
        else:
            b = replace(b, verb=rng.choice([v for v in VERBS if v != a.verb]))
    return a, b, 0


def story(rng: random.Random, length: int) -> list[Fact]:
    """Facts about one person that repeat what came before (the thing, how many, the place) or undo
    it (the antonym), as documents do. Masked-word prediction then has to find *which* number, name
    or verb was meant, by looking back for it; without this, interchangeable words (every number
    fits "anna buys _ cats") collapse onto one embedding and no sentence pair can be compared."""
    first = random_fact(rng)
    facts = [first]
    while len(facts) < length:
        nxt = replace(random_fact(rng), subject=first.subject)
        if rng.random() < 0.7:
            nxt = replace(nxt, number=first.number, noun=first.noun, adjective=first.adjective)
        if rng.random() < 0.5:
            nxt = replace(nxt, city=first.city)
        if rng.random() < 0.4:
            nxt = replace(nxt, verb=ANTONYMS.get(first.verb, first.verb))
        facts.append(nxt)
    return facts


def corpus(code: str, n: int, seed: int) -> list[str]:
    """Unlabelled text in one language, the phase-1 (MLM) pretraining text: mostly short stories
    that repeat their words, and single facts, unrelated passages and questions."""
    rng = random.Random(stable_seed("corpus", GENERATOR_VERSION, code, seed))
    texts = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.25:
            texts.append(sentence(random_fact(rng), code))
        elif roll < 0.8:
            texts.append(passage(story(rng, rng.randint(2, 4)), code))
        elif roll < 0.9:
            texts.append(passage([random_fact(rng) for _ in range(rng.randint(2, 3))], code))
        else:
            texts.append(sentence(random_fact(rng), code, ask=rng.choice(tuple(QUESTION_WORDS))))
    return texts
