"""The `compile` knob measured with the trials' own meter: tokens/sec and batch-1 latency of the
4-layer toy encoder served eagerly and through torch.compile, interleaved round by round (this VM
drifts between rounds), at the thread count of a trial.

    python benchmarks/compile_knob.py [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from stiltsearch.search.config.compose import largest_model_settings
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.deploy import deploy
    from stiltsearch.trainables.model import MultiTaskModel, load_encoder, load_tokenizer, portable
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.pipeline import throughput_workload
    from stiltsearch.trainables.throughput import measure

    quiet_libraries()
    settings = largest_model_settings(SearchConfig(), cache_dir())
    torch.set_num_threads(args.threads)
    tasks = [settings.task(name) for name in settings.target_tasks]
    workload = throughput_workload(settings, TrialParams(), tasks, load_tokenizer(settings.model))
    trained = portable(MultiTaskModel(load_encoder(settings.model), [tasks[0]]).eval())
    rows: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for number in range(args.rounds):
        for on in (False, True):
            start = time.perf_counter()
            served = deploy(trained, TrialParams(compile=on))
            result = measure(lambda ids, mask, m=served: m.logits(tasks[0].name, ids, mask), workload, settings.meter)
            assert result.latency_ms is not None
            rows[on].append((result.tokens_per_sec, result.latency_ms))
            print(f"round {number} compile={str(on).lower():5}: {result.tokens_per_sec:,.0f} tokens/s "
                  f"(CV {100 * result.cv:.1f} %), latency {result.latency_ms:.2f} ms, whole measurement "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
    speed = [c[0] / e[0] for e, c in zip(rows[False], rows[True])]
    latency = [c[1] / e[1] for e, c in zip(rows[False], rows[True])]
    print(f"threads {torch.get_num_threads()}, {sum(int(b['attention_mask'].sum()) for b in workload):,} real tokens "
          f"in {sum(len(b['input_ids']) for b in workload)} sequences")
    print(f"compile / eager tokens/sec: median {statistics.median(speed):.3f} (rounds {min(speed):.3f}-{max(speed):.3f})")
    print(f"compile / eager batch-1 latency: median {statistics.median(latency):.3f} "
          f"(rounds {min(latency):.3f}-{max(latency):.3f})")


if __name__ == "__main__":
    main()
