"""Reading a search config: YAML (no key twice) to :class:`~.schema.SearchConfig`, with dotted
overrides, and back to plain data (:func:`to_dict`) for ``config.yaml`` and MLflow."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from stiltsearch.search.config.coerce import ConfigError, from_dict, shown
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.tracking.uris import stored_form

# --- reading --------------------------------------------------------------------------------


# The embedded toy search (no CONFIG, configs/toy.yaml) is every default but one: it optimises
# question 1 rather than xtreme_score, which a config that names no objectives gets (toy.yaml says why).
EMBEDDED_OBJECTIVES = ({"name": "non_english_nli", "direction": "max"}, {"name": "tokens_per_sec", "direction": "max"})


def load_config(path: str | Path | None = None, **overrides: Any) -> SearchConfig:
    """Read a YAML config (None: the embedded toy search) and apply top-level or dotted overrides."""
    raw: dict[str, Any] = {"objectives": [dict(o) for o in EMBEDDED_OBJECTIVES]}
    if path is not None:
        raw = read_yaml(path)
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return from_dict(SearchConfig, raw, "")


MAX_BYTES = 1 << 20  # a config file larger than 1 MiB is not a config (a hostile or wrong file)
MAX_ALIASES = 100  # YAML aliases in one file: enough for any config, too few for an "alias bomb"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last)
    and more than :data:`MAX_ALIASES` aliases; merge keys (``<<: *defaults``) work as YAML defines
    them (a key given beside the merge overrides the merged one)."""

    aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise ConfigError(f"more than {MAX_ALIASES} YAML aliases (*name); write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise ConfigError(f"{shown(key)}: given twice (line {key_node.start_mark.line + 1}); keep one")
            seen.add(key)
        self.flatten_mapping(node)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's top-level mapping: readable, UTF-8, YAML, no key twice."""
    try:
        with open(path, "rb") as file:  # at most one byte past the limit: /dev/zero is endless
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror}); pass a readable YAML file") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"config file {path}: more than a config's {MAX_BYTES:,} bytes; pass the search's YAML config")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader) or {}  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {path}: nested too deeply to be a config; fix the file") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"config file {path}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of fields, got {type(raw).__name__}")
    return raw


def to_dict(cfg: SearchConfig) -> dict[str, Any]:
    """Plain data (lists, not tuples) for YAML and MLflow; ``space`` as the config writes it; the
    tracking URI without credentials."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    tree = dataclasses.asdict(cfg)
    tree["space"] = dict(cfg.space.choices)
    tree["search"]["scheduler"] = cfg.search.scheduler.as_config()  # with its name
    if cfg.mlflow.tracking_uri:  # credentials are never written (search/tracking/uris.py)
        tree["mlflow"]["tracking_uri"] = stored_form(cfg.mlflow.tracking_uri)
    return dict(plain(tree))
