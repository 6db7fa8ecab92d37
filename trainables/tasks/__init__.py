"""The task registry: importing this package registers every task module in it."""

from stiltsearch.trainables.tasks import (  # noqa: F401
    toy_anli,
    toy_ccg,
    toy_cosmosqa,
    toy_csqa,
    toy_hellaswag,
    toy_mnli,
    toy_panx,
    toy_pawsx,
    toy_qqp,
    toy_squad,
    toy_squad2,
    toy_tatoeba,
    toy_xnli,
    toy_xquad,
)
from stiltsearch.trainables.tasks.base import (
    TASKS,
    BitextExample,
    ChoiceExample,
    PairExample,
    SpanExample,
    TagExample,
    Task,
    get_task,
    register,
)

__all__ = ["TASKS", "BitextExample", "ChoiceExample", "PairExample", "SpanExample", "TagExample", "Task",
           "get_task", "register"]
