"""Every knob is declared once (spaces/knobs.py) and read from there everywhere: the config, the
space, the baseline, TrialParams, pareto.csv, the console, MLflow and the dry run; and every
declared knob is applied by some part of a trial."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest

from stiltsearch.search.config.compose import space_spec
from stiltsearch.search.config.reading import to_dict
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.results import front as fronts
from stiltsearch.search.results.table import Row
from stiltsearch.search.tracking.redact import trial_params
from stiltsearch.spaces import KNOBS, baseline_point, stilts_space
from stiltsearch.spaces.knobs import SPACE_CONFIG_KNOBS, describe
from stiltsearch.trainables.outcome import Outcome
from stiltsearch.trainables.params import APPLIERS, TrialParams


def test_every_declared_knob_is_applied_by_a_trial_and_every_applier_is_declared() -> None:
    import stiltsearch.trainables.pipeline  # noqa: F401  (imports every module that applies a knob)

    assert set(APPLIERS) == {k.name for k in KNOBS}
    for knob in KNOBS:
        assert knob.applies in ("phase 2", "phase 3", "encoder", "inputs", "weights", "serving"), knob.name
        if knob.applies == "weights":  # deploy() calls these as (module, value, device)
            assert APPLIERS[knob.name].__code__.co_argcount == 3, knob.name


def test_trial_params_hold_one_value_per_knob_and_refuse_unknown_names() -> None:
    params = TrialParams(layers_kept=2, intermediate_tasks=["toy_mnli"])
    assert set(params) == {k.name for k in KNOBS}
    assert params.layers_kept == 2 and params.intermediate_tasks == ("toy_mnli",)
    assert params.precision == next(k for k in KNOBS if k.name == "precision").fallback
    with pytest.raises(TypeError, match="'not_a_knob' is not a declared knob"):
        TrialParams(not_a_knob=1)
    with pytest.raises(TypeError, match="not a declared knob"):
        TrialParams.from_config({"layers_kept": 1, "stray": 2}, ignore=("trial_number",))
    assert TrialParams.from_config({"layers_kept": 1, "trial_number": 3}, ignore=("trial_number",)).layers_kept == 1


def test_the_space_the_baseline_and_the_config_cover_every_knob() -> None:
    cfg = SearchConfig()
    spec = space_spec(cfg)
    sampled = stilts_space(optuna.trial.FixedTrial(baseline_point(spec)), spec)
    # the baseline has no phase 2, so no phase-2 learning rate; every other knob is sampled
    assert set(sampled) == {k.name for k in KNOBS} - {"intermediate_lr"}
    assert set(to_dict(cfg)["space"]) == {k.key for k in SPACE_CONFIG_KNOBS}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        seen |= set(stilts_space(trial, spec))
        study.tell(trial, 0.0)
    assert seen == {k.name for k in KNOBS}


def test_pareto_csv_the_console_and_mlflow_show_every_knob(tmp_path: Path) -> None:
    config = {"intermediate_tasks": ("toy_mnli",), "train_languages": ("xa",), "intermediate_lr": 2e-4,
              "target_lr": 3e-4, "model": "toy-4l", "layers_kept": 2, "max_seq_length": 32, "precision": "bf16",
              "inference_batch_size": 64, "attention": "eager"}
    config |= {k.name: k.fallback for k in KNOBS if k.name not in config}  # knobs added since this test
    front = fronts.from_rows([Row(0, Outcome.COMPLETE, (60.0, 1000.0), config)], ["xtreme_score", "tokens_per_sec"],
                             ["max", "max"])
    with open(fronts.write_table(tmp_path / "pareto.csv", front)) as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) >= {k.name for k in KNOBS}
    assert rows[0]["attention"] == "eager" and rows[0]["inference_batch_size"] == "64"
    assert rows[0]["intermediate_tasks"] == "toy_mnli"
    line = describe(config)
    assert "attn=eager" in line and "batch=64" in line and "layers=2" in line and "ilr=2.0e-04" in line
    params = trial_params({**config, "trial_number": 0})
    assert set(params) == {k.name for k in KNOBS} and params["attention"] == "eager"
    for knob in KNOBS:  # MLflow's strings read back as the values (stiltsearch pareto --tracking-uri)
        assert knob.parse(params[knob.name]) == config[knob.name], knob.name


def test_the_dry_run_shows_every_knob() -> None:
    from stiltsearch.search.planning.dryrun import plan_lines

    text = "\n".join(plan_lines(SearchConfig(), trials=2))
    for knob in SPACE_CONFIG_KNOBS:
        assert knob.name in text, knob.name
    trial = text[text.index("trial 0 (baseline):"):]
    assert "attn=sdpa" in trial and "batch=64" in trial


def test_the_compile_knob_compiles_the_served_encoder_and_keeps_its_outputs(tiny_model: str) -> None:
    import torch

    from stiltsearch.trainables.deploy import deploy
    from stiltsearch.trainables.model import MultiTaskModel, load_encoder, portable
    from stiltsearch.trainables.settings import MeterSettings
    from stiltsearch.trainables.tasks import get_task
    from stiltsearch.trainables.throughput import build_workload, measure

    torch.manual_seed(0)
    trained = portable(MultiTaskModel(load_encoder(tiny_model), [get_task("toy_xnli")]).eval())
    plain, compiled = deploy(trained, TrialParams(compile=False)), deploy(trained, TrialParams(compile=True))
    assert not isinstance(plain.encoder, torch._dynamo.eval_frame.OptimizedModule)
    assert isinstance(compiled.encoder, torch._dynamo.eval_frame.OptimizedModule)
    workload = build_workload([[5 + (i * 3 + j) % 200 for j in range(8 + i % 9)] for i in range(48)], pad_id=1,
                              batch_size=16, max_sequences=48)
    with torch.inference_mode():
        for batch in workload:  # lengths 8-16 across batches: dynamic shapes, no recompile error
            ids, mask = batch["input_ids"], batch["attention_mask"]
            torch.testing.assert_close(compiled.logits("toy_xnli", ids, mask), plain.logits("toy_xnli", ids, mask),
                                       atol=1e-4, rtol=1e-4)
    speed = measure(lambda ids, mask: compiled.logits("toy_xnli", ids, mask), workload, MeterSettings(warmup=1, repeats=2))
    assert speed.tokens == sum(int(b["attention_mask"].sum()) for b in workload) and speed.tokens_per_sec > 0
