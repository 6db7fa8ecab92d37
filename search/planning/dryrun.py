"""``stiltsearch run CONFIG --dry-run``: the trial plan, phase by phase, with nothing trained, and
what the search will cost.

It resolves what a search would: the models and their depths, the space, the baseline and a few
sampled trials (random draws from the space, like the search's first trials), and for each trial its
phases, tasks, languages, steps and batch sizes, from the same arithmetic a trial uses
(:mod:`stiltsearch.trainables.plan`), then its tokens, FLOPs and GPU-hours (:mod:`.cost`), and the
whole search's under its scheduler. Row counts are the datasets' published training-set sizes;
nothing is downloaded. Lines are built as data first (:func:`plan_lines`), printed second.
"""

from __future__ import annotations

import statistics
from typing import Any

from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.launch.preflight import missing_resources
from stiltsearch.search.planning import cost
from stiltsearch.spaces.knobs import SPACE_CONFIG_KNOBS, describe
from stiltsearch.trainables import groups, plan
from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.tasks import TASKS
from stiltsearch.trainables.tasks.base import Task

COST_DRAWS = 256  # random trials the search's mean cost is estimated from (pure arithmetic: milliseconds)


def _train_rows(task: Task) -> int:
    """English training rows: published size (real tasks) or generated size (toy tasks)."""
    return int(getattr(task, "train_rows", 0) or getattr(task, "sizes", {}).get("train", 0))


def _sampled_params(cfg: SearchConfig, trials: int) -> list[dict[str, Any]]:
    """The baseline's and the first random trials' parameters, as the searcher would draw them."""
    import optuna

    from stiltsearch.search.config.compose import space_spec
    from stiltsearch.search.study.core import startup_trials, study_directions
    from stiltsearch.spaces import baseline_point, stilts_space
    from stiltsearch.spaces.startup import balanced_rows

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = space_spec(cfg)
    study = optuna.create_study(directions=study_directions(cfg.directions),
                                sampler=optuna.samplers.RandomSampler(seed=cfg.search.seed))
    study.enqueue_trial(baseline_point(spec))
    for row in balanced_rows(spec, startup_trials(cfg.search.num_trials) - 1, cfg.search.seed):
        study.enqueue_trial(row)  # the search's start-up design, as its searcher enqueues it
    return [stilts_space(study.ask(), spec) for _ in range(trials)]


class TrialPlan:
    """One trial's phases as lines and as :class:`~.cost.Work` (its training, at each rung and at
    the end), from the same step rules a trial uses."""

    def __init__(self, cfg: SearchConfig, params: dict[str, Any]) -> None:
        tr = self.training = cfg.training
        self.cfg, self.params = cfg, params
        self.tasks = {name: TASKS[name]() for name in cfg.target_tasks + tuple(params["intermediate_tasks"])}
        self.lines: list[str] = []
        self.phase2: list[cost.Work] = []
        self.phase3: list[cost.Work] = []  # one entry per group of targets that train one model
        layers = self._layers()
        chosen = params["intermediate_tasks"]
        if chosen:
            rows = {t: _train_rows(self.tasks[t]) for t in chosen}
            steps = plan.phase2_steps(tr.recipes, rows, tr.batch_size, tr.intermediate_steps)
            weights = plan.mixture_weights(rows, tr.sampling_temperature)  # how the trial samples each step's task
            share = {name: steps * w / max(1e-9, sum(weights.values())) for name, w in weights.items()}
            self.phase2 = [cost.Work(f"phase 2: {t}", share[t] * plan.batch_size(tr.recipes, t, tr.batch_size)
                                     * plan.sequences_per_example(self.tasks[t]), tr.length(self.tasks[t], tr.max_length), layers)
                           for t in chosen]
            detail = ", ".join(f"{t} ({rows[t]:,} rows, batch {plan.batch_size(tr.recipes, t, tr.batch_size)})" for t in chosen)
            self.lines.append(f"  phase 2: {steps:,} steps at lr {params['intermediate_lr']:.2g} on {detail}")
        else:
            self.lines.append("  phase 2: skipped (no intermediate task)")
        trial_params = TrialParams(train_languages=tuple(params["train_languages"]),
                                   max_seq_length=params["max_seq_length"])
        targets = [self.tasks[name] for name in cfg.target_tasks]
        for group in groups.shared_groups(tr, trial_params, targets):
            self._target_group(group, min(params["layers_kept"], layers), trial_params)
        served = next((t for t in cfg.target_tasks if self.tasks[t].kind.trained), cfg.target_tasks[0])
        pairs = sum(len(self._evaluated(self.tasks[t])) for t in cfg.target_tasks)
        self.lines.append(f"  throughput: {served}'s served model on <= {cfg.throughput.max_sequences} dev inputs from "
                          f"{pairs} (task, language) sets, {cfg.throughput.repeats} timed passes")

    def _layers(self) -> int:
        from stiltsearch.search.launch.models import model_depths

        depths = model_depths(self.cfg)
        return depths.get(self.params.get("model") or "", max(depths.values()))

    def _evaluated(self, task: Task) -> tuple[str, ...]:
        return plan.scored_languages(task.eval_languages("dev"), self.cfg.eval_languages.get(task.name))

    def _target_group(self, group: list[Task], layers: int, trial_params: TrialParams) -> None:
        tr, params = self.training, self.params
        first = group[0]
        for task in group:
            evaluated = self._evaluated(task)
            scored = f"{task.metric} on dev in {len(evaluated)} languages ({' '.join(evaluated)})"
            if not task.kind.trained:
                self.lines.append(f"  phase 3: {task.name}: no training; {scored}")
            elif task is not first:
                self.lines.append(f"  phase 3: {task.name}: scored with {first.name}'s model (the same training); {scored}")
            else:
                languages = list(plan.train_languages(trial_params, task))
                total = _train_rows(task) * len(languages)  # translated training sets are the size of the English one
                steps = plan.phase3_steps(tr.recipes, task.name, total, tr.batch_size, tr.target_steps)
                length = tr.length(task, params["max_seq_length"])
                batch = plan.batch_size(tr.recipes, task.name, tr.batch_size)
                size = f"~{total:,} rows" if total else "rows counted when read"  # a file-only set (Mewsli-X's pairs)
                self.lines.append(f"  phase 3: {task.name}: train {'+'.join(languages)} ({size}), {steps:,} steps at "
                                  f"batch {batch}, length {length}; {scored}")
                self.phase3.append(cost.Work(f"phase 3: {task.name}", steps * batch * plan.sequences_per_example(task), length, layers))

    def work(self, rungs: tuple[float, ...], reach: tuple[float, ...]) -> tuple[list[cost.Work], list[cost.Work]]:
        """(The expected work under a scheduler whose trials reach each rung and the end with the
        shares ``reach``, the work of a trial that runs to its end). At rung ``b`` phase 2 has gone on
        to ``b`` of its steps and each target is fine-tuned afresh for ``b`` of its own."""
        def scaled(items: list[cost.Work], factor: float) -> list[cost.Work]:
            return [cost.Work(w.what, w.sequences * factor, w.length, w.layers) for w in items]

        expected: list[cost.Work] = []
        finisher: list[cost.Work] = []
        previous = 0.0
        for budget, share in zip((*rungs, 1.0), reach):
            step = scaled(self.phase2, budget - previous) + scaled(self.phase3, budget)
            expected += scaled(step, share)
            finisher += step
            previous = budget
        return expected, finisher


def _shape(cfg: SearchConfig, params: dict[str, Any]) -> cost.Shape | None:
    if cfg.model == "toy":
        hidden = cfg.toy_model.hidden
        return cost.Shape(max(cfg.toy_model.layers), hidden, 4 * hidden)
    from stiltsearch.search.launch.models import model_name

    chosen = params.get("model") or ""
    model = next((m for m in cfg.models if model_name(m) == chosen), cfg.model)
    return cost.model_shape(model)


def _accelerator(cfg: SearchConfig) -> cost.Accelerator | None:
    return cost.ACCELERATORS[cfg.search.accelerator.lower()] if cfg.search.accelerator else None


def trial_cost(cfg: SearchConfig, params: dict[str, Any], trial: TrialPlan | None = None) -> tuple[cost.Cost, cost.Cost] | None:
    """(Expected cost under the search's scheduler, cost of a trial trained to its end); None: the
    model's shape is unknown (an HF id not in the table, with no local directory)."""
    shape = _shape(cfg, params)
    if shape is None:
        return None
    trial = trial or TrialPlan(cfg, params)
    scheduler = cfg.search.scheduler
    expected, finisher = trial.work(scheduler.rungs, scheduler.reach())
    accelerator = _accelerator(cfg)
    return (cost.cost_of(expected, shape, accelerator, cfg.search.mfu),
            cost.cost_of(finisher, shape, accelerator, cfg.search.mfu))


def cost_lines(cfg: SearchConfig) -> list[str]:
    """The whole search's cost under its scheduler, from :data:`COST_DRAWS` random trials."""
    plans = [TrialPlan(cfg, p) for p in _sampled_params(cfg, COST_DRAWS)]
    costs = [c for c in (trial_cost(cfg, trial.params, trial) for trial in plans) if c is not None]
    if not costs:
        return [f"cost: unknown (the shape of {cfg.model!r} is neither in a local config.json nor in search/planning/cost.py's "
                "table); give a local directory"]
    accelerator, mfu, n = _accelerator(cfg), cfg.search.mfu, cfg.search.num_trials
    expected = cost.search_cost([e for e, _ in costs], n)
    finishers = sorted(f.flops for _, f in costs)
    scheduler = cfg.search.scheduler.name
    lines = [f"cost of the search ({n} trials, {scheduler}; the mean of {len(costs)} random trials; tokens are "
             "sequences x their maximum length, an upper bound; evaluation passes not counted): "
             + cost.describe(expected, accelerator, mfu)]
    if accelerator is not None and expected.gpu_hours is not None:
        gpus = max(1.0, cfg.search.workers_per_trial * cfg.search.gpus_per_worker)
        wall = expected.gpu_hours / (gpus * min(n, cfg.search.max_concurrent))
        lines.append(f"  a trial trained to its end: median {_hours(finishers[len(finishers) // 2], accelerator, mfu)}, "
                     f"most {_hours(finishers[-1], accelerator, mfu)}; wall time ~{wall:,.1f} h with "
                     f"{cfg.search.max_concurrent} trials at a time on {gpus:g} GPU(s) each")
    lines += _phase2_share(cfg, plans)
    budget = cfg.search.budget
    if budget.gpu_hours is not None and expected.gpu_hours is not None:
        verdict = "within it" if expected.gpu_hours <= budget.gpu_hours else "over it: the search stops early"
        lines.append(f"  budget: {budget.gpu_hours:g} GPU-hours (search.budget.gpu_hours); the estimate is {verdict}")
    if budget.wall_hours is not None:
        lines.append(f"  budget: {budget.wall_hours:g} wall-clock hours (search.budget.wall_hours)")
    return lines


def _phase2_share(cfg: SearchConfig, plans: list[TrialPlan]) -> list[str]:
    """Phase 2's share of each drawn trial's training FLOPs (0 for a trial without one): what
    phase-2 sharing can save at most."""
    shares = []
    for trial in plans:
        shape = _shape(cfg, trial.params)
        if shape is not None:
            two, three = (cost.cost_of(work, shape, None, cfg.search.mfu).flops for work in (trial.phase2, trial.phase3))
            shares.append(two / (two + three) if two + three else 0.0)
    if not shares:
        return []
    return [f"  phase 2: a median {statistics.median(shares):.0%} of a trial's training FLOPs "
            f"({min(shares):.0%}-{max(shares):.0%}, mean {statistics.fmean(shares):.0%}); phase 3 is the rest"]


def _hours(flops: float, accelerator: cost.Accelerator, mfu: float) -> str:
    return f"{flops / (accelerator.peak_bf16 * mfu) / 3600:,.2f} {accelerator.name}-h"


def coverage_lines(cfg: SearchConfig) -> list[str]:
    """How the search's trials cover the task and language subsets (each task and each language is
    a yes/no factor, so its effect is estimable once it is in and out of enough trials)."""
    from stiltsearch.search.study.core import startup_trials

    n = cfg.search.num_trials
    startup = startup_trials(n)
    draws = _sampled_params(cfg, startup)[1:]  # the start-up trials after the baseline
    tasks, languages = cfg.intermediate_tasks, cfg.languages
    subsets = {tuple(p["intermediate_tasks"]) for p in draws}
    in_task = [sum(t in p["intermediate_tasks"] for p in draws) for t in tasks]
    in_lang = [sum(lang in p["train_languages"] for p in draws) for lang in languages]
    grid = 2 ** len(tasks) * 2 ** len(languages)
    lines = [f"coverage: {n} trials sample at most {min(n, grid):,} of the {grid:,} task x language subsets "
             f"({min(n, grid) / grid:.2%}); the search learns each task's and each language's effect, not every subset"]
    if draws:
        lines.append(f"  the {len(draws)} start-up trials after the baseline (a balanced design, spaces/startup.py): "
                     f"{len(subsets)} distinct task subsets; each task in {min(in_task, default=0)}..{max(in_task, default=0)} "
                     f"of them, each language in {min(in_lang, default=0)}..{max(in_lang, default=0)}; then TPE")
    return lines


def plan_lines(cfg: SearchConfig, trials: int = 3, address: str | None = None) -> list[str]:
    """The whole dry-run report as lines."""
    from stiltsearch.search.launch.models import model_depths

    objectives = ", ".join(f"{o.name} ({o.direction})" for o in cfg.objectives)
    depths = model_depths(cfg)
    lines = [f"search {cfg.name}: {cfg.search.num_trials} trials, {cfg.search.max_concurrent} at a time, "
             f"{cfg.search.workers_per_trial} worker(s) per trial; objectives {objectives}",
             "phase 1: " + ", ".join(f"{name} ({layers} layers)" for name, layers in depths.items())
             + (" (the toy encoders are pretrained here, once, and cached)" if cfg.model == "toy" else ""),
             f"space: {2 ** len(cfg.intermediate_tasks)} intermediate-task subsets of {len(cfg.intermediate_tasks)} "
             f"tasks x {2 ** len(cfg.languages)} language subsets of {len(cfg.languages)}; "
             + ", ".join(f"{k.name} {list(cfg.space.choices[k.key])}" for k in SPACE_CONFIG_KNOBS)]
    lines += coverage_lines(cfg)
    lines += [f"needs before running: {problem}" for problem in missing_resources(cfg, address)]
    accelerator = _accelerator(cfg)
    for number, params in enumerate(_sampled_params(cfg, min(trials, cfg.search.num_trials))):
        kind = "baseline" if number == 0 else "a random draw from the space"
        lines.append(f"trial {number} ({kind}):")
        lines.append(f"  knobs: {describe(params)}")
        trial = TrialPlan(cfg, params)
        lines += trial.lines
        priced = trial_cost(cfg, params, trial)
        if priced is not None:
            lines.append(f"  cost to its end: {cost.describe(priced[1], accelerator, cfg.search.mfu)}")
    if cfg.search.num_trials > trials:
        lines.append(f"... and {cfg.search.num_trials - trials} more, chosen by TPE from the results")
    lines.append(cfg.search.scheduler.describe())
    if cfg.search.share_phase2:
        lines.append(f"phase-2 sharing: {cfg.search.share_phase2:.0%} of the new trials reuse the trained phase 2 "
                     "of the best trial so far, with new phase-3 and deployment settings")
    lines += cost_lines(cfg)
    return lines
