"""The bench's record coordinates: what a cell is, which setting and forget split it names, and the
JSON lines a run writes (``results.jsonl``) loaded and checked against their ids. The typed
contents of a record (per kind) are in ``record_types``.

Everything here is data: the computing modules (``cells``, ``chains``, ``ablation``,
``forgetting_suite``) and the readers (``suite_tables``, ``suite_plots``, ``forgetting_tables``)
import it, and it imports none of them. The enums are ``str`` enums, so a record read from JSON
compares equal to them and a cell's content hash (its id) is the one of its plain strings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from amun_plugin.artifacts import content_hash
from amun_plugin.bench.migrations import SCHEMA_KEY, SCHEMA_VERSION, record_version
from amun_plugin.errors import InvalidInputError

__all__ = ["ABLATION_SUBSTITUTES", "ABLATION_UNIONS", "CONTROLS", "Cell", "CellKind", "ORIGINAL", "OTHER_SEED",
           "Setting", "SplitRef", "load_records"]


class Setting(str, Enum):
    """The paper's two settings: the unlearner may read D_R, or it may not."""

    WITH_RETAIN = "with_retain"
    WITHOUT_RETAIN = "without_retain"


class CellKind(str, Enum):
    """What a cell computes (its record's ``kind``)."""

    RETRAIN = "retrain"  # the retrained model's audit (the gold standard row)
    ORIGINAL = "original"  # the model before unlearning, audited on the cell's split
    UNLEARN = "unlearn"  # one unlearning run of a table
    TUNE = "tune"  # one unlearning run of a tuning grid point
    CHAIN = "chain"  # a continuous-unlearning chain of requests
    ABLATION = "ablation"  # one ablation fine-tuning (paper §6.2.1)
    FORGETTING = "forgetting"  # N unlearning runs scored by the forgetting-quality protocol


ABLATION_SUBSTITUTES = ("adv", "orig", "adv_rs", "adv_rl", "orig_rl", "orig_advl")
"""The ablation's fine-tuning sets (paper §6.2.1): D_A or one of its substitutes."""
ABLATION_UNIONS = ("all", "forget", "adversarial")
"""What the ablation fine-tunes on besides the substitute set."""

ORIGINAL, OTHER_SEED = "Original", "Retrain (other seed)"
CONTROLS = (ORIGINAL, OTHER_SEED)
"""The forgetting-quality suite's control rows (method labels)."""


@dataclass(frozen=True)
class SplitRef:
    """Names a forget split so a job can rebuild it: a random ``fraction`` of the train set drawn
    with ``forget_seed``, or (``requests`` set) the first ``requests`` requests of the continuous
    chain drawn with ``forget_seed``."""

    forget_seed: int
    fraction: float | None = None
    requests: int | None = None

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.requests is None):
            raise InvalidInputError(f"a split reference names a fraction or a number of requests, got {self}")

    @classmethod
    def random(cls, fraction: float, forget_seed: int) -> SplitRef:
        return cls(int(forget_seed), fraction=float(fraction))

    @classmethod
    def continuous(cls, forget_seed: int, requests: int) -> SplitRef:
        return cls(int(forget_seed), requests=int(requests))


@dataclass(frozen=True)
class Cell:
    """Coordinates of one result; ``options`` are the method's options, ``extra`` any other
    coordinate (ablation variant and union, tuning mode), ``resolved`` the hash of the cache key of
    the method's full config (its defaults included, see :func:`~amun_plugin.config.cache_key`), so
    a changed default yields new cells instead of stale reuse. Its id is the content hash of all
    fields (enums hash as their values)."""

    kind: CellKind
    method: str = "Retrain"
    variant: str = "standard"
    original_seed: int = 0
    fraction: float = 0.1
    forget_seed: int = 0
    setting: Setting = Setting.WITH_RETAIN
    unlearn_seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    resolved: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", CellKind(self.kind))
            object.__setattr__(self, "setting", Setting(self.setting))
        except ValueError as exc:
            raise InvalidInputError(f"invalid cell: {exc}") from None

    @property
    def id(self) -> str:
        return content_hash(dataclasses.asdict(self))

    @property
    def with_retain(self) -> bool:
        return self.setting is Setting.WITH_RETAIN

    def coords(self) -> dict[str, Any]:
        """The JSON fields every record starts with: its schema version (``migrations``; not part
        of the id), id and coordinates."""
        return {SCHEMA_KEY: SCHEMA_VERSION, "id": self.id,
                **{k: _plain(v) for k, v in dataclasses.asdict(self).items()}}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Cell:
        """The cell a record (a line of ``results.jsonl``) was computed for."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: record[k] for k in names if k in record})


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``results.jsonl`` / ``tuning.jsonl``, each checked against its cell: a line
    whose id is not the content hash of its coordinates (an edited line), or of a schema version this
    code does not know, is refused. A record written before a coordinate existed (an old ablation
    record has no ``resolved``) is read as is."""
    names = {f.name for f in dataclasses.fields(Cell)}
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        try:
            record_version(record)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{path}:{number}: {exc}") from None
        if names <= set(record) and Cell.from_record(record).id != record["id"]:
            raise InvalidInputError(f"{path}:{number}: the record's id does not match its coordinates")
        records.append(record)
    return records
