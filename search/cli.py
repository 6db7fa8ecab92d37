"""``stiltsearch``: the command line.

  stiltsearch run [CONFIG]        run a search (no CONFIG: the embedded toy search, configs/toy.yaml);
                                  --dry-run prints the trial plan instead
  stiltsearch resume DIR          continue a search however it stopped (Ctrl-C, kill -9, a reboot)
  stiltsearch pareto TARGET       print a search's current front and write its plot; TARGET is a
                                  search directory or an MLflow experiment (running or not)
  stiltsearch report DIR          write a search's report (STILTs against direct fine-tuning: fronts,
                                  matched speed-up and score gain, importance; HTML and PNG)
  stiltsearch confirm DIR --seeds K
                                  re-run the front's trials and the baseline under K new training
                                  seeds (trials of the same search); the report gets error bars
  stiltsearch validate CONFIG     check a config and print it resolved, without running anything
  stiltsearch list WHAT           the registered tasks, knobs, objectives, schedulers or head kinds
                                  (--markdown: as the docs site's reference tables)

Bad input exits with code 2 and one line naming the field, before Ray starts.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from stiltsearch.search.driver import SearchResult

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors as the CLI's other errors: one line naming the flag and the fix, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="stiltsearch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="run a search")
    run.add_argument("config", nargs="?", help="search config YAML (default: the embedded toy search)")
    run.add_argument("--trials", type=int, help="override search.num_trials")
    run.add_argument("--concurrency", type=int, help="override search.max_concurrent")
    run.add_argument("--name", help="override the search name (MLflow experiment, study)")
    run.add_argument("--output-dir", help="override output_dir (searches go to <output_dir>/<name>-<time>)")
    run.add_argument("--address", help="an existing Ray cluster (else $RAY_ADDRESS, else a local Ray)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the trial plan (phases, tasks, languages, steps) and exit; nothing is trained")
    resume = sub.add_parser("resume", help="continue a stopped or killed search")
    resume.add_argument("search_dir", help="the search directory `stiltsearch run` printed")
    resume.add_argument("--trials", type=int, help="raise search.num_trials (default: as configured)")
    resume.add_argument("--address", help="an existing Ray cluster (else $RAY_ADDRESS, else a local Ray)")
    resume.add_argument("--new-mlflow-run", action="store_true",
                        help="the MLflow store lost the search's parent run: make a new one there and log every "
                             "finished trial to it from the study")
    front = sub.add_parser("pareto", help="print a search's current Pareto front and write its plot")
    front.add_argument("target", help="a search directory, or the name of an MLflow experiment")
    front.add_argument("--tracking-uri", help="for an experiment: the MLflow store (else $MLFLOW_TRACKING_URI, "
                                              "else sqlite:///<cwd>/mlflow.db)")
    front.add_argument("--out", help="where the table and plots go (default: the search directory, or "
                                     "./<experiment>-pareto)")
    report = sub.add_parser("report", help="write a search's report: STILTs against direct fine-tuning (HTML, PNG)")
    report.add_argument("target", help="a search directory")
    report.add_argument("--out", help="where the report goes (default: <search dir>/report)")
    confirm = sub.add_parser("confirm", help="re-run the front and the baseline under new training seeds")
    confirm.add_argument("search_dir", help="a finished search's directory")
    confirm.add_argument("--seeds", type=int, default=3, help="new training seeds per point (default 3)")
    confirm.add_argument("--address", help="an existing Ray cluster (else $RAY_ADDRESS, else a local Ray)")
    validate = sub.add_parser("validate", help="check a config without running it")
    validate.add_argument("config")
    listing = sub.add_parser("list", help="the registered tasks, knobs, objectives, schedulers or head kinds")
    listing.add_argument("what", choices=("tasks", "knobs", "objectives", "schedulers", "heads"))
    listing.add_argument("--markdown", action="store_true", help="a Markdown table (the docs' reference pages)")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    pairs = {"search.num_trials": args.trials, "search.max_concurrent": args.concurrency, "name": args.name,
             "output_dir": args.output_dir}
    return {k: v for k, v in pairs.items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad flag (2, its line already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    # Imports after parsing: `--help` and bad input answer in a second, before torch and Ray load.
    from stiltsearch.search.config.coerce import ConfigError

    if args.command == "list":
        from stiltsearch.search import registries

        print(registries.render(registries.table(args.what), markdown=args.markdown), end="")
        return 0
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"stiltsearch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\nstiltsearch: interrupted; finished trials are kept. Continue with: stiltsearch resume <search dir>",
              file=sys.stderr)
        return 130
    except Exception as exc:
        from stiltsearch.search.layout import SearchError
        from stiltsearch.search.tracking.uris import TrackingUnavailable

        if isinstance(exc, (SearchError, TrackingUnavailable)):
            print(f"stiltsearch: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if _disk_full(exc):  # mid-search: what was written is whole (SQLite, atomic files), the rest waits
            print(f"stiltsearch: error: the disk is full ({exc.__class__.__name__}); free space, then continue with "
                  "`stiltsearch resume <search dir>`", file=sys.stderr)
            return 1
        raise


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that found no space left (the OS's ENOSPC or SQLite's own)."""
    import errno

    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        "database or disk is full" in str(exc))


def _dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; bad input raises (:func:`main` makes it one line, exit 2)."""
    if args.command in ("run", "validate"):
        return _run_or_validate(args)
    if args.command == "pareto":
        from stiltsearch.search.results.show import show_front

        show_front(args.target, tracking_uri=args.tracking_uri, out=args.out)
        return 0
    if args.command == "report":
        from stiltsearch.search.results.show import show_report

        show_report(args.target, out=args.out)
        return 0
    if args.command == "confirm":

        from stiltsearch.search.driver import confirm_search

        return _finish(confirm_search(args.search_dir, args.seeds, address=_address(args.address)))
    return _finish(_resume(args))


def _run_or_validate(args: argparse.Namespace) -> int:

    from stiltsearch.search.config.reading import load_config, to_dict

    cfg = load_config(args.config, **(_overrides(args) if args.command == "run" else {}))
    if args.command == "validate":
        import yaml

        from stiltsearch.search.launch import preflight

        preflight.check(cfg, address=_address(None))  # what `run` checks before it creates anything

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        print(f"# {args.config}: valid", file=sys.stderr)
        return 0
    if args.dry_run:
        from stiltsearch.search.planning.dryrun import plan_lines

        print(f"dry run of {args.config or 'the embedded toy search'}: nothing is trained")
        print("\n".join(plan_lines(cfg, address=_address(args.address))))
        return 0
    from stiltsearch.search.driver import run_search

    return _finish(run_search(cfg, address=_address(args.address)))


def _resume(args: argparse.Namespace) -> SearchResult:

    from stiltsearch.search.driver import resume_search

    if args.trials is not None and args.trials < 1:
        from stiltsearch.search.config.coerce import ConfigError

        raise ConfigError("search.num_trials: --trials must be at least 1")
    return resume_search(args.search_dir, address=_address(args.address), num_trials=args.trials,
                         new_mlflow_run=args.new_mlflow_run)


def _address(flag: str | None) -> str | None:
    """The Ray cluster to join: ``--address``, else ``$RAY_ADDRESS``, else None (a local Ray of the
    search's own); ``auto`` resolved here, once, and said, so every later step joins that cluster."""
    import os

    address = flag or os.environ.get("RAY_ADDRESS") or None
    if address != "auto":
        return address
    from stiltsearch.search.launch.clustercheck import resolve_auto
    from stiltsearch.search.layout import SearchError

    resolved, how = resolve_auto()
    if resolved is None:
        raise SearchError(f"--address: {how}")
    print(f"--address auto: {resolved}, {how}", flush=True)
    return resolved


def _finish(result: Any) -> int:
    """Exit code of a search: 0 done, 130 interrupted (resumable), 1 if nothing completed or MLflow
    did not receive everything."""
    from stiltsearch.search.driver import report_locations

    report_locations(result)
    if not result.delivered:
        refused = (f" (it refused {len(result.missing)}, the first: {result.missing[0]})" if result.missing else "")
        print(f"stiltsearch: error: MLflow at {result.tracking_uri} did not receive every write{refused}; when it "
              f"is back, `stiltsearch resume {result.search_dir}` delivers what is missing (if the store lost the "
              "search, add --new-mlflow-run)", file=sys.stderr)
        return 1
    if result.interrupted:
        return 130
    if not result.front.outcomes:
        print(f"stiltsearch: error: all {result.front.failed} trials failed; see MLflow tag stiltsearch.error",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
