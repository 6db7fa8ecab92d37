"""``stiltsearch run CONFIG --dry-run``: the trial plan, phase by phase, with nothing trained.

It resolves what a search would: the models and their depths, the space, the baseline and a few
sampled trials (random draws from the space, like the search's first trials), and for each trial its phases,
tasks, languages, steps and batch sizes, from the same arithmetic a trial uses
(:mod:`stiltsearch.trainables.plan`). Row counts are the datasets' published training-set sizes;
nothing is downloaded. Lines are built as data first (:func:`plan_lines`), printed second.
"""

from __future__ import annotations

from typing import Any

from stiltsearch.search.config import SearchConfig
from stiltsearch.search.preflight import missing_resources
from stiltsearch.spaces.knobs import SPACE_CONFIG_KNOBS, describe
from stiltsearch.trainables import plan
from stiltsearch.trainables.tasks import TASKS
from stiltsearch.trainables.tasks.base import Task


def _train_rows(task: Task) -> int:
    """English training rows: published size (real tasks) or generated size (toy tasks)."""
    return int(getattr(task, "train_rows", 0) or getattr(task, "sizes", {}).get("train", 0))


def _sampled_params(cfg: SearchConfig, trials: int) -> list[dict[str, Any]]:
    """The baseline's and the first random trials' parameters, as the searcher would draw them."""
    import optuna

    from stiltsearch.search.compose import space_spec
    from stiltsearch.search.study import study_directions
    from stiltsearch.spaces import baseline_point, stilts_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = space_spec(cfg)
    study = optuna.create_study(directions=study_directions(cfg.directions),
                                sampler=optuna.samplers.RandomSampler(seed=cfg.search.seed))
    study.enqueue_trial(baseline_point(spec))
    return [stilts_space(study.ask(), spec) for _ in range(trials)]


def trial_lines(cfg: SearchConfig, params: dict[str, Any]) -> list[str]:
    tr = cfg.training
    tasks = {name: TASKS[name]() for name in cfg.target_tasks + params["intermediate_tasks"]}
    lines = [f"  knobs: {describe(params)}"]
    chosen = params["intermediate_tasks"]
    if not chosen:
        lines.append("  phase 2: skipped (no intermediate task)")
    else:
        rows = {t: _train_rows(tasks[t]) for t in chosen}
        steps = plan.phase2_steps(tr.recipes, rows, tr.batch_size, tr.intermediate_steps)
        detail = ", ".join(f"{t} ({rows[t]:,} rows, batch {plan.batch_size(tr.recipes, t, tr.batch_size)})" for t in chosen)
        lines.append(f"  phase 2: {steps:,} steps at lr {params['intermediate_lr']:.2g} on {detail}")
    for name in cfg.target_tasks:
        task = tasks[name]
        evaluated = plan.scored_languages(task.eval_languages("dev"), cfg.eval_languages.get(name))
        if not task.kind.trained:
            lines.append(f"  phase 3: {name}: no training; {task.metric} on dev in {len(evaluated)} languages "
                         f"({' '.join(evaluated)})")
            continue
        languages = ["en"] + [lang for lang in params["train_languages"] if lang in task.train_languages]
        total = _train_rows(task) * len(languages)  # translated training sets are the size of the English one
        steps = plan.phase3_steps(tr.recipes, name, total, tr.batch_size, tr.target_steps)
        length = plan.max_length(task.head, tr.qa_max_length, params["max_seq_length"])
        size = f"~{total:,} rows" if total else "rows counted when read"  # a file-only set (Mewsli-X's pairs)
        lines.append(f"  phase 3: {name}: train {'+'.join(languages)} ({size}), {steps:,} steps at batch "
                     f"{plan.batch_size(tr.recipes, name, tr.batch_size)}, length {length}; {task.metric} on dev in "
                     f"{len(evaluated)} languages ({' '.join(evaluated)})")
    served = next((t for t in cfg.target_tasks if tasks[t].kind.trained), cfg.target_tasks[0])
    pairs = sum(len(plan.scored_languages(tasks[t].eval_languages("dev"), cfg.eval_languages.get(t)))
                for t in cfg.target_tasks)
    lines.append(f"  throughput: {served}'s served model on <= {cfg.throughput.max_sequences} dev inputs from "
                 f"{pairs} (task, language) sets, {cfg.throughput.repeats} timed passes")
    return lines


def plan_lines(cfg: SearchConfig, trials: int = 3, address: str | None = None) -> list[str]:
    """The whole dry-run report as lines."""
    from stiltsearch.search.models import model_depths

    objectives = ", ".join(f"{o.name} ({o.direction})" for o in cfg.objectives)
    depths = model_depths(cfg)
    lines = [f"search {cfg.name}: {cfg.search.num_trials} trials, {cfg.search.max_concurrent} at a time, "
             f"{cfg.search.workers_per_trial} worker(s) per trial; objectives {objectives}",
             "phase 1: " + ", ".join(f"{name} ({layers} layers)" for name, layers in depths.items())
             + (" (the toy encoders are pretrained here, once, and cached)" if cfg.model == "toy" else ""),
             f"space: {2 ** len(cfg.intermediate_tasks)} intermediate-task subsets of {len(cfg.intermediate_tasks)} "
             f"tasks x {2 ** len(cfg.languages)} language subsets of {len(cfg.languages)}; "
             + ", ".join(f"{k.name} {list(cfg.space.choices[k.key])}" for k in SPACE_CONFIG_KNOBS)]
    lines += [f"needs before running: {problem}" for problem in missing_resources(cfg, address)]
    for number, params in enumerate(_sampled_params(cfg, min(trials, cfg.search.num_trials))):
        kind = "baseline" if number == 0 else "a random draw from the space"
        lines.append(f"trial {number} ({kind}):")
        lines += trial_lines(cfg, params)
    if cfg.search.num_trials > trials:
        lines.append(f"... and {cfg.search.num_trials - trials} more, chosen by TPE from the results")
    if budgets := cfg.search.rungs:
        rungs = ", ".join(f"{b:.3g}" for b in budgets)
        lines.append(f"early stopping ({cfg.search.scheduler}): each trial reports at {rungs} of its phase-2 and "
                     f"phase-3 steps; only the top 1/{cfg.search.reduction_factor:g} of the trials at a rung go on")
    else:
        lines.append(f"early stopping: none ({cfg.search.scheduler}): every trial runs to its end")
    if cfg.search.share_phase2:
        lines.append(f"phase-2 sharing: {cfg.search.share_phase2:.0%} of the new trials reuse the trained phase 2 "
                     "of the best trial so far, with new phase-3 and deployment settings")
    return lines
