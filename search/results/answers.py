"""The report's answers in words (the page's headline and the console's), from the findings'
figures: the matched comparisons, question 1, and what a confirmation says."""

from __future__ import annotations

import statistics

from stiltsearch.search.results.figures.front import LABELS
from stiltsearch.search.results.findings import NOISE_SE, Findings
from stiltsearch.search.results.table import FAMILIES
from stiltsearch.trainables.objectives import find

FEW = 3  # a family with fewer complete trials than this gets a warning in the headline


def hypervolume_units(names: list[str]) -> str:
    """What a hypervolume is measured in and from: "points × real tokens/s, from xtreme_score 0,
    tokens_per_sec 0" (each objective's declared reference, ``trainables/objectives.py``)."""
    specs = [find(name) for name in names]
    units = " × ".join(s.unit.split(" (")[0] if s else "?" for s in specs)
    return f"{units}, from " + ", ".join(f"{n} {s.reference:g}" if s else n for n, s in zip(names, specs, strict=True))


def times(ratio: float | None) -> str:
    """A speed ratio in words: 1.67 is "1.67× faster", 0.0714 is "14× slower" (never "0.0714x")."""
    if ratio is None or ratio <= 0:
        return "n/a"
    return f"{ratio:.3g}× faster" if ratio >= 1 else f"{1 / ratio:.3g}× slower"


def sentences(result: Findings) -> list[str]:
    """The evidence in words, from the figures (the page's headline, after :func:`answers`); after a
    confirmation, what it says comes first: single draws are read in its light."""
    return confirmed_sentences(result) + single_draws(result)


def single_draws(result: Findings) -> list[str]:
    """What the search's own trials (one training seed each) say."""
    lines = [f"{len(result.trials)} complete trials: {sum(t.family == 'stilts' for t in result.trials)} with "
             f"intermediate tasks, {sum(t.family == 'direct' for t in result.trials)} without. Hypervolume of the "
             f"STILTs front {result.hypervolume['stilts']:.5g}, of the direct front {result.hypervolume['direct']:.5g} "
             f"({hypervolume_units(result.names)})."]
    sparse = [family for family in FAMILIES if 0 < sum(t.family == family for t in result.trials) < FEW]
    if sparse:  # e.g. 511 of the 512 task subsets are non-empty: a search samples few direct trials
        lines.append(f"Read the comparison with care: the {' and '.join(LABELS[f] for f in sparse)} family has fewer "
                     f"than {FEW} trials, so its front is a few points at most.")
    if len(result.names) == 2:
        score, speed = result.names
        pair = result.matched.get("speedup_at_matched_score")
        lines.append(f"Speed-up at matched {score}: {times(result.speedup_at_matched_score)} (trial {pair[1]} against "
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
    return lines


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
        shown = times(value) if name.startswith("speedup") else f"{value:+.3g}"
        lines.append(f"On the confirmed means, {name.replace('_', ' ')}: {shown}.")
    return lines


def answers(result: Findings, search_dir: str) -> list[str]:
    """The two questions, one line each, answer first (the end of `stiltsearch run`, the parent run's
    description); and, while no confirmation has run, the line that gives the evidence error bars."""
    lines = []
    if result.nli and result.baseline is not None and len(result.names) == 2:
        speed = result.names[1]
        by_number = {t.number: t for t in result.trials}
        base, n = by_number[result.baseline], result.fastest_at_baseline_accuracy.get("stilts")
        accuracy = result.non_english_mean(result.baseline)
        faster = n is not None and _faster(by_number[n].values[1], base.values[1], result.directions[1])
        lines.append(f"Q1, speed from STILTs without losing non-English {result.nli}: "
                     + (f"yes: trial {n} is {times(_ratio(by_number[n].values[1], base.values[1], result.directions[1]))}"
                        f" than the baseline (trial {base.number}, {speed}) at non-English accuracy "
                        f"{result.non_english_mean(n):.1f} against {accuracy:.1f}" if faster and n is not None
                        else f"no: no STILTs trial faster than the baseline (trial {base.number}) reaches its "
                             f"non-English accuracy {accuracy:.1f}" if accuracy is not None else "not measured"))
    if len(result.names) == 2:
        score, speed = result.names
        pair = result.matched.get("speedup_at_matched_score")
        lines.append(f"Q2, STILTs against direct fine-tuning: at matched {score}, "
                     + (f"{times(result.speedup_at_matched_score)} (trial {pair[1]} against direct trial {pair[0]})"
                        if pair and result.speedup_at_matched_score is not None
                        else "no STILTs trial scores as well as the best direct one")
                     + f"; at matched {speed}, " + (f"{result.score_gain_at_matched_speed:+.3g} {score}"
                     if result.score_gain_at_matched_speed is not None else "no STILTs trial is as fast"))
    if lines and not result.confirmed:
        lines.append(f"Each trial trained under one seed, so these are single draws: for error bars, "
                     f"stiltsearch confirm {search_dir} --seeds 3")
    return lines


def _ratio(value: float, base: float, direction: str) -> float:
    """How many times better ``value`` is than ``base`` (speeds: larger; latencies: smaller)."""
    if value <= 0 or base <= 0:
        return 0.0  # said as "n/a"
    return value / base if direction == "max" else base / value


def _faster(value: float, base: float, direction: str) -> bool:
    return value > base if direction == "max" else value < base
