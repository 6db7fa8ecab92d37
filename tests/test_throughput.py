"""The tokens/sec meter and the deployment knobs, measured for real on small models."""

from __future__ import annotations

import dataclasses
import gc
import statistics
from typing import Any

import pytest
import torch

from stiltsearch.trainables.deploy import apply_precision
from stiltsearch.trainables.model import keep_layers, load_encoder
from stiltsearch.trainables.settings import MeterSettings
from stiltsearch.trainables.throughput import build_workload, measure

METER = MeterSettings(warmup=1, repeats=5)


def test_workload_counts_real_tokens_and_batches_by_length() -> None:
    rows = [[5] * n for n in (3, 9, 4, 8, 2, 10)]
    workload = build_workload(rows, pad_id=1, batch_size=2, max_sequences=100)
    assert [b["input_ids"].shape for b in workload] == [(2, 3), (2, 8), (2, 10)]  # sorted: little padding
    assert sum(int(b["attention_mask"].sum()) for b in workload) == sum(map(len, rows))
    assert len(build_workload(rows, pad_id=1, batch_size=2, max_sequences=3)) == 2  # capped, evenly subsampled


def test_measure_reports_median_spread_and_hardware() -> None:
    workload = build_workload([[5] * 20] * 16, pad_id=1, batch_size=8, max_sequences=100)
    layer = torch.nn.Linear(20, 20)
    result = measure(lambda ids, mask: layer(ids.float()), workload, METER)
    assert result.tokens == 320 and result.sequences == 16 and result.repeats == 5
    assert result.tokens_per_sec > 0 and 0 <= result.cv < 1
    assert result.device.startswith("cpu:") and result.threads == torch.get_num_threads()


def test_reference_gives_a_relative_speed_that_tracks_the_work_and_keeps_the_random_stream() -> None:
    workload = build_workload([[5] * 32] * 64, pad_id=1, batch_size=32, max_sequences=100)
    a, b = torch.randn(1024, 512), torch.randn(512, 512)  # ~10 ms a product: passes long enough to time

    def work(times: int) -> Any:
        return lambda ids, mask: [a @ b for _ in range(times)]

    plain = measure(work(1), workload, METER)
    assert plain.relative_speed is None and "throughput/relative_speed" not in plain.metrics()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    with_reference = dataclasses.replace(METER, reference=True)
    one, four = measure(work(1), workload, with_reference), measure(work(4), workload, with_reference)
    assert torch.equal(torch.rand(3), expected)  # the reference's seeded weights left the caller's stream alone
    assert one.metrics()["throughput/relative_speed"] == one.relative_speed > 0
    assert 2.0 < one.relative_speed / four.relative_speed < 8.0  # four times the work; noise has a wide margin


def test_garbage_collector_is_off_while_timing_and_restored_after() -> None:
    workload = build_workload([[5] * 4] * 4, pad_id=1, batch_size=2, max_sequences=100)
    seen: list[bool] = []
    measure(lambda ids, mask: seen.append(gc.isenabled()), workload, METER)
    assert seen and not any(seen)  # no pass, warm-up or timed, ran with the collector on
    assert gc.isenabled()
    gc.disable()  # a caller that had it off keeps it off
    try:
        measure(lambda ids, mask: None, workload, METER)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _ratio(fast: torch.nn.Module, slow: torch.nn.Module, rows: list[list[int]], fast_len: int, slow_len: int) -> float:
    """Median of three interleaved tokens/sec ratios (a single one is at the mercy of the machine)."""
    return statistics.median(_rate(fast, rows, fast_len) / _rate(slow, rows, slow_len) for _ in range(3))


def _rate(model: torch.nn.Module, rows: list[list[int]], max_length: int) -> float:
    workload = build_workload([r[:max_length] for r in rows], pad_id=1, batch_size=32, max_sequences=10**6)
    return measure(lambda ids, mask: model(input_ids=ids, attention_mask=mask), workload, METER).tokens_per_sec


def test_fewer_layers_really_run_faster(tiny_model: str) -> None:
    torch.set_num_threads(1)
    rows = [list(range(5, 5 + 40))] * 512
    full, one = load_encoder(tiny_model).eval(), keep_layers(load_encoder(tiny_model), 1).eval()
    assert _ratio(one, full, rows, 64, 64) > 1.3  # 2 layers -> 1: the embeddings stay, so less than 2x


def test_shorter_sequences_really_run_faster_per_token() -> None:
    """Attention costs grow with length: per real token, 64-token inputs beat 512-token inputs.

    On an XLM-R-shaped encoder wide enough (256) that compute, not per-batch Python overhead, sets
    the time: on the 64-wide test model the fixed cost per batch hides the attention saving, and a
    ratio near 1 only measures the machine's noise. Random weights: speed does not depend on them.
    """
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=400, hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=1024, max_position_embeddings=514)
    model = XLMRobertaModel(config, add_pooling_layer=False).eval()
    rows = [[5 + (i * 7 + j) % 390 for j in range(512)] for i in range(16)]
    assert _ratio(model, model, rows, 64, 512) > 1.1  # measured 1.3-1.4 here


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_precision_knob_changes_the_weights_and_keeps_the_outputs_close(tiny_model: str, precision: str) -> None:
    ids = torch.randint(5, 300, (4, 16))
    mask = torch.ones_like(ids)
    reference = load_encoder(tiny_model).eval()
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        deployed = apply_precision(load_encoder(tiny_model).eval(), precision, torch.device("cpu"))
        got = deployed(input_ids=ids, attention_mask=mask).last_hidden_state.float()
    if precision == "bf16":
        assert next(deployed.parameters()).dtype == torch.bfloat16
    else:
        assert any("quantized" in type(m).__module__ for m in deployed.modules())
    assert torch.nn.functional.cosine_similarity(got.flatten(), expected.flatten(), dim=0) > 0.98


def test_fp16_on_cpu_is_refused_with_the_fix(tiny_model: str) -> None:
    with pytest.raises(ValueError, match="fp16 needs a CUDA device; on CPU use bf16 or int8"):
        apply_precision(load_encoder(tiny_model), "fp16", torch.device("cpu"))


def test_attention_knob_selects_the_implementation_without_changing_outputs(tiny_model: str) -> None:
    ids = torch.randint(5, 300, (2, 12))
    mask = torch.ones_like(ids)
    sdpa, eager = load_encoder(tiny_model, "sdpa").eval(), load_encoder(tiny_model, "eager").eval()
    assert (sdpa.config._attn_implementation, eager.config._attn_implementation) == ("sdpa", "eager")
    with torch.inference_mode():
        a = sdpa(input_ids=ids, attention_mask=mask).last_hidden_state
        b = eager(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_routed_meter_measures_in_a_ray_task_holding_the_custom_resource(tiny_model: str) -> None:
    import os

    import ray

    from stiltsearch.search.launch.raysession import local_ray
    from stiltsearch.trainables.model import MultiTaskModel, portable
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.tasks import get_task
    from stiltsearch.trainables.trainable import _routed_meter

    model = MultiTaskModel(load_encoder(tiny_model), [get_task("toy_xnli")]).eval()
    workload = build_workload([[5] * 20] * 32, pad_id=1, batch_size=16, max_sequences=100)
    from stiltsearch.trainables.trainable import meter_options

    # a Ray that declares one GPU (Ray schedules by what it is told; no GPU is touched here)
    with local_ray(num_cpus=1, num_gpus=1, resources={"meter": 1}, include_dashboard=False, log_to_driver=False):
        result = _routed_meter("meter", 1, False, portable(model), TrialParams(precision="int8"), "toy_xnli", workload,
                               METER)

        @ray.remote(resources={"meter": 1})
        def where() -> int:
            return os.getpid()

        assert ray.get(where.remote()) != os.getpid()  # the resource lives on a worker, not here

        def seen() -> str:  # what a measurement task is given: a GPU of its own with GPU trials
            return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")

        assert ray.get(ray.remote(**meter_options("meter", True))(seen).remote()) == "0"
        # without one, Ray 2.60 sets nothing: the task would see every GPU its node has
        assert ray.get(ray.remote(**meter_options("meter", False))(seen).remote()) == "unset"
    assert result.tokens == 640 and result.tokens_per_sec > 0


def test_a_meter_resource_no_live_node_offers_is_refused_at_start() -> None:
    from stiltsearch.search.config.coerce import ConfigError
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.launch.runner import check_cluster_resources
    from stiltsearch.search.launch.raysession import local_ray

    cfg = load_config(None, **{"throughput.resource": "stilts-meter"})
    with local_ray(num_cpus=1, resources={"meter": 1}, include_dashboard=False, log_to_driver=False):
        with pytest.raises(ConfigError, match="^throughput.resource: no node of this Ray offers 'stilts-meter'"):
            check_cluster_resources(cfg)
    with local_ray(num_cpus=1, resources={"stilts-meter": 1}, include_dashboard=False, log_to_driver=False):
        check_cluster_resources(cfg)
