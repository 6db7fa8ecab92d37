"""Types the trial side passes around, each named once for what it is.

``Row`` and ``Metrics`` are JSON-like records whose values are of several types by design (a
dataset's columns; a trial's numbers beside a few strings such as a cache state); they stay
``dict[str, Any]``, named so that a signature says which record it takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import datasets
    import transformers

Tokenizer: TypeAlias = "transformers.PreTrainedTokenizerBase"  # a fast tokenizer (AutoTokenizer's)
Encoder: TypeAlias = "transformers.PreTrainedModel"  # an HF encoder (XLM-R: no LM head, no pooler)
Features: TypeAlias = "datasets.Features"  # a hub dataset's column types (class labels by name)
Row: TypeAlias = "dict[str, Any]"  # one dataset row as the hub's loader yields it: column -> value
Metrics: TypeAlias = "dict[str, Any]"  # what a trial reports: name -> number (a few strings: cache states, policies)
