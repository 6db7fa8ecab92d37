"""What one trial runs: the three-phase pipeline, its engine, tasks, metrics and the throughput meter.

Nothing here imports from ``stiltsearch.search``: data flows from the driver into trials only.
"""


def quiet_libraries() -> None:
    """Keep trial output to what a user reads: no per-load reports or progress bars."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
