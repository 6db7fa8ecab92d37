"""What of a config may become MLflow params: nothing that looks like a secret or embeds credentials."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from stiltsearch.spaces.knobs import KNOBS, Config

SECRET = re.compile(r"token|password|passwd|secret|api[_-]?key|credential", re.IGNORECASE)


def redact(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as MLflow strings, minus anything that looks like a secret or embeds credentials."""
    clean = {}
    for key, value in params.items():
        text = str(value)
        if SECRET.search(key) or re.search(r"://[^/\s]*:[^/\s]*@", text):
            continue
        clean[key] = text[:6000]  # MLflow's param value limit
    return clean


def trial_params(config: Config) -> dict[str, str]:
    """A trial's sampled config as params, each knob shown as it declares (subsets as readable
    '+'-joined lists); the trial number is a tag, not a param."""
    return redact({k.name: k.show(config[k.name]) for k in KNOBS if k.name in config})
