"""Is tokens/sec known before training? For deployments drawn from the toy search space, the speed
a trial now measures first (the phase-1 encoder with the trial's knobs and an untrained head) against
the speed of the same deployment after fine-tuning, measured side by side (interleaved, several
times each) with the drift-free relative speed and with raw tokens/sec.

    python benchmarks/speed_before_training.py [--deployments 10] [--repeats 3] [--steps 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each model, interleaved")
    parser.add_argument("--steps", type=int, default=40, help="fine-tuning steps of the trained model")
    args = parser.parse_args()

    import optuna
    import torch

    from stiltsearch.search.config.compose import largest_model_settings, space_spec
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.launch.models import resolve_models
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.spaces import stilts_space
    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.deploy import build_encoder
    from stiltsearch.trainables.model import MultiTaskModel, load_tokenizer, portable
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.pipeline import measure_here, throughput_workload
    from stiltsearch.trainables.target import target_phase

    quiet_libraries()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = SearchConfig()
    base = largest_model_settings(cfg, cache_dir())
    models = resolve_models(cfg, cache_dir())
    meter = dataclasses.replace(base.meter, reference=True)
    torch.set_num_threads(1)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    relative, raw = [], []
    for number in range(args.deployments):
        sampled = stilts_space(study.ask(), space_spec(cfg))
        # the deployment of a sampled trial; training itself is a short English fine-tune here
        params = TrialParams(**{k: v for k, v in sampled.items()
                                if k not in ("intermediate_tasks", "train_languages", "intermediate_lr")})
        settings = dataclasses.replace(base, model=models[params.model], target_steps=args.steps, target_tasks=("toy_xnli",))
        task = settings.task("toy_xnli")
        tokenizer = load_tokenizer(settings.model)
        workload = throughput_workload(settings, params, [task], tokenizer)
        untrained = portable(MultiTaskModel(build_encoder(settings.model, params), [task]))
        trained, _, _ = target_phase(settings, params, task, settings.model, tokenizer)
        trained_data = portable(trained)
        before, after = [], []
        for _ in range(args.repeats):
            before.append(measure_here(untrained, params, task.name, workload, meter))
            after.append(measure_here(trained_data, params, task.name, workload, meter))
        rel = statistics.median(b.relative_speed for b in before) / statistics.median(a.relative_speed for a in after)
        tps = statistics.median(b.tokens_per_sec for b in before) / statistics.median(a.tokens_per_sec for a in after)
        relative.append(rel)
        raw.append(tps)
        print(f"deployment {number}: {params.model} layers {params.layers_kept} len {params.max_seq_length} "
              f"{params.precision}: before/after training relative speed {rel:.3f}, tokens/sec {tps:.3f} "
              f"({statistics.median(a.tokens_per_sec for a in after):,.0f} tokens/s trained)", flush=True)
    print(f"before / after training, relative speed: median {statistics.median(relative):.3f} "
          f"(range {min(relative):.3f}-{max(relative):.3f}) over {len(relative)} deployments")
    print(f"before / after training, raw tokens/sec: median {statistics.median(raw):.3f} "
          f"(range {min(raw):.3f}-{max(raw):.3f})")


if __name__ == "__main__":
    main()
