"""The toy benchmark's designed ground truth, measured: the five properties of docs/toy-world.md.

Runs each ground-truth probe (baseline, random init, +helpful task, +unrelated task, +translate-train,
1 layer, length 16) on the XNLI-like target for several seeds, with the default search's budgets,
two probes at a time (one thread each), and prints per-language means +- standard errors, the
paired effects, and tokens/sec of the knob probes measured in the same run.

    python benchmarks/toy_ground_truth.py [--seeds 3] [--workers 2]

``--objective``: the same properties at the level of what the default search optimises, each probe a
whole trial (every target, the speed measured): its objective ``non_english_nli``, and
``xtreme_score`` and each target's score beside it.
"""

from __future__ import annotations

import argparse
import statistics
import time

CHANCE = 100 / 3  # three NLI labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--objective", action="store_true", help="whole trials, on the default objective")
    args = parser.parse_args()
    if args.objective:
        objective_level(args.seeds, args.workers)
        return

    from stiltsearch.search.config.compose import largest_model_settings
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.trainables.probe import ground_truth, mean_and_se, synthetic_mean

    settings = largest_model_settings(SearchConfig(), cache_dir())
    start = time.perf_counter()
    by_label = ground_truth(settings, tuple(range(args.seeds)), workers=args.workers)
    runs = sum(len(group) for group in by_label.values())
    print(f"{runs} runs in {time.perf_counter() - start:.0f} s ({args.seeds} seeds, {args.workers} workers)\n")
    languages = list(by_label["baseline"][0].scores)
    print(f"{'probe':<26}" + "".join(f"{lang:>14}" for lang in languages) + f"{'synthetic':>14}{'tokens/s':>12}")
    for label, group in by_label.items():
        cells = [mean_and_se([o.scores[lang] for o in group]) for lang in languages]
        syn = mean_and_se([synthetic_mean(o.scores) for o in group])
        timed = [o.tokens_per_sec for o in group if o.tokens_per_sec is not None]
        speed = f"{statistics.median(timed):>12.0f}" if timed else f"{'-':>12}"  # only the timed probes
        print(f"{label:<26}" + "".join(f"{m:>8.1f} ±{se:4.1f}" for m, se in cells) + f"{syn[0]:>8.1f} ±{syn[1]:4.1f}"
              + speed)

    def paired(label: str, key) -> tuple[float, float]:  # noqa: ANN001
        return mean_and_se([key(o) - key(b) for o, b in zip(by_label[label], by_label["baseline"], strict=True)])

    base = by_label["baseline"]
    print("\nproperties (mean ± standard error over seeds; chance = 33.3)")
    print(f"1. English baseline {mean_and_se([o.scores['en'] for o in base])[0]:.1f} (>= 85); "
          "pretrained - random init = {:.1f} ± {:.1f}".format(*paired("random init", lambda o: -o.scores["en"])))
    means = {lang: statistics.fmean(o.scores[lang] for o in base) for lang in languages}
    print("2. above chance: " + ", ".join(f"{lang} {means[lang] - CHANCE:+.1f}" for lang in languages if lang != "en"))
    helpful, unrelated = (label for label in by_label if label.startswith("+toy_"))
    print("3. synthetic-mean effect: {} {:+.1f} ± {:.1f} (>= 3); ".format(helpful, *paired(helpful, lambda o: synthetic_mean(o.scores)))
          + "{} {:+.1f} ± {:.1f} (< 1)".format(unrelated, *paired(unrelated, lambda o: synthetic_mean(o.scores))))
    added = next(label for label in by_label if label.startswith("+translate-train"))
    lang = added.split()[-1]
    print("4. {}: {} {:+.1f} ± {:.1f}".format(added, lang, *paired(added, lambda o: o.scores[lang])))
    for knob in ("1 layer", "length 16"):
        ratio = statistics.fmean(k.tokens_per_sec / b.tokens_per_sec for k, b in zip(by_label[knob], base, strict=True))
        print("5. {}: {:.2f}x tokens/s, English {:+.1f} ± {:.1f}".format(knob, ratio, *paired(knob, lambda o: o.scores["en"])))


def objective_level(seeds: int, workers: int) -> None:
    from stiltsearch.search.config.compose import space_spec, trial_settings
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.launch.models import resolve_models
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.spaces import baseline_point
    from stiltsearch.trainables.probe import mean_and_se, objective_ground_truth

    cfg = SearchConfig()
    cache = cache_dir()
    settings = trial_settings(cfg, resolve_models(cfg, cache), cache)
    base = baseline_point(space_spec(cfg))
    start = time.perf_counter()
    by_label = objective_ground_truth(settings, base["model"], tuple(range(seeds)), workers=workers)
    runs = sum(len(group) for group in by_label.values())
    print(f"{runs} whole trials in {time.perf_counter() - start:.0f} s ({seeds} seeds, {workers} workers)\n")
    columns = ["non_english_nli", "xtreme_score", *(f"eval/{t}" for t in cfg.target_tasks), "tokens_per_sec"]
    print(f"{'probe':<24}" + "".join(f"{c.removeprefix('eval/'):>16}" for c in columns))
    for label, group in by_label.items():
        cells = [mean_and_se([o.metrics[c] for o in group]) for c in columns]
        print(f"{label:<24}" + "".join(f"{m:>9.1f} ±{se:5.1f}" if c != "tokens_per_sec" else f"{m:>16.0f}"
                                       for c, (m, se) in zip(columns, cells)))
    baseline = by_label["baseline"]

    def paired(label: str, key) -> tuple[float, float]:  # noqa: ANN001
        return mean_and_se([key(o) - key(b) for o, b in zip(by_label[label], baseline, strict=True)])

    print("\neffects on the objectives (paired by seed, mean ± standard error)")
    for label in by_label:
        if label == "baseline":
            continue
        nli = paired(label, lambda o: o.metrics["non_english_nli"])
        xtreme = paired(label, lambda o: o.metrics["xtreme_score"])
        speed = statistics.median(k.metrics["tokens_per_sec"] / b.metrics["tokens_per_sec"]
                                  for k, b in zip(by_label[label], baseline, strict=True))
        print(f"{label:<24} non_english_nli {nli[0]:+6.1f} ± {nli[1]:.1f}   xtreme_score {xtreme[0]:+6.1f} ± "
              f"{xtreme[1]:.1f}   tokens/s x{speed:.2f} (median)")
    added = next(label for label in by_label if label.startswith("+translate-train"))
    lang = added.split()[-1]
    own = paired(added, lambda o: o.metrics[f"eval/toy_xnli/{lang}"])
    print(f"{added}: toy_xnli/{lang} {own[0]:+.1f} ± {own[1]:.1f}")


if __name__ == "__main__":
    main()
