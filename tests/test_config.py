from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.config.reading import load_config
from stiltsearch.search.config.schema import SearchConfig

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_toy_config_is_the_default() -> None:
    """Every field's default but the objectives: the embedded search optimises question 1, a
    config that names no objectives the XTREME score."""
    import dataclasses

    from stiltsearch.search.config.sections import Objective

    embedded = load_config(None)
    assert load_config(ROOT / "configs" / "toy.yaml") == embedded
    assert embedded.objective_names == ["non_english_nli", "tokens_per_sec"]
    assert dataclasses.replace(embedded, objectives=SearchConfig().objectives) == SearchConfig()
    assert SearchConfig().objectives == (Objective("xtreme_score", "max"), Objective("tokens_per_sec", "max"))


def test_the_nli_objective_needs_an_nli_target(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("target_tasks: [toy_panx]\nobjectives: [{name: non_english_nli}]\n")
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.name: non_english_nli is read from an NLI target"):
        load_config(config)


def test_every_shipped_config_validates_and_names_only_registered_tasks_and_languages() -> None:
    from stiltsearch.trainables.tasks import TASKS

    paths = sorted((ROOT / "configs").glob("*.yaml"))
    assert {p.name for p in paths} >= {"toy.yaml", "paper.yaml", "xnli-efficiency.yaml"}
    for path in paths:
        cfg = load_config(path)
        for task in cfg.intermediate_tasks + cfg.target_tasks + tuple(cfg.training.recipes):
            assert task in TASKS, (path.name, task)
        offered = {lang for t in cfg.target_tasks for lang in TASKS[t].languages + TASKS[t].train_languages}
        assert set(cfg.languages) <= offered, path.name


def test_the_paper_config_is_the_papers_setup() -> None:
    from stiltsearch.trainables.tasks import PAPER_INTERMEDIATE, SUITES

    cfg = load_config(ROOT / "configs" / "paper.yaml")
    assert cfg.model == "xlm-roberta-large" and cfg.intermediate_tasks == PAPER_INTERMEDIATE
    assert cfg.target_tasks == SUITES["xtreme"]
    assert cfg.training.max_length == 256 and cfg.training.qa_max_length == 384
    low, high = cfg.space.intermediate_lr
    assert low <= 1e-5 <= high
    # tokens/sec is an objective the trials differ in: the deployment knobs that set it are searched
    assert all(len(cfg.space.choices[k]) >= 2 for k in ("layers_kept", "max_seq_length", "precision"))
    assert cfg.search.accelerator == "h100" and cfg.search.budget.gpu_hours is not None


def test_dry_run_prints_the_trial_plan_without_training(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(ROOT / "configs" / "paper.yaml"),
                           "--dry-run"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "phase 1: xlm-roberta-large (24 layers)" in out
    assert "needs before running: data.ccg: ccg reads ccg from files, not from the Hugging Face hub" in out  # CCG's files are not on this machine
    baseline = out[out.index("trial 0 (baseline):"):out.index("trial 1")]
    assert "phase 2: skipped" in baseline
    # XNLI: 392,702 English rows, 5 epochs at batch 32 -> 61,360 steps; evaluated in its 15 languages
    assert "xnli: train en (~392,702 rows), 61,360 steps at batch 32, length 256" in baseline
    assert "accuracy on dev in 15 languages" in baseline
    assert "xquad: train en (~87,599 rows), 10,950 steps at batch 16, length 384" in baseline  # SQuAD 1.1
    assert "udpos" in baseline and "seqeval_f1 on dev in 29 languages" in baseline  # 4 lack a dev split
    assert "bucc2018: no training; bucc_f1 on dev in 4 languages" in baseline
    assert "trial 1 (a random draw from the space):" in out
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()
    assert "early stopping (moasha): each trial reports at 0.111, 0.333 of its phase-2 and phase-3 steps" in out


def test_validate_makes_every_check_run_makes_before_it_starts(tmp_path: Path) -> None:
    """A data directory that does not exist: ``validate`` said "valid" while ``run`` refused it."""
    from transformers import XLMRobertaConfig

    XLMRobertaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                     vocab_size=100).save_pretrained(tmp_path / "model")
    config = tmp_path / "c.yaml"
    config.write_text(f"name: v\nmodel: {tmp_path / 'model'}\nintermediate_tasks: [mnli]\ntarget_tasks: [xnli]\n"
                      "languages: [de]\ndata: {facebook/xnli: /nonexistent}\n")
    for command in ("validate", "run"):
        done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", command, str(config)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 2 and done.stderr.strip() == (
            "stiltsearch: error: data.facebook/xnli: /nonexistent is not a directory; give a local copy in the "
            "hub's layout (<dir>/<config>/<split>-*.parquet)"), (command, done.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "model"]  # nothing created


def test_a_real_model_that_cannot_be_loaded_stops_the_run_before_ray(tmp_path: Path) -> None:
    config = tmp_path / "real.yaml"
    config.write_text(f"name: real\nmodel: {tmp_path / 'no-such-model'}\nintermediate_tasks: [mnli]\n"
                      f"target_tasks: [xnli]\nlanguages: [de]\noutput_dir: {tmp_path / 'runs'}\n"
                      f"space:\n  layers_kept: [2]\n")
    done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(config)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    assert done.stderr.startswith(f"stiltsearch: error: model: cannot load '{tmp_path / 'no-such-model'}'")
    assert not (tmp_path / "runs").exists()


def test_overrides_and_yaml_exponents_without_a_dot(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("space:\n  target_lr: [1e-5, 3e-5]\n")  # YAML 1.1 reads these as strings
    cfg = load_config(path, **{"search.num_trials": 3, "name": "other"})
    assert cfg.space.target_lr == (1e-5, 3e-5)
    assert cfg.search.num_trials == 3 and cfg.name == "other"


BAD = {
    "unknown key": ("search:\n  num_trails: 3\n", "search.num_trails: unknown field; allowed here: num_trials"),
    "unknown task": ("intermediate_tasks: [toy_mnli, squad9]\n", "intermediate_tasks: unknown intermediate task 'squad9'"),
    "target as intermediate": ("intermediate_tasks: [toy_xnli]\n", "intermediate_tasks: unknown intermediate task 'toy_xnli'"),
    "unknown language": ("languages: [xa, klingon]\n", "languages: 'klingon' has no translate-train data"),
    "empty targets": ("target_tasks: []\n", "target_tasks: must name at least one target task"),
    "zero lr": ("space:\n  target_lr: [0, 1.0e-3]\n", "space.target_lr: learning rates must be > 0"),
    "negative lr": ("space:\n  intermediate_lr: [-1.0e-4, 1.0e-3]\n", "space.intermediate_lr: learning rates must be > 0"),
    "wrong type": ("search:\n  num_trials: many\n", "search.num_trials: expected an integer"),
    "bad objective": ("objectives:\n  - {name: bleu, direction: max}\n", "objectives[0].name: unknown objective 'bleu'"),
    "too many layers": ("space:\n  layers_kept: [8]\n", "space.layers_kept: 8 exceeds the largest toy model's 4 layers"),
    "repeated size": ("toy_model:\n  layers: [4, 4]\n", "toy_model.layers: give one or more distinct layer counts"),
    "unknown precision": ("space:\n  precision: [fp32, fp8]\n", "space.precision: 'fp8'; allowed: fp32, bf16, fp16, int8"),
    "unknown attention": ("space:\n  attention: [flash]\n", "space.attention: 'flash'; allowed: sdpa, eager"),
    "not yaml": ("search: [unclosed\n", "not valid YAML"),
    "not a mapping": ("- a\n- b\n", "the top level must be a mapping"),
    "toy task on a real model": ("model: xlm-roberta-base\nspace:\n  layers_kept: [2]\n",
                                 "model: toy task 'toy_anli' needs `model: toy`"),
    "real task on the toy model": ("target_tasks: [xnli]\n", "model: 'toy' only runs toy tasks; 'xnli' needs a real"),
    "data nobody reads": ("data: {facebook/xnli: /tmp}\n", "data.facebook/xnli: no task of this config reads it"),
    "recipe of another task": ("training:\n  recipes: {mnli: {epochs: 2}}\n", "training.recipes.mnli: not a task"),
    "relative speed, no reference": ("objectives:\n  - {name: relative_speed, direction: max}\n",
                                     "objectives[0].name: relative_speed is measured only with throughput.reference"),
    "bad eval language": ("eval_languages: {toy_xnli: [xz]}\n", "eval_languages.toy_xnli: toy_xnli has no language 'xz'"),
    # each knob's choices, checked by its declaration (spaces/knobs.py)
    "duplicate choice": ("space:\n  max_seq_length: [16, 16]\n", "space.max_seq_length: a value is listed twice"),
    "too long": ("space:\n  max_seq_length: [1024]\n", "space.max_seq_length: give values in 8..512"),
    "no choice": ("space:\n  attention: []\n", "space.attention: give one or more of sdpa, eager"),
    "unknown knob": ("space:\n  layers: [1]\n", "space.layers: unknown field; allowed here: intermediate_lr"),
    "infinite lr": ("space:\n  target_lr: [1.0e-4, .inf]\n", "space.target_lr[1]: expected a finite number"),
    "bool as lr": ("space:\n  target_lr: [true, 1.0e-3]\n", "space.target_lr[0]: expected a number, got True"),
    # each section checks its own fields (trainables/settings.py)
    "infinite epochs": ("target_tasks: [toy_xnli]\ntraining:\n  recipes: {toy_xnli: {epochs: .inf}}\n",
                        "training.recipes.toy_xnli.epochs: expected a finite number"),
    "seed out of range": ("search:\n  seed: -1\n", "search.seed: must be in 0..2**32-1"),
    "empty toy layers": ("toy_model:\n  layers: []\n", "toy_model.layers: give one or more distinct layer counts"),
    "unknown scheduler": ("search:\n  scheduler: hyperband\n", "search.scheduler: 'hyperband'; allowed: fifo, moasha"),
    "reduction factor 1": ("search:\n  scheduler: moasha\n  reduction_factor: 1\n",
                           "search.reduction_factor: must be a finite number > 1"),
    "whole budget as the smallest": ("search:\n  scheduler: moasha\n  min_budget: 1.0\n",
                                     "search.min_budget: give the smallest rung as a fraction of a trial's budget in (0, 1)"),
    "nested: a field of another scheduler": ("search:\n  scheduler: {name: fifo, reduction_factor: 3}\n",
                                             "search.scheduler.reduction_factor: unknown field; allowed here: "),
    "nested: no name": ("search:\n  scheduler: {reduction_factor: 3}\n", "search.scheduler.name: None; allowed: fifo, moasha"),
    "nested: reduction factor 1": ("search:\n  scheduler: {name: moasha, reduction_factor: 1}\n",
                                   "search.scheduler.reduction_factor: must be a finite number > 1"),
    "nested and flat at once": ("search:\n  scheduler: {name: moasha}\n  min_budget: 0.5\n",
                                "search.min_budget: give it under search.scheduler (the nested form), not beside it"),
    "moasha on a multi-worker trial": ("search:\n  scheduler: moasha\n  workers_per_trial: 2\n",
                                       "search.scheduler: moasha needs workers_per_trial: 1"),
    "every trial shares a phase 2": ("search:\n  share_phase2: 1\n",
                                     "search.share_phase2: give the fraction of trials that reuse a trained phase 2, in [0, 1)"),
    "bound above bound": ("objectives:\n  - {name: tokens_per_sec, min: 10, max: 5}\n",
                          "objectives[0]: min 10 is above max 5"),
    # precision and device combinations that cannot work (a trial would fail only after measuring)
    "fp16 without a GPU": ("space:\n  precision: [bf16, fp16]\n", "space.precision: fp16 needs a CUDA device"),
    "int8 on GPUs": ("search:\n  gpus_per_worker: 1\nspace:\n  precision: [bf16, int8]\n",
                     "space.precision: int8 (dynamic quantization) runs on CPU only"),
    "a shared GPU timed in the trial": ("search:\n  gpus_per_worker: 0.5\n",
                                        "search.gpus_per_worker: 0.5 shares a GPU between trials"),
    "zero 3": ("training:\n  zero_stage: 3\n", "training.zero_stage: 3 is refused"),
    "micro batch 0": ("training:\n  micro_batch_size: 0\n", "training.micro_batch_size: must be >= 1"),
}




def test_a_scheduler_is_given_by_name_nested_with_its_settings_or_in_the_flat_form_of_earlier_releases() -> None:
    from stiltsearch.search.config.reading import to_dict
    from stiltsearch.search.schedulers.fifo import FifoSettings
    from stiltsearch.search.schedulers.moasha import MoashaSettings

    nested = load_config(search={"scheduler": {"name": "moasha", "reduction_factor": 4, "min_budget": 0.25}})
    flat = load_config(search={"scheduler": "moasha", "reduction_factor": 4, "min_budget": 0.25})
    assert nested == flat and nested.search.scheduler == MoashaSettings(reduction_factor=4, min_budget=0.25)
    assert nested.search.scheduler.rungs == pytest.approx((0.25,))
    assert load_config(search={"scheduler": "moasha"}).search.scheduler == MoashaSettings()
    # fifo never read the flat keys: an earlier release's config.yaml (every field written) reads as fifo
    assert load_config(search={"scheduler": "fifo", "reduction_factor": 3, "min_budget": 1 / 9}).search.scheduler \
        == FifoSettings()
    # written back in the nested form, which reads as the same config
    written = to_dict(nested)["search"]["scheduler"]
    assert written == {"name": "moasha", "reduction_factor": 4.0, "min_budget": 0.25}
    assert load_config(search={"scheduler": written}) == nested

@pytest.mark.parametrize("text,message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_file() -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config("/nonexistent/search.yaml")


def test_cli_exits_2_before_ray_starts_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"output_dir: {tmp_path / 'runs'}\ntarget_tasks: []\n")
    done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(bad)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stiltsearch: error: target_tasks:")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_length_past_the_models_position_table_is_refused_before_ray(tmp_path: Path) -> None:
    """XLM-R counts positions from pad_token_id + 1: a table of 66 holds 64 tokens; a longer
    max_seq_length failed inside every trial with an index error."""
    from transformers import XLMRobertaConfig

    XLMRobertaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=100,
                     max_position_embeddings=66).save_pretrained(tmp_path / "model")
    config = tmp_path / "c.yaml"
    for space, says in (("{layers_kept: [2], max_seq_length: [32, 128]}",
                         "space.max_seq_length: 128 tokens is more than model holds (64 positions); give at most 64"),
                        ("{layers_kept: [2], max_seq_length: [64]}", None)):
        config.write_text(f"name: v\nmodel: {tmp_path / 'model'}\nintermediate_tasks: [mnli]\ntarget_tasks: [xnli]\n"
                          f"languages: [de]\nspace: {space}\ntraining: {{max_length: 64}}\n")
        done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "validate", str(config)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if says is None:
            assert done.returncode == 0, done.stderr
        else:
            assert done.returncode == 2 and done.stderr.strip() == f"stiltsearch: error: {says}", done.stderr


def test_yaml_merge_keys_work_and_hostile_yaml_is_one_short_line(tmp_path: Path) -> None:
    merged = tmp_path / "merged.yaml"
    merged.write_text("search: &base {num_trials: 3, max_concurrent: 1}\n"
                      "throughput:\n  <<: {repeats: 2, warmup: 1}\n  repeats: 4\n")
    cfg = load_config(merged)
    assert (cfg.throughput.repeats, cfg.throughput.warmup) == (4, 1)  # the key beside the merge wins
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("languages: &l [xa]\n" + "".join(f"k{i}: *l\n" for i in range(101)))
    with pytest.raises(ConfigError, match=r"more than 100 YAML aliases"):
        load_config(aliases)
    deep = tmp_path / "deep.yaml"
    deep.write_text("languages: " + "[" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(deep)
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="more than a config's"):
        load_config(huge)
    wide = tmp_path / "wide.yaml"
    wide.write_text("languages: {" + ", ".join(f"k{i}: [{i}, {i}]" for i in range(5000)) + "}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(wide)
    assert len(str(refused.value)) < 300  # the value is shown cut short, never whole
