"""``stiltsearch list tasks|knobs|objectives|schedulers|heads``: every registry as a table, data
first (:func:`table`), then text for the console or Markdown for the docs site (:func:`render`).

The docs' reference pages are generated from these (``docs/hooks.py`` runs this command on every
build), so no table of tasks, knobs, objectives or schedulers is ever copied by hand.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import fields

Table = tuple[list[str], list[list[str]]]  # (header, rows), every cell a string

KINDS = ("tasks", "knobs", "objectives", "schedulers", "heads")


def _languages(languages: Sequence[str]) -> str:
    if not languages:
        return "none"
    return f"{len(languages)}: {', '.join(languages)}" if len(languages) > 1 else languages[0]


def tasks() -> Table:
    from stiltsearch.trainables.tasks import TASKS
    from stiltsearch.trainables.tasks.real import HubTask

    def data(cls: type) -> str:  # the dataset ids (or ``data:`` keys) a real task reads; nothing is loaded
        return ", ".join(sorted(cls().datasets())) if issubclass(cls, HubTask) else "generated (trainables/toyworld.py)"

    rows = [[name, cls.role, cls.head, cls.metric, data(cls), _languages(cls.languages), _languages(cls.train_languages)]
            for name, cls in sorted(TASKS.items(), key=lambda kv: (kv[1].benchmark, kv[1].role, kv[0]))]
    return ["task", "role", "head", "metric", "data", "evaluated on", "trains on"], rows


def knobs() -> Table:
    from stiltsearch.spaces.knobs import KNOBS

    def where(k: object) -> str:
        key = getattr(k, "key")  # noqa: B009 - a property of every knob
        return f"space.{key}" if getattr(k, "in_space_config") else key  # noqa: B009

    rows = [[k.name, k.applies, where(k), ", ".join(map(str, k.default)) if isinstance(k.default, tuple) else "",
             "yes" if k.phase2 else "", k.doc] for k in KNOBS]
    return ["knob", "applied in", "choices in the config", "default choices", "decides phase 2", "what it is"], rows


def objectives() -> Table:
    from stiltsearch.trainables.objectives import EVAL, EVAL_PREFIX, OBJECTIVES

    rows = [[o.name, o.direction, o.unit, f"{o.reference:g}", _needs(o.requires, o.needs_nli), o.doc] for o in OBJECTIVES]
    rows.append([f"{EVAL_PREFIX}<target task>", EVAL.direction, EVAL.unit, f"{EVAL.reference:g}", "", EVAL.doc])
    return ["objective", "direction", "unit", "hypervolume reference", "needs", "what it is"], rows


def _needs(requires: tuple[str, object] | None, nli: bool) -> str:
    said = [f"{requires[0]}: {str(requires[1]).lower()}"] if requires else []
    return "; ".join(said + (["an NLI target (xnli, toy_xnli)"] if nli else []))


def schedulers() -> Table:
    from stiltsearch.search.schedulers.registry import SCHEDULERS

    rows = []
    for name, cls in SCHEDULERS.items():
        settings = cls.Settings()
        shown = ", ".join(f"{f.name}: {getattr(settings, f.name):.4g}" for f in fields(settings)) or "none"
        summary = " ".join((inspect.getdoc(cls.Settings) or "").split())
        rows.append([name, shown, ", ".join(f"{b:.3g}" for b in settings.rungs) or "none", summary])
    return ["scheduler", "settings (defaults)", "rungs (defaults)", "what it does"], rows


def heads() -> Table:
    from stiltsearch.trainables.heads import HEAD_CLASSES
    from stiltsearch.trainables.tasks.base import HEAD_KINDS

    rows = [[name, ", ".join(kind.groups), "yes" if kind.trained else "no", HEAD_CLASSES[name].__name__ if name in HEAD_CLASSES else "(none)"]
            for name, kind in HEAD_KINDS.items()]
    return ["head kind", "XTREME groups", "fine-tuned", "class"], rows


TABLES: dict[str, Callable[[], Table]] = {"tasks": tasks, "knobs": knobs, "objectives": objectives,
                                          "schedulers": schedulers, "heads": heads}


def table(kind: str) -> Table:
    return TABLES[kind]()


def render(data: Table, markdown: bool = False) -> str:
    header, rows = data
    if markdown:
        def cell(text: str) -> str:
            return text.replace("|", "\\|")

        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]) + "\n"
    cut = [[c if len(c) <= 60 else c[:57] + "..." for c in row] for row in rows]
    widths = [max(len(r[i]) for r in [header, *cut]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *cut]) + "\n"
