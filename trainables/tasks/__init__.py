"""The task registry: importing this package registers every task module in it.

Real tasks (read from the Hugging Face hub or local copies): the paper's nine intermediate tasks and
the XTREME and XTREME-R targets. Toy tasks (``toy_*``): the embedded synthetic benchmark.
"""

from collections.abc import Sequence

from stiltsearch.trainables.tasks import (  # noqa: F401
    anli,
    bucc,
    ccg,
    cosmosqa,
    csqa,
    hellaswag,
    lareqa,
    mewslix,
    mlqa,
    mnli,
    panx,
    pawsx,
    qqp,
    squad,
    tatoeba,
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
    tydiqa,
    udpos,
    xcopa,
    xnli,
    xquad,
    xtreme_r,
)
from stiltsearch.trainables.tasks.base import (
    TASKS,
    BitextExample,
    ChoiceExample,
    MentionExample,
    PairExample,
    PooledQAExample,
    SpanExample,
    TagExample,
    Task,
    get_task,
    register,
)

# The paper's nine intermediate tasks (ANLI with its SNLI/MNLI mix as the alternative "anli_mix"),
# and the two benchmark target sets. XTREME-R drops PAWS-X and BUCC, adds XCOPA, LAReQA and
# Mewsli-X, and evaluates PAN-X, UDPOS, XQuAD and Tatoeba on more languages (tasks/xtreme_r.py).
PAPER_INTERMEDIATE = ("anli", "mnli", "qqp", "squad", "squad_v2", "hellaswag", "commonsenseqa", "cosmosqa", "ccg")
SUITES = {
    "xtreme": ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc2018", "tatoeba"),
    "xtreme-r": ("xnli", "xcopa", "udpos_xr", "panx_xr", "xquad_xr", "mlqa", "tydiqa", "lareqa", "mewslix",
                 "tatoeba_xr"),
}

NLI_LABELS = ("entailment", "neutral", "contradiction")


def nli_target(target_tasks: Sequence[str]) -> str | None:
    """The first of ``target_tasks`` with the three NLI labels (``xnli``, ``toy_xnli``): the target
    the ``non_english_nli`` objective and the report's question 1 read; None if there is none."""
    return next((name for name in target_tasks if name in TASKS and TASKS[name].labels == NLI_LABELS), None)


__all__ = ["NLI_LABELS", "PAPER_INTERMEDIATE", "SUITES", "TASKS", "nli_target", "BitextExample", "ChoiceExample", "MentionExample", "PairExample", "PooledQAExample", "SpanExample",
           "TagExample", "Task", "get_task", "register"]
