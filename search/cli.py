"""``stiltsearch``: the command line.

  stiltsearch run [CONFIG]        run a search (no CONFIG: the embedded toy search, configs/toy.yaml)
  stiltsearch validate CONFIG     check a config and print it resolved, without running anything

Bad input exits with code 2 and one line naming the field, before Ray starts.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stiltsearch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a search")
    run.add_argument("config", nargs="?", help="search config YAML (default: the embedded toy search)")
    run.add_argument("--trials", type=int, help="override search.num_trials")
    run.add_argument("--concurrency", type=int, help="override search.max_concurrent")
    run.add_argument("--name", help="override the search name (MLflow experiment, study)")
    run.add_argument("--output-dir", help="override output_dir (searches go to <output_dir>/<name>-<time>)")
    run.add_argument("--address", help="an existing Ray cluster (else $RAY_ADDRESS, else a local Ray)")
    validate = sub.add_parser("validate", help="check a config without running it")
    validate.add_argument("config")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    pairs = {"search.num_trials": args.trials, "search.max_concurrent": args.concurrency, "name": args.name,
             "output_dir": args.output_dir}
    return {k: v for k, v in pairs.items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Imports after parsing: `--help` and bad input answer in a second, before torch and Ray load.
    from stiltsearch.search.config import ConfigError, load_config, to_dict

    try:
        cfg = load_config(args.config, **(_overrides(args) if args.command == "run" else {}))
    except ConfigError as exc:
        print(f"stiltsearch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.command == "validate":
        import yaml

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        print(f"# {args.config}: valid", file=sys.stderr)
        return 0

    import os

    from stiltsearch.search.driver import report_locations, run_search

    try:
        result = run_search(cfg, address=args.address or os.environ.get("RAY_ADDRESS"))
    except KeyboardInterrupt:
        print("\nstiltsearch: interrupted; finished trials are kept in MLflow and the study", file=sys.stderr)
        return 130
    report_locations(result)
    if not result.outcomes:
        print(f"stiltsearch: error: all {result.failed} trials failed; see MLflow tag stiltsearch.error", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
