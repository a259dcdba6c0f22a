"""The schema versions of the bench's records (a line of ``results.jsonl`` / ``tuning.jsonl``) and
the one place that turns an older record into the current format and back.

A record names its version under :data:`SCHEMA_KEY`; a record without it is version 1. Reading
upgrades a line to the current format (:func:`upgrade`), writing a record read at an older version
downgrades it again (:func:`downgrade`), so a committed line is written back exactly as it was.
The version key is no cell coordinate: it never enters a cell's id.

Versions:
  1. Records written before the version key. Keys a writer added later are absent on the records
     that predate them (and stay absent when written back): ``resolved`` (an ablation cell),
     ``tuning_mode`` and ``proxy`` (an unlearning run), ``saturated_fraction`` and ``rt_auc``
     (the original model's summary).
  2. ``"schema": 2``; otherwise the keys of version 1.

A change of format adds a version: a :class:`_Step` from the previous one (its ``up`` and the
exact inverse ``down``) and a line above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from amun_plugin.errors import InvalidInputError

__all__ = ["SCHEMA_KEY", "SCHEMA_VERSION", "downgrade", "record_version", "upgrade"]

SCHEMA_KEY = "schema"
Json = dict[str, Any]


def _same(record: Json) -> Json:
    return record


@dataclass(frozen=True)
class _Step:
    """From one version to the next (``up``) and back (``down``), version key aside."""

    up: Callable[[Json], Json]
    down: Callable[[Json], Json]


_STEPS = (_Step(_same, _same),)  # 1 -> 2: the version key only
SCHEMA_VERSION = len(_STEPS) + 1
"""The version every record written now carries."""


def record_version(record: Mapping[str, Any]) -> int:
    """The schema version of a record (1 without the key); a version this code does not know
    (a record of a newer amun_plugin) is an :class:`InvalidInputError`."""
    version = record.get(SCHEMA_KEY, 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise InvalidInputError(f"a bench record has schema {version!r}; this amun_plugin reads schemas 1 to "
                                f"{SCHEMA_VERSION} (a newer amun_plugin wrote it?)")
    return version


def upgrade(record: Mapping[str, Any]) -> Json:
    """The record in the current format (with the current version key)."""
    out = {k: v for k, v in record.items() if k != SCHEMA_KEY}
    for step in _STEPS[record_version(record) - 1:]:
        out = step.up(out)
    return {SCHEMA_KEY: SCHEMA_VERSION, **out}


def downgrade(record: Mapping[str, Any], version: int) -> Json:
    """A current-format record in the format of ``version`` (what :func:`upgrade` read)."""
    out = {k: v for k, v in record.items() if k != SCHEMA_KEY}
    for step in reversed(_STEPS[record_version({SCHEMA_KEY: version}) - 1:]):
        out = step.down(out)
    return out if version == 1 else {SCHEMA_KEY: version, **out}
