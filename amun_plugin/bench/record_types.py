"""Typed contents of the bench's records: one frozen dataclass per record kind, read from a line of
``results.jsonl`` / ``tuning.jsonl`` with :func:`parse_record` and written back with ``to_json()``.

The JSON is derived from the dataclass fields (:class:`_Json`): one key per field, named as the
field; a nested part (:class:`OriginalSummary`, :class:`Proxy`, :class:`RequestRow`,
:class:`ForgettingResult`) is read and written by its own fields, a tuple is a JSON list. A field
without a default is required (a record lacking it is refused). A key a record lacks (one it
predates, see ``migrations``) reads as the field's default and stays absent when written back
(``absent``); keys no field names (the run stamps ``run_id`` / ``git_commit`` / ``git_dirty``, or a
key a newer writer adds, at the top or inside a nested part) are kept in ``rest`` and written back
as they were. A record is read through ``migrations.upgrade`` and written back at the schema version
it was read at, so ``to_json(from_json(line)) == line`` holds for every record, old ones included.
Numbers are kept as read (an int stays an int). Per-metric dicts (``metrics``: audit key -> %,
``gaps``: table title -> Avg Gap) stay dicts: their keys come from the suite's config.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, TypeVar, Union

from amun_plugin.bench.migrations import SCHEMA_KEY, SCHEMA_VERSION, downgrade, record_version, upgrade
from amun_plugin.bench.records import Cell, CellKind, Setting
from amun_plugin.errors import InvalidInputError

__all__ = ["AblationRecord", "BenchRecord", "ChainRecord", "ForgettingRecord", "ForgettingResult",
           "OriginalRecord", "OriginalSummary", "Proxy", "RequestRow", "RetrainRecord", "UnlearnRecord",
           "parse_record", "parse_records"]

_COORDS = frozenset(f.name for f in dataclasses.fields(Cell))
_NOT_A_KEY = {"json": False}
"""Field metadata: bookkeeping, not a JSON key of its own."""
_J = TypeVar("_J", bound="_Json")
_R = TypeVar("_R", bound="_Record")


@dataclass(frozen=True)
class _Codec:
    """How one field is read from and written to JSON."""

    required: bool
    read: Callable[[Any], Any]
    write: Callable[[Any], Any]


def _as_is(value: Any) -> Any:
    return value


def _codec(hint: Any, required: bool) -> _Codec:
    """The codec of a field typed ``hint``: a tuple of items, a nested part (or None), or plain JSON."""
    if typing.get_origin(hint) is tuple:
        item = _codec(typing.get_args(hint)[0], True)
        return _Codec(required, lambda v: tuple(map(item.read, v)), lambda v: [item.write(x) for x in v])
    part = next((t for t in typing.get_args(hint) or (hint,) if isinstance(t, type) and issubclass(t, _Json)), None)
    if part is not None:
        return _Codec(required, lambda v: None if v is None else part.from_json(v),
                      lambda v: None if v is None else v.to_json())
    return _Codec(required, _as_is, _as_is)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


_CODECS: dict[type, dict[str, _Codec]] = {}


def _codecs(cls: type) -> dict[str, _Codec]:
    """The JSON keys of ``cls`` (its fields, bookkeeping aside) and their codecs, in field order."""
    if cls not in _CODECS:
        hints = typing.get_type_hints(cls)
        _CODECS[cls] = {f.name: _codec(hints[f.name], _required(f))
                        for f in dataclasses.fields(cls) if f.metadata.get("json", True)}
    return _CODECS[cls]


@dataclass(frozen=True, kw_only=True)
class _Json:
    """A JSON object whose keys are the dataclass's fields (see the module docstring)."""

    absent: frozenset[str] = field(default=frozenset(), metadata=_NOT_A_KEY)
    rest: Mapping[str, Any] = field(default_factory=dict, metadata=_NOT_A_KEY)

    @classmethod
    def from_json(cls: type[_J], data: Mapping[str, Any]) -> _J:
        return cls(**cls._values(data))

    @classmethod
    def _values(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor's arguments for ``data``; a required key that is missing is an
        :class:`InvalidInputError`."""
        codecs = _codecs(cls)
        missing = [name for name, codec in codecs.items() if codec.required and name not in data]
        if missing:
            raise InvalidInputError(f"a bench record lacks {', '.join(missing)}: {sorted(data)}")
        return {**{name: codec.read(data[name]) for name, codec in codecs.items() if name in data},
                "absent": frozenset(name for name in codecs if name not in data),
                "rest": {k: v for k, v in data.items() if k not in codecs}}

    def to_json(self) -> dict[str, Any]:
        """The JSON this was read from (or would be written as)."""
        values = {name: codec.write(getattr(self, name)) for name, codec in _codecs(type(self)).items()}
        return {**{k: v for k, v in values.items() if k not in self.absent}, **self.rest}


@dataclass(frozen=True, kw_only=True)
class OriginalSummary(_Json):
    """The original model of a Retrain / Original record: train / test accuracy (%) and training
    time (s); an Original record written since the saturation check also has ``saturated_fraction``
    (% of training samples with p_y == 1.0 in float32) and ``rt_auc`` (RMIA RT AUC in %, None
    without RMIA) — :attr:`has_rt_auc` says whether the record has that key (without it, a reader
    takes the RT AUC from the audit's metrics)."""

    train_accuracy: float
    test_accuracy: float
    train_seconds: float
    saturated_fraction: float | None = None
    rt_auc: float | None = None

    @property
    def has_rt_auc(self) -> bool:
        return "rt_auc" not in self.absent


@dataclass(frozen=True, kw_only=True)
class Proxy(_Json):
    """The retrain-free estimate of an unlearning run: the estimated Avg Gap on the validation
    hold-out, its terms and the proxy measurement (``unlearn/calibration.py``); records written
    since the bench kept the retrain-free audit's bootstrap also have its 95% percentile interval
    (``interval``: [low, high]) and each term's (``intervals``: term -> [low, high])."""

    estimated_gap: float
    terms: Mapping[str, Any]
    measure: Mapping[str, Any]
    interval: Sequence[float] | None = None
    intervals: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class _Record(_Json):
    """What every record has: its id, cell coordinates (a coordinate it predates is absent: an old
    ablation record has no ``resolved``) and the schema version it was read at (``migrations``)."""

    id: str
    cell: Cell = field(metadata=_NOT_A_KEY)
    schema: int = field(default=SCHEMA_VERSION, metadata=_NOT_A_KEY)

    @classmethod
    def from_json(cls: type[_R], data: Mapping[str, Any]) -> _R:
        """The typed record of one JSON line (see the module docstring)."""
        if "id" not in data:
            raise InvalidInputError(f"a bench record has no id: {sorted(data)}")
        line = upgrade(data)
        values = cls._values({k: v for k, v in line.items() if k not in _COORDS and k != SCHEMA_KEY})
        values["absent"] |= _COORDS - set(line)
        return cls(**values, cell=Cell.from_record(line), schema=record_version(data))

    def to_json(self) -> dict[str, Any]:
        """The JSON line this record was read from (or would be written as)."""
        coords = {k: v for k, v in self.cell.coords().items() if k in _COORDS and k not in self.absent}
        return downgrade({**coords, **super().to_json()}, self.schema)

    @property
    def kind(self) -> CellKind:
        return self.cell.kind

    @property
    def method(self) -> str:
        return self.cell.method

    @property
    def variant(self) -> str:
        return self.cell.variant

    @property
    def fraction(self) -> float:
        return self.cell.fraction

    @property
    def setting(self) -> Setting:
        return self.cell.setting

    @property
    def git_dirty(self) -> bool:
        """Whether the record was computed from a working tree with uncommitted changes."""
        return bool(self.rest.get("git_dirty"))


@dataclass(frozen=True, kw_only=True)
class _AuditRecord(_Record):
    """A Retrain or Original row: the model's audit (``metrics``), its gaps per table to the
    retrained model, the row's time (s) and the original model's summary."""

    metrics: Mapping[str, float]
    gaps: Mapping[str, float]
    seconds: float
    original: OriginalSummary


@dataclass(frozen=True, kw_only=True)
class RetrainRecord(_AuditRecord):
    """The Retrain row: the retrained model's audit, Avg Gap 0, the retraining time (s) twice."""

    retrain_seconds: float


@dataclass(frozen=True, kw_only=True)
class OriginalRecord(_AuditRecord):
    """The Original row: the model before unlearning audited on the cell's split (0 s)."""


@dataclass(frozen=True, kw_only=True)
class UnlearnRecord(_Record):
    """One unlearning run (kind ``unlearn``: a table cell, ``tune``: a tuning grid point): the
    audit, gaps per table, wall time incl. the D_A search (s), the search alone, the retraining
    time of the same split, the unlearner's scalar statistics; ``tuning_mode`` and ``proxy`` (the
    retrain-free estimate) are None on records written before they existed. A run that diverged
    (non-finite weights) has ``diverged`` (the error), empty metrics and gaps, and no retraining
    time, statistics or proxy."""

    unlearner: str
    metrics: Mapping[str, float]
    gaps: Mapping[str, float]
    seconds: float
    seconds_search: float
    retrain_seconds: float | None = None
    stats: Mapping[str, Any] | None = None
    tuning_mode: str | None = None
    proxy: Proxy | None = None
    diverged: str | None = None

    @property
    def mode(self) -> str:
        """The tuning mode the run's options were chosen by ("oracle" where the record names none)."""
        return self.tuning_mode or "oracle"


@dataclass(frozen=True, kw_only=True)
class RequestRow(_Json):
    """The audit after one request of a chain (1-based ``request``): ``metrics`` and
    ``fr_minus_ft`` (FR AUC − FT AUC of the first table's MIA) where a model was audited, ``gaps``
    and ``retrain_seconds`` where a retrained model exists, ``seconds`` the request's wall time
    (none for the Retrain chain)."""

    request: int
    metrics: Mapping[str, float] | None = None
    fr_minus_ft: float | None = None
    gaps: Mapping[str, float] | None = None
    retrain_seconds: float | None = None
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class ChainRecord(_Record):
    """A continuous-unlearning chain: one :class:`RequestRow` per request, the total wall time (s)
    and, for a method's chain, its unlearner and the D_A precomputation time (s)."""

    requests: tuple[RequestRow, ...]
    seconds: float
    unlearner: str | None = None
    seconds_precompute: float | None = None

    @property
    def wall_seconds(self) -> float:
        """The chain's wall time; a Retrain chain's is the time of the retrainings it ran."""
        if self.method == "Retrain":
            return float(sum(q.retrain_seconds or 0.0 for q in self.requests))
        return float(self.seconds)


@dataclass(frozen=True, kw_only=True)
class AblationRecord(_Record):
    """One ablation fine-tuning: test accuracy (%) per epoch (entry 0: before fine-tuning), the
    final forget / retain accuracy (%), the training time (s) and the union's size."""

    test_accuracy: tuple[float, ...]
    forget_accuracy: float
    retain_accuracy: float
    seconds: float
    train_size: int

    @property
    def union(self) -> str:
        return str(self.cell.extra["union"])

    @property
    def substitute(self) -> str:
        """The fine-tuning set X (``adv``, ``orig``, ...; the cell's ``extra["variant"]``)."""
        return str(self.cell.extra["variant"])


@dataclass(frozen=True, kw_only=True)
class ForgettingResult(_Json):
    """The forgetting-quality protocol's result (``evaluate/forgetting_protocol.py``): F, the final
    score and its RA / TA ratios, the per-example ε, the U-LiRA dict (values and ``*_ci``
    intervals), the number of runs N and the timing dicts of the unlearned and retrained sides."""

    F: float
    final_score: float
    RA_ratio: float
    TA_ratio: float
    epsilon: tuple[float, ...]
    max_resolvable_epsilon: float
    runs: int
    ulira: Mapping[str, Any]
    unlearned: Mapping[str, Any]
    retrained: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class ForgettingRecord(_Record):
    """One forgetting-quality cell: the protocol's metrics and result, the mean wall time of an
    unlearning run (s), the D_A search (s, once per cell) and the mean retraining time (s)."""

    metrics: Mapping[str, float]
    forgetting: ForgettingResult
    seconds: float
    seconds_search: float
    retrain_seconds: float

    @property
    def result(self) -> ForgettingResult:
        return self.forgetting


BenchRecord = Union[RetrainRecord, OriginalRecord, UnlearnRecord, ChainRecord, AblationRecord, ForgettingRecord]

_TYPES: dict[CellKind, type[_Record]] = {
    CellKind.RETRAIN: RetrainRecord, CellKind.ORIGINAL: OriginalRecord, CellKind.UNLEARN: UnlearnRecord,
    CellKind.TUNE: UnlearnRecord, CellKind.CHAIN: ChainRecord, CellKind.ABLATION: AblationRecord,
    CellKind.FORGETTING: ForgettingRecord,
}


def parse_record(data: Mapping[str, Any] | BenchRecord) -> BenchRecord:
    """The typed record of a JSON line (a typed record is returned as is)."""
    if isinstance(data, _Record):
        return data  # type: ignore[return-value]
    try:
        kind = CellKind(data["kind"])
    except (KeyError, ValueError):
        raise InvalidInputError(f"a bench record has no known kind: {data.get('kind')!r}") from None
    return _TYPES[kind].from_json(data)  # type: ignore[return-value]


def parse_records(records: Any) -> list[BenchRecord]:
    return [parse_record(r) for r in records]  # JSON lines or typed records, in order
