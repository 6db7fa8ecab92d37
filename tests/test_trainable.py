"""The trial pipeline run directly (no Ray) on the tiny model: real DeepSpeed training."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from stiltsearch.trainables.checkpoint import TrialCheckpoint
from stiltsearch.trainables.engine import train
from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.pipeline import run_trial
from stiltsearch.trainables.settings import EngineSettings, MeterSettings, TrialSettings
from stiltsearch.trainables.trialdir import read_ledger

PARAMS = TrialParams(intermediate_tasks=("toy_mnli", "toy_squad2", "toy_ccg"), intermediate_lr=1e-3,
                     train_languages=("xa",), target_lr=1e-3, layers_kept=2, max_seq_length=64)
TARGETS = ("toy_xnli", "toy_panx", "toy_xquad", "toy_tatoeba")  # every head kind but choice


def settings(model: str, cache: Path, **overrides: Any) -> TrialSettings:
    values: dict[str, Any] = {"intermediate_steps": 40, "target_steps": 40, "batch_size": 16,
                              "meter": MeterSettings(repeats=3, max_sequences=128)}
    return TrialSettings(model=model, target_tasks=TARGETS, cache_dir=str(cache),
                         **(values | overrides))


@pytest.fixture(scope="module")
def trial(tiny_model: str, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """One trial with a checkpoint directory: (final metrics, every report, the checkpoint directory)."""
    reports: list[dict[str, Any]] = []
    directory = tmp_path_factory.mktemp("trial") / "0007"
    metrics = run_trial(settings(tiny_model, cache), PARAMS, reports.append, TrialCheckpoint(directory))
    return metrics, reports, directory


def test_losses_go_down_in_both_phases(trial: tuple) -> None:
    metrics, _, _ = trial
    assert metrics["phase2/loss_last"] < metrics["phase2/loss_first"]
    for task in TARGETS[:3]:  # tatoeba is not trained
        assert metrics[f"phase3/{task}/loss_last"] < metrics[f"phase3/{task}/loss_first"]


def test_metrics_are_in_range_for_every_task_and_language(trial: tuple) -> None:
    metrics, _, _ = trial
    for task in TARGETS:
        for lang in ("en", "xa", "xb", "xc", "xd"):
            if task != "toy_tatoeba" or lang != "en":  # retrieval is xx -> en
                assert 0.0 <= metrics[f"eval/{task}/{lang}"] <= 100.0
    assert "eval/toy_tatoeba/en" not in metrics
    assert metrics["xtreme_score"] == pytest.approx(sum(metrics[f"eval/{t}"] for t in TARGETS) / len(TARGETS))
    # a pretrained encoder retrieves translations far above chance (1 in 500) with no training
    assert metrics["eval/toy_tatoeba"] > 10.0
    assert metrics["tokens_per_sec"] > 0 and metrics["throughput/tokens"] > 0
    assert metrics["phase3/toy_xnli/train_languages"] == "en,xa"
    assert metrics["eval/group/qa"] == metrics["eval/toy_xquad"] and metrics["eval/group/retrieval"] == metrics[
        "eval/toy_tatoeba"]


def test_reports_speed_then_phase2_then_the_final_result_and_checkpoints_every_phase(trial: tuple) -> None:
    metrics, reports, directory = trial
    assert [m["phase"] for m in reports] == [1, 2, 3]
    assert reports[0]["tokens_per_sec"] == metrics["tokens_per_sec"] > 0  # known before training
    state = TrialCheckpoint(directory, writable=False).state
    assert Path(state["phase2"]["encoder_dir"]).is_dir()
    assert {f"phase3/{t}" for t in TARGETS} <= set(state)
    assert json.loads((directory / "result.json").read_text())["xtreme_score"] == metrics["xtreme_score"]
    assert read_ledger(directory) == ["attempt started", "speed measured", "phase2 trained",
                                      *(f"phase3 {t} trained" for t in TARGETS), "result saved"]


def test_phase2_is_cached_by_content(trial: tuple, tiny_model: str, cache: Path) -> None:
    metrics, _, _ = trial
    again: list[dict[str, Any]] = []
    run_trial(settings(tiny_model, cache, target_steps=5), PARAMS, again.append)
    phase2 = next(m for m in again if m["phase"] == 2)  # after the speed report (phase 1)
    assert metrics["phase2/cache"] == "miss" and phase2["phase2/cache"] == "hit"


def test_a_trials_result_does_not_depend_on_what_ran_before_it(tiny_model: str, tmp_path: Path) -> None:
    """The same trial twice: once measuring its speed first (an untrained model built, drawing from
    torch's generator, then phase 2 and 3), once with its speed read from the cache and its phase 2
    trained afresh. Each phase starts from the trial's seed, so the two give the same numbers."""
    params = TrialParams(intermediate_tasks=("toy_mnli",), intermediate_lr=1e-3, target_lr=1e-3, layers_kept=2,
                         max_seq_length=32)
    quick = dataclasses.replace(settings(tiny_model, tmp_path, intermediate_steps=8, target_steps=8),
                                target_tasks=("toy_xnli", "toy_panx"))
    first = run_trial(quick, params, lambda _: None)
    shutil.rmtree(tmp_path / "phase2")  # the speed cache stays: the second run builds no model to measure
    torch.rand(1000)  # and the process has drawn more since
    second = run_trial(quick, params, lambda _: None)
    assert first["phase2/cache"] == second["phase2/cache"] == "miss"
    for key in ("phase2/loss_first", "phase2/loss_last", "phase3/toy_xnli/loss_last", "phase3/toy_panx/loss_last",
                "eval/toy_xnli", "eval/toy_panx"):
        assert first[key] == second[key], key


def test_a_trial_resumed_after_two_target_tasks_runs_only_the_rest(trial: tuple, tiny_model: str, cache: Path,
                                                                    tmp_path: Path) -> None:
    """As after a worker killed in phase 3: phase 2 and the finished targets are restored, the served
    model (toy_xnli's) comes back from disk, and the scores of restored tasks are the saved ones."""
    metrics, _, directory = trial
    partial = tmp_path / "0007"
    partial.mkdir()
    state = TrialCheckpoint(directory, writable=False).state
    # written as release 0.1 wrote it (a bare mapping, no checksum): still read
    (partial / "state.json").write_text(json.dumps({k: state[k] for k in ("speed", "phase2", "phase3/toy_xnli",
                                                                          "phase3/toy_panx")}))
    shutil.copytree(directory / "served", partial / "served")
    reports: list[dict[str, Any]] = []
    out = run_trial(settings(tiny_model, cache), PARAMS, reports.append, TrialCheckpoint(partial))
    assert [m["phase"] for m in reports] == [1, 3] and out["phase2/resumed"] == 1
    assert read_ledger(partial) == ["attempt started", "speed restored", "phase2 restored", "phase3 toy_xnli restored",
                                    "phase3 toy_panx restored", "phase3 toy_xquad trained", "phase3 toy_tatoeba trained",
                                    "result saved"]
    assert out["eval/toy_xnli"] == metrics["eval/toy_xnli"] and out["eval/toy_panx"] == metrics["eval/toy_panx"]
    assert out["tokens_per_sec"] > 0
    # a trial that had finished reports its result again and runs nothing
    again: list[dict[str, Any]] = []
    assert run_trial(settings(tiny_model, cache), PARAMS, again.append, TrialCheckpoint(partial)) == out == again[0]
    assert read_ledger(partial)[-2:] == ["attempt started", "result restored"]


class Regress(torch.nn.Module):
    """The tiny encoder learning to map a batch to zeros; dropout off when ``deterministic``."""

    def __init__(self, model: str, deterministic: bool = False) -> None:
        from stiltsearch.trainables.model import load_encoder

        super().__init__()
        self.encoder = load_encoder(model)
        for module in self.encoder.modules():
            if deterministic and isinstance(module, torch.nn.Dropout):
                module.p = 0.0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float().pow(2).mean()


def test_the_engine_is_deepspeed_and_honours_zero_stage_and_bf16(tiny_model: str) -> None:
    import deepspeed

    seen: list[Any] = []
    original = deepspeed.initialize

    def spy(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        seen.append((kwargs["config"], out[0]))
        return out

    batch = {"input_ids": torch.randint(5, 100, (8, 12)), "attention_mask": torch.ones(8, 12, dtype=torch.long)}
    deepspeed.initialize = spy
    try:
        for stage, precision in ((0, "fp32"), (2, "bf16")):
            log = train(Regress(tiny_model), iter(lambda: batch, None), steps=20, lr=1e-3, batch_size=8,
                        settings=EngineSettings(zero_stage=stage, precision=precision), log_every=5)
            assert log.losses[-1] < log.losses[0]
    finally:
        deepspeed.initialize = original
    assert [c["zero_optimization"]["stage"] for c, _ in seen] == [0, 2]
    assert [c["bf16"]["enabled"] for c, _ in seen] == [False, True]
    assert all(type(engine).__name__ == "DeepSpeedEngine" for _, engine in seen)


def test_the_engine_alone_makes_a_plain_loops_update_without_an_all_reduce(tiny_model: str) -> None:
    """One process, ZeRO 0, fp32: five steps of our engine land on the weights of a plain torch loop
    (AdamW, the same warm-up/decay schedule, clipping at 1.0), and the gradients are not all-reduced
    in a world of one (it cost ~0.9 ms a step for nothing; benchmarks/training_engine.py)."""
    from torch.profiler import ProfilerActivity, profile

    from stiltsearch.trainables.engine import _linear_schedule

    batches = [{"input_ids": torch.randint(5, 100, (8, 12), generator=torch.Generator().manual_seed(i)),
                "attention_mask": torch.ones(8, 12, dtype=torch.long)} for i in range(5)]
    settings = EngineSettings()
    ours, plain = Regress(tiny_model, deterministic=True), Regress(tiny_model, deterministic=True)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        train(ours, iter(batches), steps=5, lr=1e-3, batch_size=8, settings=settings, log_every=5)
    all_reduces = sum(e.count for e in profiler.key_averages() if "allreduce" in e.key.lower())
    assert all_reduces <= 5  # DeepSpeed's clipping all-reduces its scalar norm once a step; the gradients' is gone

    named = list(plain.named_parameters())
    optimizer = torch.optim.AdamW([{"params": [p for _, p in named if p.ndim >= 2], "weight_decay": settings.weight_decay},
                                   {"params": [p for _, p in named if p.ndim < 2], "weight_decay": 0.0}], lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(5, settings.warmup_fraction))
    plain.train()
    for batch in batches:
        plain(**batch).backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), settings.gradient_clipping)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    start = Regress(tiny_model).state_dict()
    moved = 0
    for (name, a), b in zip(ours.state_dict().items(), plain.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        moved += not torch.equal(a, start[name])
    assert moved > len(start) // 2  # the weights did train


def test_a_damaged_served_model_is_trained_again_not_served_nor_a_failure(tmp_path: Path) -> None:
    import torch
    from transformers import AutoConfig

    from stiltsearch.trainables.checkpoint import TrialCheckpoint
    from stiltsearch.trainables.trialdir import read_ledger

    config = AutoConfig.for_model("xlm-roberta", num_hidden_layers=1, hidden_size=8, num_attention_heads=2)
    TrialCheckpoint(tmp_path).save_model({"config": config, "heads": {"xnli": ["cls", 3]},
                                          "state": {"w": torch.ones(64, 64)}})
    assert TrialCheckpoint(tmp_path).load_model() is not None  # intact: served as saved
    state = tmp_path / "served" / "state.pt"
    state.write_bytes(state.read_bytes()[:100])  # cut short, as a full disk leaves it
    resumed = TrialCheckpoint(tmp_path)
    assert resumed.load_model() is None  # the pipeline trains the served task again
    assert not (tmp_path / "served").exists()
    assert any("served model damaged" in event for event in read_ledger(tmp_path))


def _retrieval_pairs(seed: int, n: int) -> list:
    """Query-candidate pairs a dual encoder can learn: the candidate repeats the query's two words among fillers."""
    import random

    from stiltsearch.trainables.tasks.base import DualExample

    names = ["anna", "bob", "oslo", "paris", "lima", "cat", "dog", "red", "blue", "green", "seven", "nine"]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        out.append(DualExample(f"where is {a} {b} ?", f"{' '.join(rng.sample(names, 3))} {a} {b} ."))
    return out


def _dual_encoder(model_dir: str) -> tuple:
    from stiltsearch.trainables.model import MultiTaskModel, load_encoder, load_tokenizer

    return MultiTaskModel(load_encoder(model_dir), {"lareqa": ("dual_encoder", 0)}), load_tokenizer(model_dir)


def _top1(model: Any, tokenizer: Any, pairs: list) -> float:
    """Top-1 accuracy of each query over all the pairs' candidates, by the head's vectors."""
    from stiltsearch.trainables.target import embed

    model.eval()
    queries = embed(model, [p.query for p in pairs], tokenizer, max_length=32, head="lareqa")
    candidates = embed(model, [p.candidate for p in pairs], tokenizer, max_length=32, head="lareqa")
    model.train()
    assert torch.allclose(queries.norm(dim=-1), torch.ones(len(pairs)), atol=1e-4)
    return float(((queries @ candidates.T).argmax(-1) == torch.arange(len(pairs))).float().mean())


def test_a_dual_encoder_is_xtreme_rs_pooled_in_batch_softmax(tiny_model: str) -> None:
    """XTREME-R's phase 3 for LAReQA and Mewsli-X (its BertForRetrieval): a batch is the queries,
    then their candidates; each side is the <s> vector through dense+tanh at unit length; the loss is
    the cross-entropy of each query over the batch's candidates, cosines times a learnt scale (100)."""
    from stiltsearch.trainables import heads

    model, tokenizer = _dual_encoder(tiny_model)
    head = model.heads["lareqa"]
    assert isinstance(head, heads.DualEncoderHead) and float(head.logit_scale.detach()) == 100.0
    batch = heads.encode("dual_encoder", tokenizer, _retrieval_pairs(0, 4), 32)
    assert batch["input_ids"].shape[0] == 8 and batch["labels"].tolist() == [0, 1, 2, 3]
    model.eval()
    vectors = model.logits("lareqa", batch["input_ids"], batch["attention_mask"])
    hidden = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    pooled = torch.nn.functional.normalize(torch.tanh(head.dense(hidden[:, 0])), dim=-1)
    assert torch.allclose(vectors, pooled, atol=1e-6)
    expected = torch.nn.functional.cross_entropy(100.0 * pooled[:4] @ pooled[4:].T, torch.arange(4))
    assert torch.allclose(model("lareqa", **{k: batch[k] for k in ("input_ids", "attention_mask", "labels")}), expected,
                          atol=1e-5)
    # a workload or an evaluation: the query side alone
    assert heads.encode("dual_encoder", tokenizer, _eval_examples(), 32)["input_ids"].shape[0] == 2


def _eval_examples() -> list:
    from stiltsearch.trainables.tasks.base import MentionExample

    return [MentionExample("The summit took place in Berlin.", "Q64"), MentionExample("Paris is big.", "Q90")]


@pytest.mark.slow
def test_a_dual_encoder_learns_to_retrieve() -> None:
    """On the default search's 2-layer toy encoder (phase 1 as the search runs it), 150 steps of
    the in-batch softmax lift top-1 retrieval over 64 pairs it has not seen from chance to most.
    (The tests' tiny fixture encoder is too weakly pretrained for its <s> vector to learn this.)"""
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.launch.models import resolve_models
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.trainables import data
    from stiltsearch.trainables.tasks.lareqa import LAReQA

    model_dir = resolve_models(SearchConfig(), cache_dir())["toy-2l"]
    torch.manual_seed(0)
    model, tokenizer = _dual_encoder(model_dir)
    held_out = _retrieval_pairs(1, 64)
    before = _top1(model, tokenizer, held_out)
    stream = data.batches(LAReQA(), _retrieval_pairs(0, 512), tokenizer, batch_size=16, max_length=32, seed=0)
    log = train(model, stream, steps=150, lr=1e-3, batch_size=16, settings=EngineSettings(), log_every=10)
    after = _top1(model, tokenizer, held_out)
    assert log.losses[-1] < 0.3 * log.losses[0], log.losses
    assert before < 0.2 and after > 0.5, (before, after)  # measured: 0.03 -> 0.69


@pytest.mark.parametrize("damage", [b"\xff\xfe\x00garbage", b'{"sha256": "0", "state": {"phase2": {}}}', b"[1, 2]", b""])
def test_a_damaged_checkpoint_state_falls_back_to_the_previous_one_then_to_the_start(tmp_path: Path,
                                                                                     damage: bytes) -> None:
    """What a killed write, a full disk or a stray copy leaves in state.json is detected (its
    SHA-256, its shape), set aside, and said in the ledger; the trial goes on from state.prev.json,
    and with both damaged from its start, never failing on it."""
    first = TrialCheckpoint(tmp_path)
    first.put("speed", {"tokens_per_sec": 1.0})
    first.put("phase2", {"loss": 0.5})
    (tmp_path / "state.json").write_bytes(damage)
    again = TrialCheckpoint(tmp_path)
    assert again.state == {"speed": {"tokens_per_sec": 1.0}}  # the previous good state
    assert (tmp_path / "state.json.damaged").read_bytes() == damage
    assert read_ledger(tmp_path)[-1] == "state restored from state.prev.json: state.json was damaged or missing"
    (tmp_path / "state.prev.json").write_bytes(damage)
    assert TrialCheckpoint(tmp_path).state == {}
    assert read_ledger(tmp_path)[-1] == "no good checkpoint state: the trial starts again from its start"
