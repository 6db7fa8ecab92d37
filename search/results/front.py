"""The search's current Pareto front, read from the Optuna study: as data, as files, on the console.

Used while a search runs (refreshed each time a trial is told to the study), at its end, and by
``stiltsearch pareto`` on a search that is not running. Pure data first (:func:`from_study`),
rendering second (:func:`write_files`, :func:`print_table`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna

from stiltsearch.search.results import pareto, plots, table
from stiltsearch.search.results.table import Row
from stiltsearch.spaces.knobs import KNOBS, describe, row
from stiltsearch.trainables.objectives import reference
from stiltsearch.trainables.outcome import Outcome


@dataclass
class Front:
    names: list[str]
    directions: list[str]
    outcomes: list[Row]  # the search's complete, feasible trials (:func:`.table.searched`), by number
    ranks: list[int]  # Pareto rank of each outcome (0 = the front)
    history: list[float]  # hypervolume after each completion, in completion order
    failed: int
    pruned: int = 0  # stopped early by a scheduler: never on the front
    infeasible: int = 0  # outside an objective's bound: never on the front

    @property
    def hypervolume(self) -> float:
        return self.history[-1] if self.history else 0.0

    @property
    def rank_of(self) -> dict[int, int]:
        return {o.number: r for o, r in zip(self.outcomes, self.ranks)}

    @property
    def numbers(self) -> list[int]:
        """The trials on the front, by number."""
        return [o.number for o, r in zip(self.outcomes, self.ranks) if r == 0]

    def summary(self) -> dict[str, float]:
        return {"trials_completed": len(self.outcomes), "trials_failed": self.failed, "trials_pruned": self.pruned,
                "trials_infeasible": self.infeasible,
                "pareto_size": self.ranks.count(0), "hypervolume_final": self.hypervolume}


def from_rows(rows: Sequence[Row], names: Sequence[str], directions: Sequence[str]) -> Front:
    """The front of a table of trials (:mod:`.table`): its searched trials, ranked; the hypervolume
    counts from each objective's declared reference (``trainables/objectives.py``), so a minimised
    objective counts as well as a maximised one."""
    outcomes = table.searched(rows)
    points = [o.values for o in outcomes]
    ranks = pareto.pareto_ranks(points, directions) if points else []
    by_finish = sorted(outcomes, key=lambda o: (o.finished_at, o.number))
    history = pareto.hypervolume_history([o.values for o in by_finish], directions, [reference(n) for n in names])
    return Front(list(names), list(directions), outcomes, ranks, history, table.tally(rows, Outcome.FAILED),
                 table.tally(rows, Outcome.PRUNED), table.tally(rows, Outcome.INFEASIBLE))


def from_study(study: optuna.Study, names: Sequence[str], directions: Sequence[str]) -> Front:
    return from_rows(table.from_study(study), names, directions)


def write_files(front: Front, directory: Path, title: str) -> list[Path]:
    """pareto.csv, pareto.png (two objectives), hypervolume.png and summary.json in ``directory``."""
    files = [write_table(directory / "pareto.csv", front)]
    if len(front.names) == 2 and front.outcomes:
        files.append(plots.plot_front(front.outcomes, front.ranks, front.names, directory / "pareto.png",
                                      title=f"{title}: Pareto front"))
    if front.history:
        files.append(plots.plot_hypervolume(front.history, directory / "hypervolume.png",
                                            title="hypervolume over trials"))
    (directory / "summary.json").write_text(json.dumps(front.summary(), indent=1))
    return files + [directory / "summary.json"]


def write_table(path: Path, front: Front) -> Path:
    """One row per complete trial: its rank, objectives, and every declared knob."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "pareto_rank", *front.names, *(k.name for k in KNOBS)])
        for o, r in zip(front.outcomes, front.ranks):
            writer.writerow([o.number, r, *o.values, *row(o.config)])
    return path


def description(front: Front, limit: int = 10) -> str:
    """The front in a few lines of Markdown: what the search found, for the parent run's description
    in the MLflow UI (its ``mlflow.note.content``), best first by the first objective."""
    head = (f"**Pareto front: {front.ranks.count(0)} of {len(front.outcomes)} completed trials** "
            f"({front.failed} failed, {front.pruned} pruned, {front.infeasible} infeasible; "
            f"hypervolume {front.hypervolume:.5g}). Child runs on it are tagged `pareto_optimal = 'true'`.")
    if not front.outcomes:
        return head
    first = 1 if front.directions[0] == "max" else -1
    points = sorted((o for o, r in zip(front.outcomes, front.ranks) if r == 0), key=lambda o: -first * o.values[0])
    lines = [head, "", "| trial | " + " | ".join(front.names) + " | config |",
             "|---:|" + "---:|" * len(front.names) + "---|"]
    lines += [f"| {o.number} | " + " | ".join(f"{v:.4g}" for v in o.values) + f" | {describe(o.config)} |"
              for o in points[:limit]]
    if len(points) > limit:
        lines.append(f"\n... and {len(points) - limit} more (pareto.csv)")
    return "\n".join(lines)


def print_table(front: Front) -> None:
    names = front.names
    print(f"\nPareto front ({front.ranks.count(0)} of {len(front.outcomes)} completed trials; * = non-dominated; "
          f"hypervolume {front.hypervolume:.5g}):")
    print(f"  {'trial':>5} {'':1} " + " ".join(f"{n:>14}" for n in names) + "  config")
    first = 1 if front.directions[0] == "max" else -1
    for o, r in sorted(zip(front.outcomes, front.ranks), key=lambda x: (x[1], -first * x[0].values[0])):
        values = " ".join(f"{v:>14.4g}" for v in o.values)
        print(f"  {o.number:>5} {'*' if r == 0 else ' '} {values}  {describe(o.config)}")
