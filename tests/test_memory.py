"""Memory goes back when a phase ends: a finished DeepSpeed engine, its optimizer and its model
are freed by reference counting alone (no ``gc.collect()``), in a bare run and across a whole trial;
the memory levers (gradient accumulation, gradient checkpointing) train the same update; bf16
training saves its fp32 master weights. The CPU figures at XLM-R-base shape are
``benchmarks/phase_memory.py``'s."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from stiltsearch.trainables import engine as engine_module
from stiltsearch.trainables.engine import TrainingRun
from stiltsearch.trainables.model import MultiTaskModel, load_encoder
from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.pipeline import run_trial
from stiltsearch.trainables.settings import EngineSettings, MeterSettings, TrialSettings
from stiltsearch.trainables.tasks import get_task


def _batches(size: int = 8, length: int = 12) -> Iterator[dict[str, Any]]:
    generator = torch.Generator().manual_seed(0)
    while True:
        yield {"task": "toy_xnli", "input_ids": torch.randint(5, 100, (size, length), generator=generator),
               "attention_mask": torch.ones(size, length, dtype=torch.long),
               "labels": torch.randint(0, 3, (size,), generator=generator)}


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Python's cycle collector off: what is freed here is freed by reference counting."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _finished_phase(model_dir: str, settings: EngineSettings) -> list[weakref.ref]:
    model = MultiTaskModel(load_encoder(model_dir), [get_task("toy_xnli")])
    run = TrainingRun(model, _batches(), steps=3, lr=1e-3, batch_size=8, settings=settings)
    run.advance(3)
    refs = [weakref.ref(run.engine), weakref.ref(run.engine.optimizer), weakref.ref(model)]
    run.close()
    return refs


@pytest.mark.parametrize("settings", [EngineSettings(), EngineSettings(zero_stage=1, precision="bf16"),
                                      EngineSettings(zero_stage=2)], ids=["zero0", "zero1-bf16", "zero2"])
def test_a_finished_phases_engine_optimizer_and_model_are_freed_without_the_collector(
        tiny_model: str, settings: EngineSettings, no_collector: None) -> None:
    refs = _finished_phase(tiny_model, settings)
    assert [r() is None for r in refs] == [True, True, True]


def test_without_the_release_the_engine_would_wait_for_the_collector(tiny_model: str, no_collector: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The premise, measured: DeepSpeed's own ``destroy()`` leaves the cycles in place."""
    monkeypatch.setattr(engine_module, "release", lambda engine: engine.destroy())
    refs = _finished_phase(tiny_model, EngineSettings())
    assert all(r() is not None for r in refs)
    gc.collect()
    assert all(r() is None for r in refs)


def test_a_whole_trial_leaves_no_engine_optimizer_or_model_for_the_collector(
        tiny_model: str, tmp_path: Path, no_collector: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Phase 2 in rungs, phase 3 on two targets (one a retrieval target): every engine, optimizer
    and trained model the trial made is gone when it returns, with the collector off throughout."""
    made: list[weakref.ref] = []
    original = TrainingRun.__init__

    def spy(self: TrainingRun, model: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        original(self, model, *args, **kwargs)
        made.extend([weakref.ref(self.engine), weakref.ref(self.engine.optimizer), weakref.ref(model)])

    monkeypatch.setattr(TrainingRun, "__init__", spy)
    settings = TrialSettings(model=tiny_model, target_tasks=("toy_xnli", "toy_tatoeba"), cache_dir=str(tmp_path),
                             intermediate_steps=6, target_steps=6, batch_size=8, rungs=(1 / 3,),
                             meter=MeterSettings(warmup=0, repeats=1, max_sequences=16))
    params = TrialParams(intermediate_tasks=("toy_mnli",), intermediate_lr=1e-3, target_lr=1e-3, layers_kept=2,
                         max_seq_length=32)
    run_trial(settings, params, lambda _: None)
    assert len(made) == 3 * 3  # phase 2, toy_xnli at the rung, toy_xnli at the end (tatoeba trains nothing)
    assert [r() is None for r in made] == [True] * len(made)


class Deterministic(torch.nn.Module):
    """The tiny encoder regressing to zero with dropout off (so that every split of a batch is the
    same computation)."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self.encoder = load_encoder(model)
        for module in self.encoder.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float().pow(2).mean()


def _trained(model_dir: str, settings: EngineSettings) -> dict[str, torch.Tensor]:
    model = Deterministic(model_dir)
    run = TrainingRun(model, _batches(), steps=4, lr=1e-3, batch_size=8, settings=settings)
    run.advance(4)
    run.close()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_gradient_accumulation_and_checkpointing_make_the_same_update(tiny_model: str) -> None:
    whole = _trained(tiny_model, EngineSettings())
    assert EngineSettings(micro_batch=2).deepspeed_config(8)["gradient_accumulation_steps"] == 4
    levers = (EngineSettings(micro_batch=2), EngineSettings(gradient_checkpointing=True),
              EngineSettings(micro_batch=4, gradient_checkpointing=True))
    start = Deterministic(tiny_model).state_dict()
    for settings in levers:
        trained = _trained(tiny_model, settings)
        moved = 0
        for name, value in whole.items():
            torch.testing.assert_close(trained[name], value, rtol=1e-4, atol=1e-5, msg=f"{settings}: {name}")
            moved += not torch.equal(value, start[name])
        assert moved > len(whole) // 2


def test_bf16_training_saves_its_fp32_master_weights(tiny_model: str) -> None:
    model = Deterministic(tiny_model)
    run = TrainingRun(model, _batches(), steps=3, lr=1e-3, batch_size=8, settings=EngineSettings(precision="bf16"))
    run.advance(3)
    master = run.master_state(model.encoder)
    module = {k: v.detach() for k, v in model.encoder.state_dict().items()}
    run.close()
    weight = "encoder.layer.0.attention.self.query.weight"
    assert module[weight].dtype == torch.bfloat16 and master[weight].dtype == torch.float32
    # the master copy carries the bits a bf16 copy rounds away, and rounds to the module's weights
    assert not torch.equal(master[weight], master[weight].to(torch.bfloat16).float())
    torch.testing.assert_close(master[weight].to(torch.bfloat16), module[weight], rtol=0, atol=0)


def test_a_training_setting_reaches_the_engine_and_zero_3_is_refused() -> None:
    from stiltsearch.trainables.settings import Training

    settings = TrialSettings.compose(Training(micro_batch_size=4, gradient_checkpointing=True), model="m",
                                     target_tasks=("toy_xnli",), cache_dir="c")
    assert settings.trained_with == EngineSettings(micro_batch=4, gradient_checkpointing=True)
    with pytest.raises(ValueError, match="^zero_stage: 3 is refused"):
        Training(zero_stage=3)


@pytest.mark.parametrize("settings", [EngineSettings(), EngineSettings(zero_stage=2, precision="bf16")],
                         ids=["zero0", "zero2-bf16"])
def test_a_parked_run_goes_on_exactly_where_it_stopped_and_holds_no_engine_meanwhile(
        tiny_model: str, tmp_path: Path, settings: EngineSettings, no_collector: None) -> None:
    """A rung parks phase 2 (DeepSpeed's checkpoint of weights, master weights, moments, schedule)
    while its targets train: the engine and model are freed, and the run then ends on the weights
    of the run that never stopped, to the bit."""
    def model() -> MultiTaskModel:
        torch.manual_seed(3)
        return MultiTaskModel(load_encoder(tiny_model), [get_task("toy_xnli")])

    whole = TrainingRun(model(), _batches(), steps=6, lr=1e-3, batch_size=8, settings=settings)
    whole.advance(6)
    expected = {k: v.detach().clone() for k, v in whole.model.state_dict().items()}
    whole.close()

    parked = TrainingRun(model(), _batches(), steps=6, lr=1e-3, batch_size=8, settings=settings,
                         rebuild=lambda: MultiTaskModel(load_encoder(tiny_model), [get_task("toy_xnli")]))
    parked.advance(2)
    refs = [weakref.ref(parked.engine), weakref.ref(parked.model)]
    parked.park(tmp_path / "parked")
    assert [r() is None for r in refs] == [True, True] and (tmp_path / "parked").is_dir()
    with torch.random.fork_rng():  # the rung's own work, forked as the pipeline forks it
        torch.rand(100)
    parked.advance(6)
    assert not (tmp_path / "parked").exists() and parked.done == 6
    for name, value in parked.model.state_dict().items():
        assert torch.equal(value, expected[name]), name
    parked.close()
