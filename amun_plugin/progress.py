"""Progress display: tqdm bars on a terminal, one line per stage anywhere else.

A log file or a pipe (``amun demo > log``) gets no bar redraws: where a bar would be, the stage is
announced by one line on stderr when it starts and one when it ends. ``progress`` flags keep their
meaning (False: silent); only the way progress is shown depends on whether stderr is a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["announce", "interactive", "progress_bar", "bars_allowed"]


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


class _StageLines:
    """The tqdm subset used in this package (update, set_postfix, close), printing one line when
    the stage starts and one when it closes (with the last postfix and the elapsed time): "done",
    or "interrupted" / "failed" when it closes because an exception (Ctrl-C) is ending it."""

    def __init__(self, desc: str, total: int, unit: str) -> None:
        self.desc, self.total, self.unit, self.n = desc, total, unit, 0
        self.postfix = ""
        self.start = time.perf_counter()
        announce(f"{desc}: started ({total} {unit}s)")

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        extra = f", {self.postfix}" if self.postfix else ""
        error = sys.exc_info()[1]  # the exception unwinding through the caller's ``finally``, if any
        how = "done" if error is None else "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        announce(f"{self.desc}: {how}, {self.n}/{self.total} {self.unit}s in {time.perf_counter() - self.start:.1f} s"
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
