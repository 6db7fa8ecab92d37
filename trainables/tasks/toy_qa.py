"""Base for the toy extractive-QA tasks: a passage of facts and a question about one of them."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import ClassVar

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import SpanExample
from stiltsearch.trainables.tasks.toy import ToyTask

ANSWER_ROLES = {"subject": ("PER",), "city": ("LOC",), "number": ("NUM",)}


class ToyQA(ToyTask):
    head = "span"
    labels = ("start", "end")
    metric = "squad"
    unanswerable_rate: ClassVar[float] = 0.0  # SQuAD 2.0-like tasks ask about facts the passage lacks

    def make(self, rng: random.Random, language: str) -> SpanExample:
        facts: list[toyworld.Fact] = []
        while len(facts) < rng.randint(2, 3):
            fact = toyworld.random_fact(rng, city_rate=0.7)
            if all(fact.subject.split()[0] != f.subject.split()[0] for f in facts):  # one fact per person
                facts.append(fact)
        asked = rng.randrange(len(facts))
        slot = rng.choice(["subject", "number"] + (["city"] if facts[asked].city else []))
        if rng.random() < self.unanswerable_rate:  # a question about a fact the passage does not state
            noun = rng.choice([n for n in toyworld.NOUNS if all(n != f.noun for f in facts)])
            question = toyworld.sentence(replace(facts[asked], noun=noun), language, ask=slot)
            return SpanExample(question, toyworld.passage(facts, language), (), -1)
        # the answer's character offset: count the characters of everything before it
        context, start, answer = "", -1, ""
        for i, fact in enumerate(facts):
            words = toyworld.realize(fact, language)
            if i == asked:
                span = [j for j, (_, role) in enumerate(words) if role in ANSWER_ROLES[slot]]
                before = " ".join(w for w, _ in words[:span[0]])
                start = len(context) + len(before) + (1 if before else 0)
                answer = " ".join(words[j][0] for j in span)
            context += " ".join(w for w, _ in words) + " . "
        question = toyworld.sentence(facts[asked], language, ask=slot)
        return SpanExample(question, context.rstrip(), (answer,), start)
