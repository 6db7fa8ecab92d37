"""What a task is: its facts as class attributes, and three methods (load, encode, score).

Adding a task touches one file: subclass :class:`Task`, set the facts, implement ``load``, and
decorate the class with :func:`register`. Encoding and decoding follow from the head kind
(:mod:`stiltsearch.trainables.heads`); scoring follows from the metric
(:mod:`stiltsearch.trainables.metrics`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from stiltsearch.trainables import metrics


@dataclass(frozen=True)
class PairExample:
    """A sentence (pair) with one label: NLI, paraphrase, single-sentence classification."""

    text_a: str
    text_b: str | None
    label: int


@dataclass(frozen=True)
class TagExample:
    """Pre-split words with one tag id per word: NER, POS, CCG supertags."""

    words: tuple[str, ...]
    tags: tuple[int, ...]


@dataclass(frozen=True)
class ChoiceExample:
    """A context and candidate continuations, one of them right: HellaSwag, COPA, Cosmos QA."""

    context: str
    choices: tuple[str, ...]
    label: int


@dataclass(frozen=True)
class SpanExample:
    """Extractive QA: a question, a context, and the answer as text spans of the context.

    ``answer_start`` is the character offset of the first answer (what training uses); an
    unanswerable question (SQuAD 2.0) has no answers and ``answer_start`` -1.
    """

    question: str
    context: str
    answers: tuple[str, ...]
    answer_start: int


@dataclass(frozen=True)
class BitextExample:
    """A sentence and its English translation (Tatoeba, BUCC): retrieval finds one from the other.

    BUCC names each sentence by its corpus id, since one sentence can be in several gold pairs.
    """

    source: str
    target: str
    source_id: str = ""
    target_id: str = ""


@dataclass(frozen=True)
class PooledQAExample:
    """A question, its context cut into sentences, and which sentence answers it (LAReQA). ``qid`` is
    shared by the translations of one question: their answer sentences are all relevant."""

    question: str
    qid: str
    sentences: tuple[str, ...]
    answer: int
    context: str = ""  # the paragraph: a candidate is encoded as its sentence followed by it (XTREME-R)

    def candidate(self, i: int) -> str:
        """Sentence ``i`` as a retrieval candidate: the sentence then its paragraph, newlines removed,
        as XTREME-R's ``evaluate_retrieval.py`` encodes LAReQA's candidates."""
        return (self.sentences[i] + self.context).replace("\n", "")

    @property
    def source(self) -> str:  # what a retrieval workload encodes (the query side)
        return self.question


@dataclass(frozen=True)
class MentionExample:
    """An entity mention in its sentence, and the id of the entity it names (Mewsli-X)."""

    query: str
    entity_id: str

    @property
    def source(self) -> str:  # what a retrieval workload encodes (the query side)
        return self.query


@dataclass(frozen=True)
class DualExample:
    """A query and the text it should retrieve: what a dual encoder trains on (XTREME-R's LAReQA:
    a SQuAD question and its answer sentence with the paragraph; Mewsli-X: a mention's sentence and
    its entity's title and description)."""

    query: str
    candidate: str

    @property
    def source(self) -> str:
        return self.query


Example = (PairExample | TagExample | ChoiceExample | SpanExample | BitextExample | PooledQAExample | MentionExample
           | DualExample)

@dataclass(frozen=True)
class HeadKind:
    """What a task's head kind means to the rest of the search (its torch implementation is a
    class registered for it in :mod:`stiltsearch.trainables.heads`)."""

    name: str
    groups: tuple[str, ...]  # the task groups of the score breakdown its tasks belong to
    trained: bool = True  # False: no phase-3 training; scored from the encoder's pooled states
    qa_length: bool = False  # trains and serves at training.qa_max_length when that is set
    retrieves: bool = False  # scored by retrieval over its vectors (retrieval.RETRIEVERS), not by decoding


# The groups are the XTREME paper's (its evaluate.py calls structured prediction "tagging").
# XCOPA, multiple choice, counts in XTREME-R's evaluate.py both as classification and in its own
# multi_choice group; LAReQA and Mewsli-X are retrieval (the XTREME-R paper's grouping: its evaluator
# has no LAReQA entry), scored as XTREME-R does after phase 3 fine-tunes a dual encoder on English
# query-candidate pairs.
HEAD_KINDS: dict[str, HeadKind] = {k.name: k for k in (
    HeadKind("classification", ("classification",)),
    HeadKind("choice", ("classification", "multi_choice")),
    HeadKind("tagging", ("structured_prediction",)),
    HeadKind("span", ("qa",), qa_length=True),
    HeadKind("retrieval", ("retrieval",), trained=False, retrieves=True),
    HeadKind("dual_encoder", ("retrieval",), retrieves=True),
)}


class Task(ABC):
    """One dataset in one format. Language is a parameter of ``load``, never part of the name."""

    name: ClassVar[str]
    head: ClassVar[str]  # a key of HEAD_KINDS
    labels: ClassVar[tuple[str, ...]]  # label names in id order (choice tasks: one per choice slot)
    metric: ClassVar[str]  # a key of metrics.METRICS
    languages: ClassVar[tuple[str, ...]] = ("en",)  # every language it is evaluated on
    train_languages: ClassVar[tuple[str, ...]] = ("en",)  # those with (translate-)train data
    role: ClassVar[str] = "target"  # "intermediate" (English training only) or "target"
    retrieve: ClassVar[str] = "nearest"  # retrieval tasks: a key of retrieval.RETRIEVERS
    # Retrieval tasks: which hidden state is pooled, and how (retrieval.pooled_layer, target.embed).
    # XTREME's scripts embed Tatoeba as the mean over tokens and BUCC as the <s> (CLS) vector, both
    # of layer 7 of 12 (13 of 24 for XLM-R Large): "middle" is depth // 2 + 1 for any depth.
    pool: ClassVar[str] = "mean"  # "mean" over real tokens, or "cls" (the first token, <s>)
    pool_layer: ClassVar[str] = "last"  # "last" or "middle"; never above the layers a deployment keeps
    benchmark: ClassVar[str] = "toy"  # "toy" (generated here) or "real" (read from the hub or files)
    # the training data it fine-tunes on, when other targets fine-tune on the same ("": its own):
    # targets with the same data, head, labels, languages, recipe and length train one model per
    # trial (trainables/groups.py: training_key)
    trains_on: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "test")  # the splits it has, by our names

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        """``data``: ``{dataset id: local directory}`` for real tasks read from local copies."""
        self.data = dict(data or {})

    @abstractmethod
    def load(self, split: str, language: str) -> Sequence[Example]:
        """The examples of one split ("train", "dev" or "test") in one language."""

    def eval_languages(self, split: str) -> tuple[str, ...]:
        """The languages that have ``split`` (some UDPOS languages have a test set only)."""
        return self.languages

    def score(self, predictions: Sequence[Any], examples: Sequence[Example], language: str) -> dict[str, float]:
        """Predictions on ``language``'s examples -> ``{"major": task score in [0, 100], ...minor metrics}``."""
        return metrics.METRICS[self.metric](predictions, examples, self.labels, language)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def kind(self) -> HeadKind:
        return HEAD_KINDS[self.head]


T = TypeVar("T", bound=type[Task])

TASKS: dict[str, type[Task]] = {}


def register(cls: T) -> T:
    """Class decorator: make a task known by its ``name``."""
    if cls.name in TASKS:
        raise ValueError(f"task {cls.name!r} is registered twice")
    if cls.head not in HEAD_KINDS:
        raise ValueError(f"task {cls.name!r}: head {cls.head!r} is not one of {tuple(HEAD_KINDS)}")
    if cls.pool not in ("mean", "cls") or cls.pool_layer not in ("last", "middle"):
        raise ValueError(f"task {cls.name!r}: pool {cls.pool!r} / pool_layer {cls.pool_layer!r} must be "
                         "mean|cls / last|middle")
    TASKS[cls.name] = cls
    return cls


def get_task(name: str, data: Mapping[str, str] | None = None) -> Task:
    """A task by name; ``data`` points real tasks' datasets at local copies (:mod:`..hub`)."""
    try:
        return TASKS[name](data)
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}") from None

