"""Writes that must arrive, in order, without making the caller wait: the driver's MLflow outbox.

Trials keep running while the MLflow server is away; what they report waits here and is delivered,
in the order it was written, once the server is back. One background thread does every write, so
writes never overtake each other.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

RETRY_S = 2.0  # between tries of a write (a server away: forever; a refused write: a few times)


class Outbox:
    """``put(write)`` returns at once; the thread runs each write until it succeeds.

    ``reachable()`` tells a server that is away (retry the write, forever) from a write the server
    refused (retry a few times, then drop it and say so: retrying a bad request forever would block
    every write behind it).
    """

    def __init__(self, reachable: Callable[[], bool], *, retry_s: float | None = None, attempts_when_reachable: int = 3,
                 say: Callable[[str], None] = print) -> None:
        self.reachable = reachable
        self.retry_s = RETRY_S if retry_s is None else retry_s
        self.attempts_when_reachable = attempts_when_reachable
        self.say = say
        self.queue: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue()
        self.dropped: list[str] = []
        self.away_since: float | None = None  # monotonic seconds; None while writes go through
        self.thread = threading.Thread(target=self._run, name="mlflow-outbox", daemon=True)
        self.thread.start()

    def put(self, what: str, write: Callable[[], None]) -> None:
        self.queue.put((what, write))

    @property
    def pending(self) -> int:
        return self.queue.unfinished_tasks

    def flush(self, timeout_s: float | None = None, every_s: float = 30.0) -> bool:
        """Wait until every write is delivered; True if it was. Says how many wait, every ``every_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last_said = time.monotonic()
        while self.queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            if time.monotonic() - last_said > every_s:
                self.say(f"mlflow: waiting to deliver {self.queue.unfinished_tasks} writes")
                last_said = time.monotonic()
            time.sleep(0.05)
        return True

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                self.queue.task_done()
                return
            what, write = item
            self._deliver(what, write)
            self.queue.task_done()

    def _deliver(self, what: str, write: Callable[[], None]) -> None:
        refused = 0
        while True:
            try:
                write()
            except Exception as error:  # noqa: BLE001 - any failure: find out whose it is, then retry or drop
                if not self.reachable():
                    if self.away_since is None:
                        self.away_since = time.monotonic()
                        self.say(f"mlflow: server unreachable; writes wait here and are delivered when it is back "
                                 f"({type(error).__name__})")
                    time.sleep(self.retry_s)
                    continue
                refused += 1
                if refused < self.attempts_when_reachable:
                    time.sleep(self.retry_s)
                    continue
                self.dropped.append(what)
                self.say(f"mlflow: dropped a write the server refused {refused} times ({what}): "
                         f"{str(error).splitlines()[0][:300] if str(error) else type(error).__name__}")
                return
            if self.away_since is not None:
                self.say(f"mlflow: server back after {time.monotonic() - self.away_since:.0f}s; delivering "
                         f"{self.queue.unfinished_tasks} waiting writes")
                self.away_since = None
            return
