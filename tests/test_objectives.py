"""Objectives are declared once (trainables/objectives.py): the config reads their directions and
what they need, the front counts hypervolume from their references (a minimised objective too),
and a trial reports each under its own name."""

from __future__ import annotations

from pathlib import Path

import pytest

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.config.reading import load_config
from stiltsearch.search.results import front as fronts
from stiltsearch.search.results.table import Row
from stiltsearch.trainables.outcome import Outcome
from stiltsearch.search.results import pareto
from stiltsearch.trainables import objectives

POINTS = [(60.0, 12.0), (55.0, 4.0), (70.0, 30.0), (50.0, 20.0)]  # (score, latency ms)


def test_a_minimised_objective_counts_its_hypervolume_from_its_declared_reference() -> None:
    outcomes = [Row(i, Outcome.COMPLETE, p, {}, finished_at=float(i)) for i, p in enumerate(POINTS)]
    front = fronts.from_rows(outcomes, ["xtreme_score", "latency_ms"], ["max", "min"])
    ref = objectives.reference("latency_ms")
    # the same problem with latency turned into "time saved below the reference", maximised from 0
    mirrored = pareto.hypervolume([(s, ref - lat) for s, lat in POINTS], ["max", "max"], [0.0, 0.0])
    assert front.hypervolume == pytest.approx(mirrored) and front.hypervolume > 0
    assert front.ranks == [0, 0, 0, 1]  # (50, 20) is dominated by (60, 12)


def test_every_declared_objective_has_a_direction_reference_and_source() -> None:
    for spec in objectives.OBJECTIVES:
        assert spec.direction in ("max", "min") and spec.unit and spec.doc
        metrics = {spec.source or spec.name: 1.5}
        assert objectives.values(metrics)[spec.name] == 1.5
    assert objectives.find("eval/toy_xnli", ("toy_xnli",)) is not None
    assert objectives.find("eval/toy_xnli", ("toy_panx",)) is None


def test_the_config_takes_the_declared_direction_and_refuses_the_other(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("objectives:\n  - {name: xtreme_score}\n  - {name: latency_ms}\n")
    assert load_config(path).directions == ["max", "min"]
    path.write_text("objectives:\n  - {name: latency_ms, direction: max}\n")
    with pytest.raises(ConfigError, match=r"objectives\[0\].direction: latency_ms is better when smaller; give min"):
        load_config(path)


def test_the_meter_reports_batch_1_latency_and_the_trial_names_it(tiny_model: str) -> None:
    import torch

    from stiltsearch.trainables.model import MultiTaskModel, load_encoder
    from stiltsearch.trainables.settings import MeterSettings
    from stiltsearch.trainables.tasks import get_task
    from stiltsearch.trainables.throughput import LATENCY_SEQUENCES, build_workload, measure, single_sequences

    torch.set_num_threads(1)
    model = MultiTaskModel(load_encoder(tiny_model), [get_task("toy_xnli")]).eval()
    workload = build_workload([[5] * (6 + i % 20) for i in range(96)], pad_id=1, batch_size=32, max_sequences=96)
    singles = single_sequences(workload, LATENCY_SEQUENCES)
    assert len(singles) == LATENCY_SEQUENCES and all(s["input_ids"].shape[0] == 1 for s in singles)
    assert all(bool(s["attention_mask"].all()) for s in singles)  # no padding in a batch of one
    result = measure(lambda ids, mask: model.logits("toy_xnli", ids, mask), workload, MeterSettings(warmup=1, repeats=3))
    assert result.latency_ms is not None and result.latency_p90_ms is not None
    assert 0 < result.latency_ms <= result.latency_p90_ms
    # one sequence alone is slower per token than a batch of them, and faster than a whole pass
    per_token_batched = 1000 / result.tokens_per_sec
    assert result.latency_ms > per_token_batched and result.latency_ms < 1000 * result.tokens / result.tokens_per_sec
    assert objectives.values(result.metrics())["latency_ms"] == result.latency_ms
