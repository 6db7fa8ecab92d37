"""The task registry: importing this package registers every task module in it."""

from stiltsearch.trainables.tasks import toy_ccg, toy_hellaswag, toy_mnli, toy_panx, toy_qqp, toy_xnli  # noqa: F401
from stiltsearch.trainables.tasks.base import TASKS, ChoiceExample, PairExample, TagExample, Task, get_task, register

__all__ = ["TASKS", "ChoiceExample", "PairExample", "TagExample", "Task", "get_task", "register"]
