from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stiltsearch.search.config import ConfigError, SearchConfig, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_toy_config_is_the_default() -> None:
    assert load_config(ROOT / "configs" / "toy.yaml") == SearchConfig() == load_config(None)


def test_every_shipped_config_validates() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(path)


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
}


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
