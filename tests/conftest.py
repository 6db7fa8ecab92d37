"""Shared fixtures: a tiny pretrained toy encoder, built once per session in a temporary cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# DeepSpeed JIT-compiles one C++ op on first use (~30 s); share the build across test sessions.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "stiltsearch" / "torch_extensions"))
os.environ.setdefault("PYTHONWARNINGS", "ignore")
# No test may reach the Hugging Face hub: real loaders read fixture files, and a test of the
# unreachable-hub error must fail fast rather than retry DNS for 30 s.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache per session (speed, phase 2); its phase-1 models (``models/``, keyed by a hash
    of their inputs and built under a lock) come from $STILTSEARCH_TEST_MODELS when it is set, so
    that .ci/run's pytest runs build each toy encoder once rather than once per marker."""
    root = tmp_path_factory.mktemp("stiltsearch-cache")
    shared = os.environ.get("STILTSEARCH_TEST_MODELS")
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        (root / "models").symlink_to(Path(shared).resolve(), target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def tiny_model(cache: Path) -> str:
    """A 2-layer, 64-wide toy XLM-R with a short MLM pretraining: seconds, not minutes."""
    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.pretrain import ensure_toy_model
    from stiltsearch.trainables.settings import ToyModelSpec

    quiet_libraries()
    spec = ToyModelSpec(layers=2, hidden=64, heads=2, intermediate=128, corpus_per_language=2000, mlm_steps=60,
                        mlm_batch_size=32)
    return str(ensure_toy_model(spec, cache, progress=lambda _: None))
