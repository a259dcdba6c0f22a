"""What the ``amun`` command line (:mod:`amun_plugin.cli`) prints besides a command's output: library
messages as plain lines on stderr, an error as one line phrased with the command's flags, and a
library warning as one ``warning:`` line."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from amun_plugin.errors import AmunError, MissingInputError


class _StderrLines(logging.StreamHandler):  # type: ignore[type-arg]
    """Log records as plain lines on whatever ``sys.stderr`` is when each is logged."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging() -> None:
    """Library messages (logger ``amun_plugin``) as plain lines on stderr, INFO and above; once."""
    logger = logging.getLogger("amun_plugin")
    if not any(isinstance(h, _StderrLines) for h in logger.handlers):
        handler = _StderrLines()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


CLI_INPUTS: dict[str, dict[str, str]] = {
    "unlearn": {"retain": "drop --no-retain (this method trains on D_R)",
                "validation": "give --validation-size N (test samples held out as non-members)",
                "holdout": "give --holdout-size N (test samples held out) or --holdout-file F.npz"},
    "audit": {"reference_bank": "give --bank-dir DIR (with --reference-models K to build the bank there)",
              "retain": "drop --no-retain (this method trains on D_R)"},
}
"""How each command gives an input a component asks for (:class:`MissingInputError`): its flags,
not the Python API's keywords."""


def error_line(exc: AmunError, argv: list[str]) -> str:
    """``exc`` as the one line the CLI prints: a missing input phrased with the command's flags."""
    if isinstance(exc, MissingInputError):
        command = next((a for a in argv if not a.startswith("-")), "")
        how = CLI_INPUTS.get(command, {}).get(exc.needs)
        if how is not None:
            return f"error: {exc.phrased(how)}"
    return f"error: {exc}"


_SHOWN: set[str] = set()
"""The warnings one ``main()`` has printed (each once, e.g. a broken plugin seen by every host)."""


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A library warning during a command as one ``warning:`` line on stderr, once (no file and
    line of library code: the command the user typed is the call it is about)."""
    if str(message) not in _SHOWN:
        _SHOWN.add(str(message))
        click.echo(f"warning: {message}", err=True)
