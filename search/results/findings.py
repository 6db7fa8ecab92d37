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

Parameter importance is Optuna's (``optuna.importance.get_param_importances``, its default
PED-ANOVA evaluator), one table per objective. Ray-free.
"""

from __future__ import annotations

import json
import math
import statistics
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna

from stiltsearch.search.results import pareto, table
from stiltsearch.search.results.table import FAMILIES, Row
from stiltsearch.spaces.knobs import describe
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
    importance: dict[str, dict[str, float]] = field(default_factory=dict)  # objective -> {parameter: importance}
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


def report(study: optuna.Study, cfg: Any, trials_dir: Path, directory: Path, title: str) -> tuple[Findings, list[Path]]:
    """A search's findings (``cfg``: its SearchConfig) and the report written into ``directory``:
    what the driver does at the end of a search and ``stiltsearch report`` does on demand."""
    result = findings(study, cfg.objective_names, cfg.directions, nli=nli_target(list(cfg.target_tasks)),
                      trials_dir=trials_dir, seed=cfg.training.seed)
    return result, write_report(result, directory, title)


def nli_target(target_tasks: list[str]) -> str | None:
    """The search's NLI target, the one question 1 is about (None: it has none)."""
    from stiltsearch.trainables.tasks import nli_target as first_nli

    return first_nli(target_tasks)


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
    _importance(result, study)
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


def _importance(result: Findings, study: optuna.Study) -> None:
    numbers = {t.number for t in result.trials}
    if len(numbers) < 2:
        result.importance_problem = "fewer than 2 complete trials"
        return
    feasible = optuna.create_study(directions=study.directions)  # in memory: the trials the fronts are made of
    feasible.add_trials([t for t in study.get_trials(deepcopy=False) if t.number in numbers])
    for i, name in enumerate(result.names):
        # PED-ANOVA explains what makes ``target`` low: a maximised objective goes in negated
        sign = -1.0 if result.directions[i] == "max" else 1.0

        def target(trial: optuna.trial.FrozenTrial, i: int = i, sign: float = sign) -> float:
            return sign * trial.values[i]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "computes the importances ... low target values"
                scores = optuna.importance.get_param_importances(feasible, target=target)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. a parameter that never varied
            result.importance_problem = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            return
        result.importance[name] = {k: float(v) for k, v in scores.items()}


# -- rendering --------------------------------------------------------------------------------------

FEW = 3  # a family with fewer complete trials than this gets a warning in the headline
COLOURS = {"stilts": "#d62728", "direct": "#1f77b4"}
LABELS = {"stilts": "STILTs (intermediate tasks)", "direct": "direct fine-tuning (no intermediate task)"}


def sentences(result: Findings) -> list[str]:
    """The answer to the trade-off question in words, from the figures (the page's headline)."""
    lines = [f"{len(result.trials)} complete trials: {sum(t.family == 'stilts' for t in result.trials)} with "
             f"intermediate tasks, {sum(t.family == 'direct' for t in result.trials)} without. Hypervolume of the "
             f"STILTs front {result.hypervolume['stilts']:.5g}, of the direct front {result.hypervolume['direct']:.5g}."]
    sparse = [family for family in FAMILIES if 0 < sum(t.family == family for t in result.trials) < FEW]
    if sparse:  # e.g. 511 of the 512 task subsets are non-empty: a search samples few direct trials
        lines.append(f"Read the comparison with care: the {' and '.join(LABELS[f] for f in sparse)} family has fewer "
                     f"than {FEW} trials, so its front is a few points at most.")
    if len(result.names) == 2:
        score, speed = result.names
        pair = result.matched.get("speedup_at_matched_score")
        lines.append(f"Speed-up at matched {score}: {result.speedup_at_matched_score:.3g}x (trial {pair[1]} against "
                     f"direct trial {pair[0]})." if pair and result.speedup_at_matched_score is not None
                     else f"Speed-up at matched {score}: no STILTs trial scores as well as the best direct one.")
        pair = result.matched.get("score_gain_at_matched_speed")
        lines.append(f"{score} gain at matched {speed}: {result.score_gain_at_matched_speed:+.3g} (trial {pair[1]} "
                     f"against direct trial {pair[0]})." if pair and result.score_gain_at_matched_speed is not None
                     else f"{score} gain at matched {speed}: no STILTs trial is as fast as the fastest direct one.")
    if result.nli and result.baseline is not None and result.non_english_mean(result.baseline) is not None:
        base = result.non_english_mean(result.baseline)
        by_number = {t.number: t for t in result.trials}
        said = []
        for family in FAMILIES:
            n = result.fastest_at_baseline_accuracy.get(family)
            said.append(f"the fastest {'STILTs' if family == 'stilts' else 'direct'} trial reaching it is {n} "
                        f"({result.names[1]} {by_number[n].values[1]:.4g}, non-English "
                        f"{result.non_english_mean(n):.1f})" if n is not None
                        else f"no {'STILTs' if family == 'stilts' else 'direct'} trial reaches it")
        lines.append(f"At the baseline's non-English {result.nli} accuracy ({base:.1f}, trial {result.baseline}): "
                     + "; ".join(said) + ".")
    return lines + confirmed_sentences(result)


def confirmed_sentences(result: Findings) -> list[str]:
    """What the confirmation says (``stiltsearch confirm``): each point's mean ± standard deviation,
    the front on the means, what dominates what beyond noise, the comparisons on the means."""
    if not result.confirmed:
        return []
    runs = sorted({len(c.runs) for c in result.confirmed})
    lines = [f"Confirmed: {len(result.confirmed)} points (the search's front and its baseline), each run under "
             f"{'/'.join(map(str, runs))} training seeds; mean ± standard deviation over the runs:"]
    for c in result.confirmed:
        shown = ", ".join(f"{name} {m:.4g} ± {sd:.2g}" for name, m, sd in zip(result.names, c.mean, c.sd))
        nli = (f", non-English {result.nli} {statistics.fmean(c.non_english):.1f} ± "
               f"{statistics.stdev(c.non_english) if len(c.non_english) > 1 else 0.0:.1f}" if c.non_english else "")
        role = "baseline" if c.number == result.baseline else ("STILTs" if c.family == "stilts" else "direct")
        lines.append(f"trial {c.number} ({role}, seeds {', '.join(map(str, c.seeds))}): {shown}{nli}.")
    lines.append(f"On the means, the front is trial{'s' if len(result.confirmed_front) > 1 else ''} "
                 f"{', '.join(map(str, result.confirmed_front))}.")
    if result.beyond_noise:
        lines.append(f"Dominates beyond noise (on the means, and by more than {NOISE_SE:g} standard errors in one "
                     "objective): " + "; ".join(f"{a} over {b}" for a, b in result.beyond_noise) + ".")
    else:
        lines.append(f"No confirmed point dominates another beyond noise ({NOISE_SE:g} standard errors).")
    for name, value in result.confirmed_matched.items():
        shown = f"{value:.3g}x" if name.startswith("speedup") else f"{value:+.3g}"
        lines.append(f"On the confirmed means, {name.replace('_', ' ')}: {shown}.")
    return lines


def _confirmed_figure(result: Findings) -> Any:
    """The confirmed points' means with ±1 standard deviation bars, per family."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for family in FAMILIES:
        points = [c for c in result.confirmed if c.family == family]
        if not points:
            continue
        figure.add_trace(go.Scatter(
            x=[c.mean[1] for c in points], y=[c.mean[0] for c in points], mode="markers",
            error_x={"type": "data", "array": [c.sd[1] for c in points]},
            error_y={"type": "data", "array": [c.sd[0] for c in points]},
            marker={"size": 11, "color": COLOURS[family]}, name=LABELS[family],
            text=[f"trial {c.number}{' (baseline)' if c.number == result.baseline else ''}<br>{len(c.runs)} runs, "
                  f"seeds {', '.join(map(str, c.seeds))}" for c in points], hoverinfo="text+x+y"))
    figure.update_layout(title="confirmed: mean ± standard deviation over training seeds", xaxis_title=result.names[1],
                         yaxis_title=result.names[0], height=500, legend={"orientation": "h", "y": -0.2})
    return figure


def _per_language(result: Findings) -> Any:
    """Heatmap: each front point's non-English NLI accuracy minus the baseline's, per language."""
    import plotly.graph_objects as go

    base = result.non_english.get(result.baseline) if result.baseline is not None else None
    points = [n for family in FAMILIES for n in result.fronts[family] if n in result.non_english]
    if not base or not points:
        return None
    languages = sorted(base)
    rows = [[result.non_english[n].get(lang, float("nan")) - base[lang] for lang in languages] for n in points]
    labels = [f"trial {n} ({'STILTs' if n in result.fronts['stilts'] else 'direct'})" for n in points]
    figure = go.Figure(go.Heatmap(z=rows, x=languages, y=labels, colorscale="RdBu", zmid=0,
                                  text=[[f"{v:+.1f}" for v in row] for row in rows], texttemplate="%{text}"))
    figure.update_layout(title=f"front points: non-English {result.nli} accuracy minus the baseline's (points)",
                         height=120 + 40 * len(points))
    return figure


def write_report(result: Findings, directory: Path, title: str) -> list[Path]:
    """report.html (self-contained: plotly's JavaScript inlined), report.png and findings.json."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    directory.mkdir(parents=True, exist_ok=True)
    figures = []
    if len(result.names) == 2:
        front = go.Figure()
        by_number = {t.number: t for t in result.trials}
        for family in FAMILIES:
            members = [t for t in result.trials if t.family == family]
            front.add_trace(go.Scatter(
                x=[t.values[1] for t in members], y=[t.values[0] for t in members], mode="markers",
                name=f"{LABELS[family]}: all", marker={"color": COLOURS[family], "opacity": 0.35, "size": 8},
                text=[f"trial {t.number}<br>{describe(t.config)}" for t in members], hoverinfo="text+x+y"))
            on = sorted((by_number[n] for n in result.fronts[family]), key=lambda t: t.values[1])
            front.add_trace(go.Scatter(
                x=[t.values[1] for t in on], y=[t.values[0] for t in on], mode="lines+markers",
                # vertical first: between two front points (by speed) the area reached is the slower
                # point's score down to the faster one's, as the PNG's steps-pre draws it
                line={"shape": "vh", "color": COLOURS[family]}, marker={"size": 11, "color": COLOURS[family]},
                name=f"{LABELS[family]}: front", text=[f"trial {t.number}<br>{describe(t.config)}" for t in on],
                hoverinfo="text+x+y"))
        if result.baseline is not None:
            b = by_number[result.baseline]
            front.add_trace(go.Scatter(x=[b.values[1]], y=[b.values[0]], mode="markers", name="baseline",
                                       marker={"size": 18, "symbol": "circle-open", "color": "black", "line": {"width": 2}},
                                       text=[f"baseline, trial {b.number}"], hoverinfo="text+x+y"))
        front.update_layout(title=f"{title}: STILTs against direct fine-tuning", xaxis_title=result.names[1],
                            yaxis_title=result.names[0], height=600, legend={"orientation": "h", "y": -0.18})
        figures.append(front)
    if result.confirmed and len(result.names) == 2:
        figures.append(_confirmed_figure(result))
    if (languages := _per_language(result)) is not None:
        figures.append(languages)
    progress = make_subplots(rows=1, cols=2, subplot_titles=("hypervolume over trials", "hypervolume over compute"))
    steps = list(range(1, len(result.hypervolume_history) + 1))
    progress.add_trace(go.Scatter(x=steps, y=result.hypervolume_history, mode="lines+markers", name="over trials"), 1, 1)
    progress.add_trace(go.Scatter(x=result.compute_seconds, y=result.hypervolume_history, mode="lines+markers",
                                  name="over trial-seconds"), 1, 2)
    progress.update_xaxes(title_text="trials completed", row=1, col=1)
    progress.update_xaxes(title_text="trial-seconds spent", row=1, col=2)
    progress.update_layout(height=380, showlegend=False)
    figures.append(progress)
    if any(result.on_front.values()):
        used = make_subplots(rows=1, cols=2, subplot_titles=("intermediate tasks", "translate-train languages"))
        for col, kind in enumerate(("tasks", "languages"), start=1):
            counts = result.on_front.get(kind, {})
            used.add_trace(go.Bar(x=list(counts), y=list(counts.values())), 1, col)
        used.update_layout(title="on the search's Pareto front: how many of its trials use each", height=360,
                           showlegend=False)
        figures.append(used)
    if result.importance:
        bars = make_subplots(rows=1, cols=len(result.importance), subplot_titles=list(result.importance))
        for col, scores in enumerate(result.importance.values(), start=1):
            top = sorted(scores.items(), key=lambda kv: kv[1])[-12:]
            bars.add_trace(go.Bar(x=[v for _, v in top], y=[k for k, _ in top], orientation="h"), 1, col)
        bars.update_layout(title="parameter importance (Optuna, PED-ANOVA)", height=420, showlegend=False)
        figures.append(bars)
    headline = "".join(f"<p>{line}</p>" for line in sentences(result))
    if result.importance_problem:
        headline += f"<p>Parameter importance not computed: {result.importance_problem}.</p>"
    parts = [figure.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, figure in enumerate(figures)]
    html = directory / "report.html"
    html.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}: report</title></head>"
                    f"<body style='font-family: sans-serif; max-width: 1100px; margin: auto'>"
                    f"<h1>{title}</h1>{headline}{''.join(parts)}</body></html>")
    data = directory / "findings.json"
    data.write_text(json.dumps({**asdict(result), "trials": [asdict(t) for t in result.trials],
                                "confirmed": [asdict(c) | {"mean": c.mean, "sd": c.sd} for c in result.confirmed]},
                               indent=1, default=str))
    return [html, _png(result, directory / "report.png", title), data]


def _png(result: Findings, path: Path, title: str) -> Path:
    """The two fronts as a static image (matplotlib), for places that show no HTML."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confirmed = bool(result.confirmed) and len(result.names) == 2
    fig, axes = plt.subplots(1, 2 if confirmed else 1, figsize=(13 if confirmed else 7, 5), dpi=120, squeeze=False)
    ax = axes[0][0]
    by_number = {t.number: t for t in result.trials}
    if len(result.names) == 2:
        for family in FAMILIES:
            members = [t for t in result.trials if t.family == family]
            ax.scatter([t.values[1] for t in members], [t.values[0] for t in members], c=COLOURS[family], alpha=0.3)
            on = sorted((by_number[n] for n in result.fronts[family]), key=lambda t: t.values[1])
            ax.plot([t.values[1] for t in on], [t.values[0] for t in on], c=COLOURS[family], marker="o",
                    drawstyle="steps-pre", label=LABELS[family])
        if result.baseline is not None:
            b = by_number[result.baseline]
            ax.scatter([b.values[1]], [b.values[0]], s=160, facecolors="none", edgecolors="k", label="baseline")
        ax.set_xlabel(result.names[1])
        ax.set_ylabel(result.names[0])
        ax.legend(fontsize=8)
    ax.set_title(f"{title}: STILTs against direct fine-tuning")
    ax.grid(alpha=0.3)
    if confirmed:
        right = axes[0][1]
        for family in FAMILIES:
            points = [c for c in result.confirmed if c.family == family]
            if points:
                right.errorbar([c.mean[1] for c in points], [c.mean[0] for c in points], xerr=[c.sd[1] for c in points],
                               yerr=[c.sd[0] for c in points], fmt="o", c=COLOURS[family], capsize=3, label=LABELS[family])
                for c in points:
                    right.annotate(str(c.number), (c.mean[1], c.mean[0]), fontsize=7, xytext=(3, 3),
                                   textcoords="offset points")
        right.set_xlabel(result.names[1])
        right.set_ylabel(result.names[0])
        right.set_title("confirmed: mean ± sd over training seeds")
        right.legend(fontsize=8)
        right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
