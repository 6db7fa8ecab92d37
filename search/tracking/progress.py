"""How far long work is, on the console: phase 1's pretraining steps and the search's trials.

On a terminal the state is one live tqdm line at the bottom (events are printed above it with
``tqdm.write``, so the bar is never torn). Where the output is not a terminal (CI, ``ray job
submit`` logs, a file) a bar redrawn with carriage returns is noise, so the same state is printed
as a plain line on stdout, in order with the event lines, each time the count moves (every
``plain_every`` units). Live or not is decided by whether the bar's stream (stderr) is a terminal.

The ETA is tqdm's with ``smoothing=0``: the units still to go at the average rate of the units
finished in this session (an earlier session's trials, ``initial``, are done but not timed here).
With trials run side by side that rate already counts the concurrency.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["Progress", "clock"]


def clock(seconds: float) -> str:
    """``754.2`` -> ``"12:34"``; an hour or more -> ``"1:02:03"`` (tqdm's own format)."""
    return tqdm.format_interval(max(0.0, seconds))


class Progress:
    """``total`` units of work named ``what`` (e.g. "search", 8 "trial"s), ``initial`` of them done."""

    def __init__(self, what: str, total: int, unit: str, *, initial: int = 0, plain_every: int = 1,
                 live: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.what, self.total, self.unit, self.initial = what, total, unit, initial
        self.plain_every = max(1, plain_every)
        self.done = initial
        self.postfix: dict[str, Any] = {}
        self.start = time.monotonic()
        self.bar: Any = None  # drawn at the first update: work that turns out to be cached shows no bar

    def _bar(self) -> tqdm:
        if self.bar is None:
            self.bar = tqdm(total=self.total, initial=self.initial, desc=self.what, unit=f" {self.unit}s",
                            file=self.stream, smoothing=0, dynamic_ncols=True, leave=True,
                            bar_format="{desc} {n_fmt}/{total_fmt}{unit} |{bar}| {elapsed} elapsed, "
                                       "ETA {remaining}{postfix}")
        return self.bar

    def eta(self) -> float | None:
        """Seconds still to go at this session's average rate; None before the first unit finishes."""
        finished = self.done - self.initial
        if finished <= 0:
            return None
        return (self.total - self.done) * (time.monotonic() - self.start) / finished

    def line(self) -> str:
        """The state as one plain line, e.g. "search: 3/8 trials, running 2, failed 0; 4:10 elapsed, ETA 6:57"."""
        eta = self.eta()
        state = "".join(f", {key} {value}" for key, value in self.postfix.items())
        return (f"{self.what}: {self.done}/{self.total} {self.unit}s{state}; "
                f"{clock(time.monotonic() - self.start)} elapsed, ETA {'?' if eta is None else clock(eta)}")

    def say(self, text: str) -> None:
        """An event line (printed to stdout, above a live bar)."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def update(self, done: int | None = None, **postfix: Any) -> None:
        """``done`` units in all (absolute, not a step), and the state shown beside the count."""
        before = self.done
        if done is not None:
            self.done = min(done, self.total)
        changed = postfix != self.postfix
        self.postfix = dict(postfix)
        if self.live:
            bar = self._bar()
            if changed:
                bar.set_postfix_str(", ".join(f"{key} {value}" for key, value in postfix.items()), refresh=False)
            bar.update(self.done - before)
            bar.refresh()
        elif self.done != before and (self.done % self.plain_every == 0 or self.done == self.total):
            print(self.line(), flush=True)  # on stdout, in order with the event lines

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
