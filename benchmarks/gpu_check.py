"""The real path on one GPU, in at most 8 minutes on an H100: an XLM-R-Large-shaped encoder (random
weights, a 250,002-piece tokenizer, built offline by ``realshape.py``) in bf16.

It prints (1) training and inference tokens/sec and MFU through the project's DeepSpeed engine;
(2) a trial at Large shape on the toy tasks (three trained targets and Tatoeba, MOASHA rungs at 1/9
and 1/3), with the GPU memory after each reported phase and the peak within it (flat across
phases when finished engines are released) and the device every phase ran on, retrieval included;
(3) a 2-trial search of the embedded default on CUDA (``stiltsearch run`` with a GPU per trial).
Without CUDA it says so and exits 0 (CI never has a GPU).

    python benchmarks/gpu_check.py [--steps 20] [--skip-search]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


def throughput(model_dir: str, steps: int) -> None:
    import statistics

    import torch

    from stiltsearch.search.planning.cost import accelerator_of
    from stiltsearch.trainables.engine import train
    from stiltsearch.trainables.model import load_encoder
    from stiltsearch.trainables.settings import EngineSettings

    encoder = load_encoder(model_dir).cuda()
    config = encoder.config
    batch, seq = 32, 256
    non_embedding = sum(p.numel() for p in encoder.parameters()) - encoder.embeddings.word_embeddings.weight.numel()
    attention = 12 * config.num_hidden_layers * config.hidden_size * seq

    class Loss(torch.nn.Module):  # a stand-in objective: the mean squared activation
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float().pow(2).mean()

    ids = torch.randint(5, 250000, (batch, seq))
    data = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    log = train(Loss(encoder), iter(lambda: data, None), steps=steps, lr=1e-5, batch_size=batch,
                settings=EngineSettings(precision="bf16"), log_every=steps)
    train_tps = log.tokens / log.seconds
    model = encoder.to(torch.bfloat16).eval()
    times = []
    with torch.inference_mode():
        for i in range(25):
            torch.cuda.synchronize()
            start = time.perf_counter()
            model(input_ids=ids.cuda(), attention_mask=data["attention_mask"].cuda())
            torch.cuda.synchronize()
            if i >= 5:
                times.append(time.perf_counter() - start)
    infer_tps = batch * seq / statistics.median(times)
    name = torch.cuda.get_device_name(0)
    peak = accelerator_of(name)
    train_flops, infer_flops = train_tps * (6 * non_embedding + attention), infer_tps * (2 * non_embedding + attention / 3)
    mfu = (f"; MFU training {train_flops / peak.peak_bf16:.1%}, inference {infer_flops / peak.peak_bf16:.1%} of "
           f"{peak.peak_bf16 / 1e12:.0f} TFLOP/s" if peak else "; MFU: device not in search/planning/cost.py's table")
    print(f"[1] {name}: training {train_tps:,.0f} tokens/s (bf16, DeepSpeed, batch {batch} x {seq}, {steps} steps "
          f"with warm-up), inference {infer_tps:,.0f} tokens/s{mfu}", flush=True)
    del encoder, model
    torch.cuda.empty_cache()


def trial(model_dir: str, cache: Path, steps: int) -> None:
    import torch

    from stiltsearch.trainables import target
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.pipeline import run_trial
    from stiltsearch.trainables.settings import MeterSettings, TrialSettings

    devices: dict[str, set[str]] = {}
    for name in ("embed", "predict"):  # where evaluation and retrieval ran
        original = getattr(target, name)

        def spy(model: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            devices.setdefault(_name, set()).add(str(next(model.parameters()).device))
            return _original(model, *args, **kwargs)

        setattr(target, name, spy)
    targets = ("toy_xnli", "toy_panx", "toy_xquad", "toy_tatoeba")
    settings = TrialSettings(model=model_dir, target_tasks=targets, cache_dir=str(cache), intermediate_steps=steps,
                             target_steps=steps, batch_size=32, max_length=128, rungs=(1 / 9, 1 / 3),
                             precision="bf16", eval_languages={t: ("en", "xa") for t in targets},
                             meter=MeterSettings(warmup=1, repeats=3, max_sequences=256))
    params = TrialParams(intermediate_tasks=("toy_mnli", "toy_squad"), intermediate_lr=1e-5, train_languages=("xa",),
                         target_lr=1e-5, layers_kept=24, max_seq_length=128, precision="bf16")
    rows: list[str] = []
    start = time.perf_counter()

    def report(metrics: dict[str, Any]) -> None:
        what = next((k.split("/")[1] for k in metrics if k.startswith("rung/")), None)
        label = f"rung {what}" if what is not None else f"phase {metrics.get('phase')}"
        rows.append(f"{label}: {torch.cuda.memory_allocated() / 2**30:.2f} GiB allocated after, peak "
                    f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB within ({time.perf_counter() - start:.0f} s)")
        torch.cuda.reset_peak_memory_stats()

    torch.cuda.reset_peak_memory_stats()
    metrics = run_trial(settings, params, report)
    print("[2] a trial at Large shape (phase 2 on 2 tasks, 3 trained targets + Tatoeba, rungs 1/9 and 1/3), GPU memory:")
    for row in rows:
        print(f"      {row}")
    print(f"    devices: evaluation {sorted(devices.get('predict', []))}, retrieval embeddings "
          f"{sorted(devices.get('embed', []))}; tokens/sec {metrics['tokens_per_sec']:,.0f} "
          f"({metrics.get('throughput/device', '?')}), trial {metrics['trial/seconds']:.0f} s", flush=True)


def search(cache: Path) -> None:
    import yaml

    with tempfile.TemporaryDirectory() as out:
        config = yaml.safe_load((Path(__file__).parents[1] / "configs" / "toy.yaml").read_text())
        config["search"] |= {"num_trials": 2, "max_concurrent": 1, "gpus_per_worker": 1}
        config["output_dir"] = out
        config["mlflow"] = {"tracking_uri": f"sqlite:///{out}/mlflow.db"}
        path = Path(out) / "gpu.yaml"
        path.write_text(yaml.safe_dump(config))
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(path)], capture_output=True,
                              text=True, cwd=out, env={**os.environ, "STILTSEARCH_CACHE": str(cache / "search")})
        tail = "\n      ".join(done.stdout.strip().splitlines()[-8:])
        print(f"[3] a 2-trial search of the embedded default with a GPU per trial: exit {done.returncode} in "
              f"{time.perf_counter() - start:.0f} s\n      {tail}", flush=True)
        if done.returncode:
            print(done.stderr[-3000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps of each phase and of the MFU run")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "stiltsearch-gpu-check"))
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing measured (run it on a GPU machine)")
        return
    from realshape import build

    from stiltsearch.trainables import quiet_libraries

    quiet_libraries()
    cache = Path(args.cache)
    start = time.perf_counter()
    model_dir = str(build("large", cache))
    print(f"[0] XLM-R-Large-shaped model built in {time.perf_counter() - start:.0f} s: {model_dir}", flush=True)
    throughput(model_dir, args.steps)
    trial(model_dir, cache / "trial", args.steps)
    if not args.skip_search:
        search(cache)
    print(f"gpu_check: {time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
