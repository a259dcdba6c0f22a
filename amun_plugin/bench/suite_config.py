"""Benchmark suite configuration: frozen dataclasses read strictly from YAML, with presets.

A suite file (``amun_plugin/suites/<name>.yaml``, shipped in the wheel; ``benchmarks/suites`` in a
source checkout is a link to that folder) holds::

    name: table1                 # the suite's name (results go to <output>/<name>-<preset>)
    kind: table                  # table | continuous | ablation | forgetting_quality
    description: ...
    base_presets: presets.yaml   # optional: shared presets (dataset, model, training, ...)
    default_preset: fmnist-cnn
    suite: {...}                 # SuiteConfig fields common to every preset
    presets: {fmnist-cnn: {...}, cifar10-resnet18: {...}}

The effective config is ``base_presets[preset]`` <- ``suite`` <- ``presets[preset]`` (mappings
merged key by key, everything else replaced). Unknown keys anywhere are errors. The parts of
the config (grid, methods, evaluation, tuning, ...) are :mod:`amun_plugin.bench.suite_specs`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from amun_plugin.bench.forgetting_config import ForgettingSpec
from amun_plugin.bench.suite_specs import (
    AblationSpec,
    AdversarialSource,
    ComponentSpec,
    ContinuousSpec,
    EvaluationSpec,
    GridSpec,
    MethodSpec,
    TableSpec,
    TrainingSpec,
    TrainingVariant,
    TuningSpec,
    _check_lists,
)
from amun_plugin.config import config_to_dict, load_yaml, make_config
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.gap import DEFAULT_GAP_KEYS, avg_gap

__all__ = [
    "AblationSpec",
    "AdversarialSource",
    "ComponentSpec",
    "ContinuousSpec",
    "EvaluationSpec",
    "GridSpec",
    "MethodSpec",
    "SUITES_DIR",
    "SuiteConfig",
    "SuiteKind",
    "TableSpec",
    "TrainingSpec",
    "TrainingVariant",
    "TuningSpec",
    "deep_merge",
    "gaps_by_table",
    "load_suite",
    "load_preset",
    "method_spec",
    "suite_path",
]

SUITES_DIR = Path(__file__).resolve().parents[1] / "suites"
"""The suites and presets shipped as package data (``benchmarks/suites`` links here)."""
_FILE_KEYS = {"name", "kind", "description", "base_presets", "default_preset", "suite", "presets"}
_PLAIN_NAME = re.compile(r"\w[\w .+-]*")
"""A suite or preset name: it names the run folder, so never a path (no ``/``, ``\\``, ``..`` or leading dot)."""


def _check_plain_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(value):
        raise InvalidInputError(f"{what} {value!r} must be a plain name (letters, digits, ' ', '_', '.', '+', '-', "
                                "starting with a letter or digit; not a path): it names the run folder")


class SuiteKind(str, Enum):
    """What a suite's cells are: one unlearning run, a chain of requests, or an ablation fine-tuning."""

    TABLE = "table"
    CONTINUOUS = "continuous"
    ABLATION = "ablation"
    FORGETTING_QUALITY = "forgetting_quality"  # F and U-LiRA over N runs (bench/forgetting_suite.py)


@dataclass(frozen=True)
class SuiteConfig:
    """Everything a suite run depends on. ``validation_size`` test samples (class-stratified) are
    held out as DAU's validation set and left out of the audit's D_T; ``threads``: torch threads
    per job; ``transfer_seed_offset``: D_A of ``adversarial: transfer`` comes from the original
    model of seed + offset; ``min_train_accuracy`` (%): an original model under it (or at chance
    on the test set) is refused before any unlearning runs
    (:func:`~amun_plugin.bench.original_check.check_memorises`); ``note``: a line a preset puts
    above its tables (e.g. that it is for trying the tool, not for ranking methods)."""

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("note",)

    name: str
    kind: SuiteKind
    dataset: ComponentSpec
    model: ComponentSpec
    description: str = ""
    preset: str = ""
    training: TrainingSpec = field(default_factory=TrainingSpec)
    device: str = "cpu"
    threads: int = 1
    validation_size: int = 0
    grid: GridSpec = field(default_factory=GridSpec)
    methods: tuple[MethodSpec, ...] = ()
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    tuning: TuningSpec = field(default_factory=TuningSpec)
    continuous: ContinuousSpec = field(default_factory=ContinuousSpec)
    ablation: AblationSpec = field(default_factory=AblationSpec)
    forgetting: ForgettingSpec = field(default_factory=ForgettingSpec)
    transfer_seed_offset: int = 100
    min_train_accuracy: float = 98.0
    note: str = ""

    def __post_init__(self) -> None:
        _check_plain_name(self.name, "suite name")
        if self.preset:
            _check_plain_name(self.preset, "preset")
        _check_lists(self, "suite")
        if not 0.0 <= self.min_train_accuracy <= 100.0:
            raise InvalidInputError(f"min_train_accuracy must lie in [0, 100] (%), got {self.min_train_accuracy}")
        labels = [m.label for m in self.methods]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise InvalidInputError(f"suite {self.name!r}: duplicate method label(s) {duplicates}; give each a label")
        if self.kind is not SuiteKind.ABLATION and not self.methods:
            raise InvalidInputError(f"suite {self.name!r} lists no methods")
        calibrated = [m.label for m in self.methods if m.holdout]
        if calibrated and self.kind is not SuiteKind.CONTINUOUS:
            raise InvalidInputError(f"suite {self.name!r}: holdout: true (method(s) {calibrated}) is for continuous "
                                    "suites; tables pass the hold-out per tuning mode")
        if calibrated and self.validation_size <= 0:
            raise InvalidInputError(f"suite {self.name!r}: method(s) {calibrated} run with the validation hold-out, "
                                    "but validation_size is 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML / JSON) that ``make_config(SuiteConfig, ...)`` reads back."""
        return config_to_dict(self)

    def with_runs(self, runs: int) -> "SuiteConfig":
        """The same suite with ``runs`` forget-set seeds (0..runs-1) per original model; for the
        forgetting_quality kind, ``runs`` unlearner runs and retrained models (N) instead."""
        if runs < 1:
            raise InvalidInputError(f"--runs must be >= 1, got {runs}")
        if self.kind is SuiteKind.FORGETTING_QUALITY:
            return dataclasses.replace(self, forgetting=dataclasses.replace(self.forgetting, runs=runs))
        grid = dataclasses.replace(self.grid, forget_seeds=tuple(range(runs)))
        return dataclasses.replace(self, grid=grid)

    def with_methods(self, labels: Sequence[str]) -> "SuiteConfig":
        """The same suite running only the methods labelled ``labels`` (in the suite's order)."""
        known = [m.label for m in self.methods]
        unknown = [label for label in labels if label not in known]
        if unknown or not labels:
            raise InvalidInputError(f"--methods: unknown method label(s) {unknown}; this suite has {', '.join(known)}")
        return dataclasses.replace(self, methods=tuple(m for m in self.methods if m.label in labels))

    def with_fractions(self, fractions: Sequence[float]) -> "SuiteConfig":
        """The same suite forgetting only the given fractions of the training set."""
        return make_config(SuiteConfig, deep_merge(self.to_dict(), {"grid": {"fractions": list(fractions)}}))

    def overridden(self, changes: Mapping[str, Any]) -> "SuiteConfig":
        """The same suite with ``changes`` (SuiteConfig fields as plain data, nested mappings merged
        key by key) applied and checked like the suite file, e.g. ``{"threads": 2}``."""
        return make_config(SuiteConfig, deep_merge(self.to_dict(), changes))


def method_spec(config: SuiteConfig, label: str) -> MethodSpec:
    """The suite's method with display label ``label``."""
    for method in config.methods:
        if method.label == label:
            return method
    raise InvalidInputError(f"suite {config.name!r} has no method labelled {label!r}")


def gaps_by_table(config: SuiteConfig, metrics: Mapping[str, float], retrain: Mapping[str, float]) -> dict:
    """Avg Gap against the retrained model, once per table (each table's MIA term)."""
    return {t.title: avg_gap(metrics, retrain, DEFAULT_GAP_KEYS + (t.mia,)) for t in config.evaluation.tables}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``override``; nested mappings merge key by key, other values replace."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def suite_path(suite: str | Path) -> Path:
    """A suite file: a path to a YAML file, or the name of one shipped in :data:`SUITES_DIR`."""
    path = Path(suite)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise InvalidInputError(f"suite file {path} not found")
        return path
    candidate = SUITES_DIR / f"{suite}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml") if p.stem != "presets")
        raise InvalidInputError(f"unknown suite {suite!r}; known suites: {', '.join(known) or '(none)'}")
    return candidate


def load_suite(suite: str | Path, preset: str | None = None) -> SuiteConfig:
    """Read a suite file (see the module docstring) and build its config for ``preset``."""
    path = suite_path(suite)
    raw = load_yaml(path)
    unknown = sorted(set(raw) - _FILE_KEYS)
    if unknown:
        raise InvalidInputError(f"{path}: unknown top-level key(s) {unknown}; valid: {sorted(_FILE_KEYS)}")
    presets = raw.get("presets") or {}
    chosen = preset or raw.get("default_preset") or next(iter(presets), None)
    if chosen is None or chosen not in presets:
        raise InvalidInputError(f"{path}: unknown preset {chosen!r}; presets: {', '.join(presets) or '(none)'}")
    merged: dict[str, Any] = {}
    if raw.get("base_presets"):
        shared = load_yaml(path.parent / str(raw["base_presets"]))
        if chosen not in shared:
            raise InvalidInputError(f"{raw['base_presets']}: has no preset {chosen!r}")
        merged = deep_merge(merged, shared[chosen] or {})
    merged = deep_merge(merged, raw.get("suite") or {})
    merged = deep_merge(merged, presets[chosen] or {})
    header = {"name": raw.get("name", path.stem), "kind": raw.get("kind", "table"),
              "description": raw.get("description", ""), "preset": chosen}
    return make_config(SuiteConfig, {**merged, **header})


def load_preset(name: str) -> dict[str, Any]:
    """The shared preset ``name`` of ``presets.yaml`` as plain data (dataset, model, training,
    device, ...), e.g. for ``amun train --preset``."""
    presets = load_yaml(SUITES_DIR / "presets.yaml")
    if name not in presets:
        raise InvalidInputError(f"unknown preset {name!r}; presets: {', '.join(presets)}")
    return dict(presets[name] or {})
