"""Typed contents of the bench's records: one frozen dataclass per record kind, read from a line of
``results.jsonl`` / ``tuning.jsonl`` with :func:`parse_record` and written back with ``to_json()``.

The on-disk format is the writers' (``cells``, ``chains``, ``ablation``, ``forgetting_suite``):
``to_json(from_json(line)) == line`` holds for every record, old ones included. A key a record
predates is absent on disk and ``None`` here (written back absent); keys no type names (the run
stamps ``run_id`` / ``git_commit`` / ``git_dirty``, or a field a newer writer adds, at the top or
inside a nested part) are kept in ``rest`` and written back as they were. Numbers are kept as read
(an int stays an int). Per-metric dicts (``metrics``: audit key -> %, ``gaps``: table title -> Avg
Gap) stay dicts: their keys come from the suite's config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Union

from amun_plugin.bench.records import Cell, CellKind, Setting
from amun_plugin.errors import InvalidInputError

__all__ = ["AblationRecord", "BenchRecord", "ChainRecord", "ForgettingRecord", "ForgettingResult",
           "OriginalRecord", "OriginalSummary", "Proxy", "RequestRow", "RetrainRecord", "UnlearnRecord",
           "parse_record", "parse_records"]

_COORDS = tuple(f.name for f in dataclasses.fields(Cell))


def _take(data: Mapping[str, Any], names: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The values of ``names`` in ``data`` (``optional`` ones None where absent); a required key
    that is missing is an :class:`InvalidInputError`."""
    missing = [n for n in names if n not in data and n not in optional]
    if missing:
        raise InvalidInputError(f"a bench record lacks {', '.join(missing)}: {sorted(data)}")
    return {n: data.get(n) for n in names}


def _rest(data: Mapping[str, Any], names: Any) -> dict[str, Any]:
    """The keys of ``data`` no type names (kept to be written back as they were)."""
    return {k: v for k, v in data.items() if k not in names}


def _put(values: Mapping[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """``values`` without the optional keys that are None (absent on disk)."""
    return {k: v for k, v in values.items() if not (k in optional and v is None)}


@dataclass(frozen=True)
class OriginalSummary:
    """The original model of a Retrain / Original record: train / test accuracy (%) and training
    time (s); an Original record written since the saturation check also has ``saturated_fraction``
    (% of training samples with p_y == 1.0 in float32; None: absent) and ``rt_auc`` (RMIA RT AUC in %,
    None without RMIA) — ``has_rt_auc`` says whether the record has that key (without it, a reader
    takes the RT AUC from the audit's metrics)."""

    train_accuracy: float
    test_accuracy: float
    train_seconds: float
    saturated_fraction: float | None = None
    has_rt_auc: bool = False
    rt_auc: float | None = None
    rest: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OriginalSummary:
        names = ("train_accuracy", "test_accuracy", "train_seconds", "saturated_fraction", "rt_auc")
        base = _take(data, names[:3])
        return cls(**base, saturated_fraction=data.get("saturated_fraction"), has_rt_auc="rt_auc" in data,
                   rt_auc=data.get("rt_auc"), rest=_rest(data, names))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
                               "train_seconds": self.train_seconds}
        if self.saturated_fraction is not None:
            out["saturated_fraction"] = self.saturated_fraction
        if self.has_rt_auc:
            out["rt_auc"] = self.rt_auc
        out.update(self.rest)
        return out


@dataclass(frozen=True)
class Proxy:
    """The retrain-free estimate of an unlearning run: the estimated Avg Gap on the validation
    hold-out, its terms and the proxy measurement (``unlearn/calibration.py``)."""

    estimated_gap: float
    terms: Mapping[str, Any]
    measure: Mapping[str, Any]
    rest: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Proxy:
        names = ("estimated_gap", "terms", "measure")
        return cls(**_take(data, names), rest=_rest(data, names))

    def to_json(self) -> dict[str, Any]:
        return {"estimated_gap": self.estimated_gap, "terms": dict(self.terms), "measure": dict(self.measure),
                **self.rest}


@dataclass(frozen=True)
class _Record:
    """What every record has: its id and cell coordinates, the coordinates it predates
    (``absent``: an old ablation record has no ``resolved``) and the keys no type names."""

    id: str
    cell: Cell
    absent: tuple[str, ...] = ()
    rest: Mapping[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = ()
    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Any:
        """The typed record of one JSON line (see the module docstring)."""
        if "id" not in data:
            raise InvalidInputError(f"a bench record has no id: {sorted(data)}")
        known = {"id", *_COORDS, *cls.FIELDS}
        values = cls._read(_take(data, cls.FIELDS, cls.OPTIONAL))
        return cls(id=data["id"], cell=Cell.from_record(data), absent=tuple(n for n in _COORDS if n not in data),
                   rest={k: v for k, v in data.items() if k not in known}, **values)

    @classmethod
    def _read(cls, values: dict[str, Any]) -> dict[str, Any]:
        return values  # a kind with nested types converts them here

    def _write(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}  # a kind with nested types writes them here

    def to_json(self) -> dict[str, Any]:
        """The JSON line this record was read from (or would be written as)."""
        coords = {k: v for k, v in self.cell.coords().items() if k not in self.absent}
        return {**coords, "id": self.id, **_put(self._write(), self.OPTIONAL), **self.rest}

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


@dataclass(frozen=True)
class _AuditRecord(_Record):
    """A Retrain or Original row: the model's audit (``metrics``), its gaps per table to the
    retrained model, the row's time (s) and the original model's summary."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    gaps: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    original: OriginalSummary | None = None

    @classmethod
    def _read(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {**values, "original": OriginalSummary.from_json(values["original"])}

    def _write(self) -> dict[str, Any]:
        assert self.original is not None
        return {**super()._write(), "original": self.original.to_json()}


@dataclass(frozen=True)
class RetrainRecord(_AuditRecord):
    """The Retrain row: the retrained model's audit, Avg Gap 0, the retraining time (s) twice."""

    retrain_seconds: float = 0.0

    FIELDS = ("metrics", "gaps", "seconds", "retrain_seconds", "original")


@dataclass(frozen=True)
class OriginalRecord(_AuditRecord):
    """The Original row: the model before unlearning audited on the cell's split (0 s)."""

    FIELDS = ("metrics", "gaps", "seconds", "original")


@dataclass(frozen=True)
class UnlearnRecord(_Record):
    """One unlearning run (kind ``unlearn``: a table cell, ``tune``: a tuning grid point): the
    audit, gaps per table, wall time incl. the D_A search (s), the search alone, the retraining
    time of the same split, the unlearner's scalar statistics; ``tuning_mode`` and ``proxy`` (the
    retrain-free estimate) are None on records written before they existed. A run that diverged
    (non-finite weights) has ``diverged`` (the error), empty metrics and gaps, and no retraining
    time, statistics or proxy."""

    unlearner: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    gaps: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    seconds_search: float = 0.0
    retrain_seconds: float | None = None
    stats: Mapping[str, Any] | None = None
    tuning_mode: str | None = None
    proxy: Proxy | None = None
    diverged: str | None = None

    FIELDS = ("unlearner", "metrics", "gaps", "seconds", "seconds_search", "retrain_seconds", "stats",
              "tuning_mode", "proxy", "diverged")
    OPTIONAL = ("retrain_seconds", "stats", "tuning_mode", "proxy", "diverged")

    @classmethod
    def _read(cls, values: dict[str, Any]) -> dict[str, Any]:
        proxy = values["proxy"]
        return {**values, "proxy": None if proxy is None else Proxy.from_json(proxy)}

    def _write(self) -> dict[str, Any]:
        return {**super()._write(), "proxy": None if self.proxy is None else self.proxy.to_json()}

    @property
    def mode(self) -> str:
        """The tuning mode the run's options were chosen by ("oracle" where the record names none)."""
        return self.tuning_mode or "oracle"


@dataclass(frozen=True)
class RequestRow:
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
    rest: Mapping[str, Any] = field(default_factory=dict)

    OPTIONAL: ClassVar[tuple[str, ...]] = ("metrics", "fr_minus_ft", "gaps", "retrain_seconds", "seconds")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestRow:
        names = ("request", *cls.OPTIONAL)
        return cls(**_take(data, names, cls.OPTIONAL), rest=_rest(data, names))

    def to_json(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "rest"}
        return {**_put(values, self.OPTIONAL), **self.rest}


@dataclass(frozen=True)
class ChainRecord(_Record):
    """A continuous-unlearning chain: one :class:`RequestRow` per request, the total wall time (s)
    and, for a method's chain, its unlearner and the D_A precomputation time (s)."""

    requests: tuple[RequestRow, ...] = ()
    seconds: float = 0.0
    unlearner: str | None = None
    seconds_precompute: float | None = None

    FIELDS = ("requests", "seconds", "unlearner", "seconds_precompute")
    OPTIONAL = ("unlearner", "seconds_precompute")

    @classmethod
    def _read(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {**values, "requests": tuple(RequestRow.from_json(q) for q in values["requests"])}

    def _write(self) -> dict[str, Any]:
        return {**super()._write(), "requests": [q.to_json() for q in self.requests]}

    @property
    def wall_seconds(self) -> float:
        """The chain's wall time; a Retrain chain's is the time of the retrainings it ran."""
        if self.method == "Retrain":
            return float(sum(q.retrain_seconds or 0.0 for q in self.requests))
        return float(self.seconds)


@dataclass(frozen=True)
class AblationRecord(_Record):
    """One ablation fine-tuning: test accuracy (%) per epoch (entry 0: before fine-tuning), the
    final forget / retain accuracy (%), the training time (s) and the union's size."""

    test_accuracy: tuple[float, ...] = ()
    forget_accuracy: float = 0.0
    retain_accuracy: float = 0.0
    seconds: float = 0.0
    train_size: int = 0

    FIELDS = ("test_accuracy", "forget_accuracy", "retain_accuracy", "seconds", "train_size")

    @classmethod
    def _read(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {**values, "test_accuracy": tuple(values["test_accuracy"])}

    def _write(self) -> dict[str, Any]:
        return {**super()._write(), "test_accuracy": list(self.test_accuracy)}

    @property
    def union(self) -> str:
        return str(self.cell.extra["union"])

    @property
    def substitute(self) -> str:
        """The fine-tuning set X (``adv``, ``orig``, ...; the cell's ``extra["variant"]``)."""
        return str(self.cell.extra["variant"])


@dataclass(frozen=True)
class ForgettingResult:
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
    rest: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ForgettingResult:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name != "rest")
        values = _take(data, names)
        return cls(**{**values, "epsilon": tuple(values["epsilon"])}, rest=_rest(data, names))

    def to_json(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "rest"}
        return {**values, "epsilon": list(self.epsilon), **self.rest}


@dataclass(frozen=True)
class ForgettingRecord(_Record):
    """One forgetting-quality cell: the protocol's metrics and result, the mean wall time of an
    unlearning run (s), the D_A search (s, once per cell) and the mean retraining time (s)."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    forgetting: ForgettingResult | None = None
    seconds: float = 0.0
    seconds_search: float = 0.0
    retrain_seconds: float = 0.0

    FIELDS = ("metrics", "forgetting", "seconds", "seconds_search", "retrain_seconds")

    @classmethod
    def _read(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {**values, "forgetting": ForgettingResult.from_json(values["forgetting"])}

    def _write(self) -> dict[str, Any]:
        assert self.forgetting is not None
        return {**super()._write(), "forgetting": self.forgetting.to_json()}

    @property
    def result(self) -> ForgettingResult:
        assert self.forgetting is not None
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
    return _TYPES[kind].from_json(data)  # type: ignore[no-any-return]


def parse_records(records: Any) -> list[BenchRecord]:
    return [parse_record(r) for r in records]  # JSON lines or typed records, in order
