"""Base for tasks generated from the toy world (:mod:`stiltsearch.trainables.toyworld`)."""

from __future__ import annotations

import random
from abc import abstractmethod
from typing import ClassVar

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import Example, Task


class ToyTask(Task):
    """A toy task builds each example from a seeded RNG with :meth:`make`.

    The RNG is seeded by (task, split) only, never by language, so a split is the *same* facts in
    every language: dev sets are parallel, as XNLI's are, and translate-train data is the English
    training set "translated".
    """

    benchmark: ClassVar[str] = "toy"
    # Bump when this task's examples change: it seeds every split and is part of the phase-2 cache key.
    version: ClassVar[int] = 5
    # Relative sizes follow the real tasks: large intermediate sets, a small target training set.
    sizes: ClassVar[dict[str, int]] = {"train": 1000, "dev": 300, "test": 300}

    def load(self, split: str, language: str) -> list[Example]:
        if split not in self.sizes:
            raise ValueError(f"task {self.name!r} has no split {split!r}; it has {sorted(self.sizes)}")
        allowed = self.train_languages if split == "train" else self.languages
        if language not in allowed:
            raise ValueError(f"task {self.name!r} has no {split} data in language {language!r}; it has {allowed}")
        rng = random.Random(toyworld.stable_seed(self.name, self.version, split))
        return [self.make(rng, language) for _ in range(self.sizes[split])]

    @abstractmethod
    def make(self, rng: random.Random, language: str) -> Example:
        """One example; draws from ``rng`` the same way whatever the language."""
