"""The parts of a benchmark suite's configuration (:mod:`amun_plugin.bench.suite_config`): frozen
dataclasses for the training recipe, the grid of cells, the methods, the evaluation and its tables,
the tuning, continuous requests and the ablation, each checked when built."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Mapping

from amun_plugin.bench.records import ABLATION_SUBSTITUTES, ABLATION_UNIONS, Setting
from amun_plugin.errors import InvalidInputError
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
    "TableSpec",
    "TrainingSpec",
    "TrainingVariant",
    "TuningSpec",
]

SETTINGS = tuple(s.value for s in Setting)


def _check_lists(spec: Any, owner: str) -> None:
    """Refuse a scalar where the suite file needs a list (``forget_seeds: "zero"``)."""
    for item in dataclasses.fields(spec):
        value = getattr(spec, item.name)
        if str(item.type).startswith("tuple[") and not isinstance(value, tuple):
            raise InvalidInputError(f"{owner}.{item.name} must be a list, got {value!r}")


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
