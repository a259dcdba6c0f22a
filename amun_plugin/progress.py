"""Progress display: tqdm bars on a terminal, one line per stage anywhere else.

A log file or a pipe (``amun demo > log``) gets no bar redraws: where a bar would be, the stage is
announced by one line on stderr when it starts and one when it ends, and a long stage by a line
every ~10% of its estimated length (at least 10 s and at most 60 s apart) with the time elapsed and
an estimate of the time left: ``train: 840/2520 steps, 4.2 min elapsed, ~8.4 min left``. A
terminal's tqdm bar shows the same (elapsed<remaining). ``progress`` flags keep their
meaning (False: silent); only the way progress is shown depends on whether stderr is a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

__all__ = ["announce", "interactive", "progress_bar", "bars_allowed", "duration"]

MIN_LINE_GAP = 10.0
"""Seconds at least between two progress lines of a stage (a short stage prints none)."""
MAX_LINE_GAP = 60.0
"""Seconds at most between two progress lines of a stage."""


def interactive() -> bool:
    """Whether stderr (where bars and stage lines go) is a terminal."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def bars_allowed(progress: bool | str) -> bool | str:
    """``progress`` where tqdm bars may be drawn (a terminal), else False: pass the result on to
    code that draws bars directly."""
    return progress if progress and interactive() else False


def announce(line: str) -> None:
    """One stage line on stderr, where a bar would be drawn on a terminal (see the module docstring)."""
    print(line, file=sys.stderr, flush=True)


def duration(seconds: float, minute_digits: int = 1) -> str:
    """``42 s``, ``4.2 min`` (``minute_digits`` decimals) or ``1.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.{minute_digits}f} min"
    return f"{seconds / 3600:.1f} h"


class _StageLines:
    """The tqdm subset used in this package (update, set_postfix, close), printing one line when
    the stage starts, progress lines with an ETA while it runs (see the module docstring), and one
    when it closes (with the last postfix and the elapsed time): "done", or "interrupted" /
    "failed" when it closes because an exception (Ctrl-C) is ending it."""

    def __init__(self, desc: str, total: int, unit: str, clock: Callable[[], float] = time.perf_counter) -> None:
        self.desc, self.total, self.unit, self.n = desc, total, unit, 0
        self.postfix = ""
        self.clock = clock
        self.start = self.last_line = clock()
        announce(f"{desc}: started ({total} {unit}s)")

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        elapsed = now - self.start
        if 0 < self.n < self.total and now - self.last_line >= self._gap(elapsed):
            self.last_line = now
            left = elapsed * (self.total - self.n) / self.n
            announce(f"{self.desc}: {self.n}/{self.total} {self.unit}s, {duration(elapsed)} elapsed, "
                     f"~{duration(left)} left")

    def _gap(self, elapsed: float) -> float:
        """Seconds between progress lines: ~10% of the stage's estimated length, within the bounds."""
        estimated = elapsed * self.total / max(1, self.n)
        return min(MAX_LINE_GAP, max(MIN_LINE_GAP, estimated / 10))

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        extra = f", {self.postfix}" if self.postfix else ""
        error = sys.exc_info()[1]  # the exception unwinding through the caller's ``finally``, if any
        how = "done" if error is None else "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        announce(f"{self.desc}: {how}, {self.n}/{self.total} {self.unit}s in {self.clock() - self.start:.1f} s"
                 f"{extra}")


def progress_bar(progress: bool | str, total: int, desc: str, unit: str = "it", **tqdm_options: Any) -> Any:
    """None when ``progress`` is falsy; a tqdm bar on a terminal; else stage lines. A string
    ``progress`` is the description."""
    if not progress:
        return None
    label = progress if isinstance(progress, str) else desc
    if not interactive():
        return _StageLines(label, total, unit)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit=unit, **tqdm_options)
