"""``stiltsearch report``: what a search says about STILTs against fine-tuning directly on the
target, as data (:func:`findings`), then as one self-contained interactive page and a PNG
(:func:`write_report`).

The trials split into two families by their intermediate-task subset: **STILTs** (one or more
intermediate tasks) and **direct** fine-tuning (none; the baseline is one of them). Each family
gets its own Pareto front and hypervolume (from the objectives' declared references, as the
search's own front). With two objectives, the first read as the score and the second as the
speed (the order the config gives them), the two fronts are compared where they meet:

- *speed-up at matched score*: the direct front's best-scoring trial against the fastest STILTs
  trial that scores at least as well (its speed over the direct one's; > 1: STILTs buys speed);
- *score gain at matched speed*: the direct front's fastest trial against the best-scoring STILTs
  trial that is at least as fast (score difference, in the score's units).

Question 1 reads the non-English accuracy of the search's NLI target (the first target task with
the three NLI labels: ``xnli``, ``toy_xnli``) from each trial's result: at the baseline's mean
non-English accuracy, the fastest trial of each family that reaches it, and each front point's
per-language scores against the baseline's.

Parameter importance: :mod:`.importance` (Optuna's PED-ANOVA, where it means something). Ray-free.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from stiltsearch.search.results import pareto, table
from stiltsearch.search.results.importance import Importance, importances
from stiltsearch.search.results.table import FAMILIES, Row
from stiltsearch.trainables.objectives import reference
from stiltsearch.trainables.outcome import Outcome

Trial = Row  # a trial of the report: one row of the search's table (:mod:`.table`)


@dataclass(frozen=True)
class Confirmed:
    """A confirmed point (``stiltsearch confirm``): one trial's knobs run under several training
    seeds, the trial's own run first."""

    number: int  # the trial confirmed
    family: str
    seeds: list[int]
    runs: list[tuple[float, ...]]  # each completed run's objectives, in the seeds' order
    non_english: list[float] = field(default_factory=list)  # question 1: each run's mean non-English NLI accuracy

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(statistics.fmean(column) for column in zip(*self.runs))

    @property
    def sd(self) -> tuple[float, ...]:
        """The sample standard deviation of each objective over the runs (0 with one run)."""
        return tuple(statistics.stdev(column) if len(column) > 1 else 0.0 for column in zip(*self.runs))


@dataclass
class Findings:
    names: list[str]
    directions: list[str]
    trials: list[Trial]  # complete and feasible, by number
    baseline: int | None  # the baseline trial's number (no intermediate task, English only)
    fronts: dict[str, list[int]]  # family -> its own front's trial numbers, best first by the first objective
    hypervolume: dict[str, float]  # family -> its front's hypervolume; "all" -> the search's
    speedup_at_matched_score: float | None
    score_gain_at_matched_speed: float | None
    matched: dict[str, tuple[int, int]] = field(default_factory=dict)  # comparison -> (direct trial, STILTs trial)
    importance: dict[str, list[Importance]] = field(default_factory=dict)  # objective -> largest first (.importance)
    importance_problem: str | None = None
    hypervolume_history: list[float] = field(default_factory=list)  # after each completion, in order
    compute_seconds: list[float] = field(default_factory=list)  # trial-seconds spent by each completion
    nli: str | None = None  # question 1's task
    non_english: dict[int, dict[str, float]] = field(default_factory=dict)  # trial -> {language: NLI accuracy}
    fastest_at_baseline_accuracy: dict[str, int | None] = field(default_factory=dict)  # family -> trial
    on_front: dict[str, dict[str, int]] = field(default_factory=dict)  # "tasks"/"languages" -> {name: front trials using it}
    confirmed: list[Confirmed] = field(default_factory=list)  # by trial number; empty before a confirm
    confirmed_front: list[int] = field(default_factory=list)  # confirmed points non-dominated on their means
    beyond_noise: list[tuple[int, int]] = field(default_factory=list)  # (a, b): a dominates b beyond noise
    confirmed_matched: dict[str, float] = field(default_factory=dict)  # _match on the confirmed means

    def non_english_mean(self, number: int) -> float | None:
        scores = self.non_english.get(number)
        return sum(scores.values()) / len(scores) if scores else None

    def summary(self) -> dict[str, float]:
        """The figures as MLflow metrics of the parent run."""
        out = {f"hypervolume_{family}": self.hypervolume[family] for family in FAMILIES}
        if self.speedup_at_matched_score is not None:
            out["speedup_at_matched_score"] = self.speedup_at_matched_score
        if self.score_gain_at_matched_speed is not None:
            out["score_gain_at_matched_speed"] = self.score_gain_at_matched_speed
        out |= {f"confirmed_{k}": v for k, v in self.confirmed_matched.items()}
        return out


def _better(a: float, b: float, direction: str) -> bool:
    """a at least as good as b."""
    return a >= b if direction == "max" else a <= b


def _best(trials: list[Trial], index: int, direction: str) -> Trial | None:
    key = (lambda t: t.values[index]) if direction == "max" else (lambda t: -t.values[index])
    return max(trials, key=key, default=None)


def findings(study: optuna.Study, names: list[str], directions: list[str], *, nli: str | None = None,
             trials_dir: Path | None = None, seed: int = 0) -> Findings:
    """The report's data from a study (complete, feasible trials only); with ``nli`` and the
    search's ``trials_dir``, question 1's from the trials' per-language results; with
    confirmations in the study, each confirmed point's runs (``seed``: the search's own training seed)."""
    rows = table.from_study(study)
    trials = table.searched(rows)
    refs = tuple(reference(n) for n in names)
    fronts: dict[str, list[int]] = {}
    volumes: dict[str, float] = {}
    for family in FAMILIES:
        front = family_front(trials, family, directions)
        front.sort(key=lambda t: -t.values[0] if directions[0] == "max" else t.values[0])
        fronts[family] = [t.number for t in front]
        volumes[family] = pareto.hypervolume([t.values for t in front], directions, refs) if front else 0.0
    volumes["all"] = pareto.hypervolume([t.values for t in trials], directions, refs) if trials else 0.0
    baseline = first.number if (first := table.baseline(rows)) is not None else None
    result = Findings(list(names), list(directions), trials, baseline, fronts, volumes, None, None)
    front_configs = [t.config for t, on in zip(trials, pareto.nondominated([t.values for t in trials], directions)) if on]
    for kind, key in (("tasks", "intermediate_tasks"), ("languages", "train_languages")):
        counts: dict[str, int] = {}
        for config in front_configs:
            for name in config.get(key) or ():
                counts[name] = counts.get(name, 0) + 1
        result.on_front[kind] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    if len(names) == 2:
        _match(result)
    by_finish = sorted(trials, key=lambda t: (t.finished_at, t.number))
    result.hypervolume_history = pareto.hypervolume_history([t.values for t in by_finish], directions, refs)
    spent, total = [], 0.0
    seconds = {t.number: t.seconds for t in trials}
    for t in by_finish:
        total += seconds[t.number]
        spent.append(total)
    result.compute_seconds = spent
    result.importance, result.importance_problem = importances(study, {t.number for t in trials}, names, directions)
    if nli is not None and trials_dir is not None:
        _question_1(result, nli, trials_dir)
    _confirmations(result, table.confirmations(rows), seed, trials_dir)
    return result


def family_front(trials: list[Trial], family: str, directions: list[str]) -> list[Trial]:
    """The non-dominated trials of one family, by number."""
    members = [t for t in trials if t.family == family]
    return [t for t, on in zip(members, pareto.nondominated([t.values for t in members], directions)) if on]


def _non_english(trials_dir: Path, number: int, nli: str) -> dict[str, float]:
    """A trial's NLI accuracy per non-English language, from its result file."""
    from stiltsearch.trainables import trialdir

    prefix = f"eval/{nli}/"
    found = trialdir.read_result(trialdir.trial_path(trials_dir, number)) or {}
    return {k[len(prefix):]: float(v) for k, v in found.items()
            if k.startswith(prefix) and k[len(prefix):] != "en" and "/" not in k[len(prefix):]}


def _question_1(result: Findings, nli: str, trials_dir: Path) -> None:
    result.nli = nli
    for t in result.trials:
        if scores := _non_english(trials_dir, t.number, nli):
            result.non_english[t.number] = scores
    base = result.non_english_mean(result.baseline) if result.baseline is not None else None
    if base is None or len(result.names) != 2:
        return
    for family in FAMILIES:
        reaching = [t for t in result.trials if t.family == family
                    and (mean := result.non_english_mean(t.number)) is not None and mean >= base]
        best = _best(reaching, 1, result.directions[1])
        result.fastest_at_baseline_accuracy[family] = best.number if best else None


def _match(result: Findings) -> None:
    by_number = {t.number: t for t in result.trials}
    matched = compare([by_number[n] for n in result.fronts["direct"]], [t for t in result.trials if t.family == "stilts"],
                      result.directions)
    if "speedup_at_matched_score" in matched:
        result.speedup_at_matched_score, pair = matched["speedup_at_matched_score"]
        result.matched["speedup_at_matched_score"] = pair
    if "score_gain_at_matched_speed" in matched:
        result.score_gain_at_matched_speed, pair = matched["score_gain_at_matched_speed"]
        result.matched["score_gain_at_matched_speed"] = pair


def compare(direct: list[Trial], stilts: list[Trial], directions: list[str]) -> dict[str, tuple[float, tuple[int, int]]]:
    """The two comparisons of the module doc, each with its (direct trial, STILTs trial): the
    direct front's best-scoring point against the fastest STILTs point that scores as well, and
    its fastest point against the best-scoring STILTs point that is as fast."""
    (score_dir, speed_dir) = directions
    out: dict[str, tuple[float, tuple[int, int]]] = {}
    best_direct = _best(direct, 0, score_dir)
    if best_direct is not None:
        matching = [t for t in stilts if _better(t.values[0], best_direct.values[0], score_dir)]
        fastest = _best(matching, 1, speed_dir)
        if fastest is not None and best_direct.values[1]:
            ratio = fastest.values[1] / best_direct.values[1]
            out["speedup_at_matched_score"] = (ratio if speed_dir == "max" else 1 / ratio,
                                               (best_direct.number, fastest.number))
    fastest_direct = _best(direct, 1, speed_dir)
    if fastest_direct is not None:
        matching = [t for t in stilts if _better(t.values[1], fastest_direct.values[1], speed_dir)]
        scoring = _best(matching, 0, score_dir)
        if scoring is not None:
            gain = scoring.values[0] - fastest_direct.values[0]
            out["score_gain_at_matched_speed"] = (gain if score_dir == "max" else -gain,
                                                  (fastest_direct.number, scoring.number))
    return out


NOISE_SE = 2.0  # "beyond noise": a difference of means larger than this many standard errors


def beyond_noise(a: Confirmed, b: Confirmed, directions: list[str]) -> bool:
    """``a`` dominates ``b`` on the means, and in at least one objective by more than
    :data:`NOISE_SE` standard errors of the difference (Welch's: sqrt(sd_a^2/n_a + sd_b^2/n_b)).
    Points with a single run have no noise estimate, so nothing about them is beyond it."""
    if len(a.runs) < 2 or len(b.runs) < 2 or not pareto.dominates(a.mean, b.mean, directions):
        return False
    for i, direction in enumerate(directions):
        gap = (a.mean[i] - b.mean[i]) * (1 if direction == "max" else -1)
        se = math.sqrt(a.sd[i] ** 2 / len(a.runs) + b.sd[i] ** 2 / len(b.runs))
        if gap > NOISE_SE * se:
            return True
    return False


def _confirmations(result: Findings, runs: list[Row], seed: int, trials_dir: Path | None) -> None:
    """Each confirmed trial with its confirmations' runs; the front on the means, which points
    dominate which beyond noise, and the two comparisons on the means."""
    by_number = {t.number: t for t in result.trials}
    groups: dict[int, list[Row]] = {}
    for run in runs:
        assert run.confirms is not None
        groups.setdefault(run.confirms, []).append(run)
    for number in sorted(groups):
        trial = by_number.get(number)
        if trial is None:  # the confirmed trial itself is not a complete, feasible one
            continue
        again = sorted(groups[number], key=lambda t: t.seed or 0)
        non_english = []
        if result.nli is not None and trials_dir is not None:
            means: list[float | None] = [result.non_english_mean(number)] + [
                statistics.fmean(found.values()) if (found := _non_english(trials_dir, t.number, result.nli)) else None
                for t in again]
            non_english = [m for m in means if m is not None]
        result.confirmed.append(Confirmed(number, trial.family, [seed] + [t.seed or 0 for t in again],
                                          [trial.values] + [t.values for t in again], non_english))
    if not result.confirmed:
        return
    result.confirmed_front = [c.number for c, on in zip(result.confirmed, pareto.nondominated(
                                  [c.mean for c in result.confirmed], result.directions))
                              if on]
    result.beyond_noise = [(a.number, b.number) for a in result.confirmed for b in result.confirmed
                           if a is not b and beyond_noise(a, b, result.directions)]
    if len(result.names) == 2:
        points = [Row(c.number, Outcome.COMPLETE, c.mean, by_number[c.number].config) for c in result.confirmed]
        matched = compare(family_front(points, "direct", result.directions), [p for p in points if p.family == "stilts"],
                          result.directions)
        result.confirmed_matched = {name: value for name, (value, _) in matched.items()}
