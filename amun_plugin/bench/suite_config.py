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
merged key by key, everything else replaced). Unknown keys anywhere are errors.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from amun_plugin.bench.forgetting_config import ForgettingSpec
from amun_plugin.bench.records import ABLATION_SUBSTITUTES, ABLATION_UNIONS, Setting
from amun_plugin.config import config_to_dict, load_yaml, make_config
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.gap import DEFAULT_GAP_KEYS, avg_gap
from amun_plugin.training import TrainConfig
from amun_plugin.unlearn.continuous import CALIBRATION_BASELINES

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
SETTINGS = tuple(s.value for s in Setting)
_FILE_KEYS = {"name", "kind", "description", "base_presets", "default_preset", "suite", "presets"}
_PLAIN_NAME = re.compile(r"\w[\w .+-]*")
"""A suite or preset name: it names the run folder, so never a path (no ``/``, ``\\``, ``..`` or leading dot)."""


def _check_plain_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(value):
        raise InvalidInputError(f"{what} {value!r} must be a plain name (letters, digits, ' ', '_', '.', '+', '-', "
                                "starting with a letter or digit; not a path): it names the run folder")


def _check_lists(spec: Any, owner: str) -> None:
    """Refuse a scalar where the suite file needs a list (``forget_seeds: "zero"``)."""
    for item in dataclasses.fields(spec):
        value = getattr(spec, item.name)
        if str(item.type).startswith("tuple[") and not isinstance(value, tuple):
            raise InvalidInputError(f"{owner}.{item.name} must be a list, got {value!r}")


class SuiteKind(str, Enum):
    """What a suite's cells are: one unlearning run, a chain of requests, or an ablation fine-tuning."""

    TABLE = "table"
    CONTINUOUS = "continuous"
    ABLATION = "ablation"
    FORGETTING_QUALITY = "forgetting_quality"  # F and U-LiRA over N runs (bench/forgetting_suite.py)


class TrainingVariant(str, Enum):
    """How original and retrained models are trained (``robust`` suite, see ``amun_plugin.training.robust``)."""

    STANDARD = "standard"
    TRADES = "trades"
    LIPSCHITZ = "lipschitz"


class AdversarialSource(str, Enum):
    """Where a method's D_A comes from: none (not used), the model being unlearned (``own``),
    or an independently trained original model of another seed (``transfer``, App. E.4)."""

    NONE = "none"
    OWN = "own"
    TRANSFER = "transfer"


@dataclass(frozen=True)
class ComponentSpec:
    """A registered component by name with its config options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingSpec:
    """The recipe of original, retrained and RMIA reference models; ``trades`` and ``lipschitz``
    hold the options of those variants (grid.variants picks which variants run)."""

    recipe: TrainConfig = field(default_factory=TrainConfig)
    trades: Mapping[str, Any] = field(default_factory=dict)
    lipschitz: Mapping[str, Any] = field(default_factory=dict)

    def variant_options(self, variant: str) -> dict[str, Any]:
        """The options of training variant ``variant`` ({} for standard)."""
        return {} if variant == TrainingVariant.STANDARD.value else dict(getattr(self, variant))


@dataclass(frozen=True)
class GridSpec:
    """The cells: training variants x original-model seeds x forget fractions x forget-set seeds x
    settings x unlearning runs."""

    variants: tuple[TrainingVariant, ...] = (TrainingVariant.STANDARD,)
    original_seeds: tuple[int, ...] = (0,)
    fractions: tuple[float, ...] = (0.1,)
    forget_seeds: tuple[int, ...] = (0, 1, 2)
    unlearn_seeds: tuple[int, ...] = (0,)
    settings: tuple[str, ...] = SETTINGS

    def __post_init__(self) -> None:
        _check_lists(self, "grid")
        for key in ("variants", "original_seeds", "fractions", "forget_seeds", "unlearn_seeds", "settings"):
            if not getattr(self, key):
                raise InvalidInputError(f"grid.{key} must not be empty")
        bad = [s for s in self.settings if s not in SETTINGS]
        if bad:
            raise InvalidInputError(f"grid.settings: unknown setting(s) {bad}; use {', '.join(SETTINGS)}")
        if any(not 0.0 < f < 1.0 for f in self.fractions):
            raise InvalidInputError(f"grid.fractions must lie in (0, 1), got {self.fractions}")


@dataclass(frozen=True)
class MethodSpec:
    """One unlearner of the suite: a registered name, a display label, fixed options, options
    that override them in one setting (``setting_options``: setting -> options, e.g. a lower lr
    without D_R), a tuning grid (option -> candidate values; empty = not tuned), the settings it
    runs in (empty = every grid setting it supports) and where its adversarial set comes from.
    ``holdout`` (continuous suites): every request runs with the validation hold-out as
    ``holdout`` (AMUN's retrain-free calibration, per request); the tables choose it per tuning
    mode instead, and ``forgetting_quality`` by ``forgetting.holdout_methods``.
    ``calibrate_against`` (with ``holdout``): "current" or "original", see
    :class:`~amun_plugin.unlearn.continuous.ContinuousSession`.
    A run that calibrates does not receive the options only the fixed schedule reads
    (``Unlearner.schedule_options``; AMUN: lr, epochs, step_size, gamma): they stay the cell's
    coordinates (the oracle rows of a table read them) but are not passed to the calibrated run.
    ``modes`` (tables): the tuning modes the method runs in (empty = every mode of the suite; e.g.
    ``auto`` judges on held-out data, so it runs only in ``retrain_free``).
    ``membership``: the membership signal of the retrain-free estimate a calibrating method uses,
    "confidence" (the default call's) or "rmia" (the suite's reference bank, which must then hold
    the validation hold-out: ``evaluation.reference.include_validation: true``)."""

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("holdout", "calibrate_against", "modes", "membership")

    name: str
    label: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Any] = field(default_factory=dict)
    settings: tuple[str, ...] = ()
    adversarial: AdversarialSource = AdversarialSource.NONE
    setting_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    holdout: bool = False
    calibrate_against: str = "current"
    modes: tuple[str, ...] = ()
    membership: str = "confidence"

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)
        _check_lists(self, f"method {self.label!r}")
        for key, values in self.grid.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise InvalidInputError(f"method {self.label!r}: grid.{key} must be a non-empty list of values")
        bad = [s for s in (*self.settings, *self.setting_options) if s not in SETTINGS]
        if bad:
            raise InvalidInputError(f"method {self.label!r}: unknown setting(s) {bad}; use {', '.join(SETTINGS)}")
        if self.calibrate_against not in CALIBRATION_BASELINES:
            raise InvalidInputError(f"method {self.label!r}: calibrate_against must be current or original, "
                                    f"got {self.calibrate_against!r}")
        if self.calibrate_against == "original" and not self.holdout:
            raise InvalidInputError(f"method {self.label!r}: calibrate_against: original needs holdout: true")
        if self.membership not in ("confidence", "rmia"):
            raise InvalidInputError(f"method {self.label!r}: membership must be confidence or rmia, "
                                    f"got {self.membership!r}")
        if set(self.modes) - set(TUNING_MODES):
            raise InvalidInputError(f"method {self.label!r}: modes must be among {', '.join(TUNING_MODES)}, "
                                    f"got {list(self.modes)}")

    def options_in(self, setting: str) -> dict[str, Any]:
        """The fixed options in ``setting``: ``options`` updated by ``setting_options[setting]``."""
        return {**self.options, **self.setting_options.get(setting, {})}


@dataclass(frozen=True)
class TableSpec:
    """A result table: its title, the metric used as the MIA term of Avg Gap (``evaluator.metric``,
    e.g. ``rmia.FT_AUC``) and the other metric columns shown."""

    title: str
    mia: str
    columns: tuple[str, ...] = ("accuracy.UA", "accuracy.RA", "accuracy.TA")


@dataclass(frozen=True)
class EvaluationSpec:
    """Evaluators (registered names with options) run on every model; the tables reported.
    ``reference`` configures the RMIA reference-model bank (trained once, cached, shared)."""

    evaluators: tuple[ComponentSpec, ...] = (ComponentSpec("accuracy"), ComponentSpec("confidence_mia"))
    tables: tuple[TableSpec, ...] = (TableSpec("confidence FT AUC", "confidence_mia.FT_AUC"),)
    reference: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_lists(self, "evaluation")
        if not self.evaluators or not self.tables:
            raise InvalidInputError("evaluation needs at least one evaluator and one table")


TUNING_MODES = ("oracle", "retrain_free")


@dataclass(frozen=True)
class TuningSpec:
    """Hyper-parameter selection on a separate forget subset of the same size (forget seed
    ``forget_seed``), with the first original seed. ``modes``: "oracle" selects by the Avg Gap
    of the first table (against retrained models, as the paper does); "retrain_free" selects every
    method by the estimated Avg Gap on the validation hold-out (no retrained model,
    ``unlearn/calibration.py``) and runs the AMUN family calibrated on that hold-out."""

    enabled: bool = True
    forget_seed: int = 1000
    unlearn_seed: int = 0
    modes: tuple[str, ...] = ("oracle",)

    def __post_init__(self) -> None:
        _check_lists(self, "tuning")
        bad = [m for m in self.modes if m not in TUNING_MODES]
        if bad or not self.modes:
            raise InvalidInputError(f"tuning.modes must be a non-empty list of {', '.join(TUNING_MODES)}; got {bad}")


@dataclass(frozen=True)
class ContinuousSpec:
    """``requests`` consecutive requests of ``fraction`` of the train set each; ``retrain``: which
    requests get a model retrained on the remaining data ("each", "last" or "none")."""

    requests: int = 5
    fraction: float = 0.02
    retrain: str = "each"

    def __post_init__(self) -> None:
        if self.requests < 1 or not 0.0 < self.fraction * self.requests < 1.0:
            raise InvalidInputError("continuous: requests >= 1 and 0 < requests * fraction < 1 are required")
        if self.retrain not in ("each", "last", "none"):
            raise InvalidInputError(f"continuous.retrain must be each, last or none, got {self.retrain!r}")


@dataclass(frozen=True)
class AblationSpec:
    """Paper §6.2.1: fine-tune on D_A or a substitute, in three unions, recording test accuracy
    per epoch. ``options``: the AMUN fine-tuning options (epochs, lr, ...)."""

    variants: tuple[str, ...] = ABLATION_SUBSTITUTES
    unions: tuple[str, ...] = ABLATION_UNIONS
    method: str = "amun"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_lists(self, "ablation")


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
