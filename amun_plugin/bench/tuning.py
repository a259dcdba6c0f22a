"""Hyper-parameter selection. Every method's small grid (learning rate, schedule, SalUn ratio, ...)
is tried on a separate forget subset of the same size (forget seed ``tuning.forget_seed``, the
first original model), and one grid point is used for every run of that method in that setting:

- ``oracle`` (the AMUN paper, App. C): the point of lowest Avg Gap to the retrained model (the
  first table's MIA term);
- ``retrain_free``: the point of lowest *estimated* Avg Gap on the validation hold-out
  (``unlearn/calibration.py``: D_F against held-out data, no retrained model), the same rule for
  every method; the AMUN family is not grid-tuned there but calibrated by the same rule.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any, Callable, Mapping, Sequence

from amun_plugin.bench.record_types import UnlearnRecord, parse_record
from amun_plugin.bench.records import Cell, CellKind, Setting
from amun_plugin.bench.suite_config import MethodSpec, SuiteConfig
from amun_plugin.errors import InvalidInputError

__all__ = ["Choice", "choose", "grid_points", "resolved_options", "selection_score", "supported_settings",
           "tuning_cells"]

Choice = tuple[str, float, str, str]
"""(training variant, fraction, setting, method label)."""


def grid_points(method: MethodSpec) -> list[dict[str, Any]]:
    """Every combination of the method's grid values ([{}] when it has no grid)."""
    keys = sorted(method.grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(method.grid[k] for k in keys))]


def supported_settings(config: SuiteConfig, method: MethodSpec, requires_retain: bool) -> list[str]:
    """The grid settings a method runs in: its own list, or every grid setting it supports."""
    if method.settings:
        return [s for s in config.grid.settings if s in method.settings]
    return [s for s in config.grid.settings if not (requires_retain and s == Setting.WITHOUT_RETAIN)]


def tuning_cells(config: SuiteConfig, settings_of: Mapping[str, Sequence[str]],
                 resolve: Callable[[str, Mapping[str, Any]], str]) -> list[Cell]:
    """One cell per grid point of every tuned method, setting, fraction and training variant;
    ``resolve(name, options)`` hashes the cache key of the method's full config (see :class:`Cell`)."""
    if not config.tuning.enabled:
        return []
    cells = []
    for variant in config.grid.variants:
        for fraction in config.grid.fractions:
            for method in config.methods:
                if not method.grid:
                    continue
                for setting in settings_of[method.label]:
                    for point in grid_points(method):
                        options = {**method.options_in(setting), **point}
                        cells.append(Cell(CellKind.TUNE, method.label, variant.value, config.grid.original_seeds[0],
                                          fraction, config.tuning.forget_seed, Setting(setting),
                                          config.tuning.unlearn_seed, options, resolved=resolve(method.name, options)))
    return cells


def selection_score(config: SuiteConfig, record: Mapping[str, Any] | UnlearnRecord, mode: str = "oracle") -> float:
    """What a tuning mode minimises for one tuning record: the Avg Gap to the retrained model
    (``oracle``) or the estimated Avg Gap on the hold-out (``retrain_free``); infinite for a run
    that diverged (it is chosen only when every grid point diverged)."""
    run = _tuning_record(record)
    if run.diverged:
        return math.inf
    if mode == "oracle":
        return float(run.gaps[config.evaluation.tables[0].title])
    if run.proxy is None:
        raise InvalidInputError(
            f"tuning record of {run.method} has no estimated gap (computed from the suite's validation "
            "hold-out: set validation_size > 0, and rerun tuning cells made before retrain-free tuning existed)")
    return float(run.proxy.estimated_gap)


def _tuning_record(record: Mapping[str, Any] | UnlearnRecord) -> UnlearnRecord:
    run = parse_record(record)
    if not isinstance(run, UnlearnRecord):
        raise InvalidInputError(f"a tuning record is an unlearning run, not a {run.kind.value!r} record")
    return run


def choose(config: SuiteConfig, records: Sequence[Mapping[str, Any] | UnlearnRecord],
           mode: str = "oracle") -> dict[Choice, dict[str, Any]]:
    """The grid point of lowest :func:`selection_score` per (variant, fraction, setting, method);
    ties are broken by the options' canonical JSON, so the choice never depends on the order
    records finished."""
    best: dict[Choice, dict[str, Any]] = {}
    for run in map(_tuning_record, records):
        key = (run.variant, run.fraction, run.setting.value, run.method)
        rank = (selection_score(config, run, mode), json.dumps(run.cell.options, sort_keys=True))
        if key not in best or rank < best[key]["rank"]:
            best[key] = {"options": dict(run.cell.options), "score": rank[0], "rank": rank}
    for value in best.values():
        value.pop("rank")
    return best


def resolved_options(config: SuiteConfig, method: MethodSpec, choices: Mapping[Choice, Mapping[str, Any]],
                     variant: str, fraction: float, setting: str) -> dict[str, Any]:
    """The options a method runs with: its fixed options updated by the tuned choice, if any."""
    chosen = choices.get((variant, fraction, setting, method.label))
    return dict(chosen["options"]) if chosen is not None else method.options_in(setting)
