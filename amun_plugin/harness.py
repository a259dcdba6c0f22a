"""What a benchmark harness needs beyond the user API and the component namespaces (docs/api.md):
the artefact cache, atomic writes, run records and statistics, the checks on an original model,
the bench workspace and its records, and the measurements the benchmark scripts reuse.

The scripts in ``benchmarks/`` import only from the public surface (``amun_plugin``, its public
subpackages and this module); ``tests/test_public_api.py`` holds them to it. Everything here is
re-exported from where it lives, so a harness keeps working when the modules behind it move.
"""

from __future__ import annotations

from amun_plugin.artifacts import ArtifactCache, content_hash, default_cache_dir, weights_fingerprint
from amun_plugin.attacks.advlib_backends import advlib_available
from amun_plugin.bench.cells import adversarial_for, retrain_free_estimate, retrained_metrics
from amun_plugin.bench.original_check import (
    DEFAULT_MIN_TRAIN_ACCURACY,
    NotMemorisingError,
    check_memorises,
    saturated_fraction,
)
from amun_plugin.bench.records import Cell, CellKind, load_records
from amun_plugin.bench.results import environment, record_invocation, run_script
from amun_plugin.bench.stats import format_interval, ratio_to_best, t_interval
from amun_plugin.bench.suite_config import ComponentSpec, gaps_by_table, method_spec
from amun_plugin.bench.tuning import grid_points
from amun_plugin.bench.workspace import Workspace
from amun_plugin.config import config_to_dict
from amun_plugin.data.overlap import shared_samples
from amun_plugin.data.splits import split_off
from amun_plugin.evaluate.labels import label_of, labelled_row
from amun_plugin.evaluate.markdown import markdown_table
from amun_plugin.evaluate.reference import build_reference_bank, concat_population, reference_train_seconds
from amun_plugin.evaluate.roc import roc_auc
from amun_plugin.io import atomic_write_json, atomic_write_text
from amun_plugin.models.inference import logit_scaled_confidence
from amun_plugin.progress import bars_allowed
from amun_plugin.unlearn.calibration import estimated_gap, measure_proxy, retain_probe

__all__ = [
    "DEFAULT_MIN_TRAIN_ACCURACY",
    "ArtifactCache",
    "Cell",
    "CellKind",
    "ComponentSpec",
    "NotMemorisingError",
    "Workspace",
    "adversarial_for",
    "advlib_available",
    "atomic_write_json",
    "atomic_write_text",
    "bars_allowed",
    "build_reference_bank",
    "check_memorises",
    "concat_population",
    "config_to_dict",
    "content_hash",
    "default_cache_dir",
    "environment",
    "estimated_gap",
    "format_interval",
    "gaps_by_table",
    "grid_points",
    "label_of",
    "labelled_row",
    "load_records",
    "logit_scaled_confidence",
    "markdown_table",
    "measure_proxy",
    "method_spec",
    "ratio_to_best",
    "record_invocation",
    "reference_train_seconds",
    "retain_probe",
    "retrain_free_estimate",
    "retrained_metrics",
    "roc_auc",
    "run_script",
    "saturated_fraction",
    "shared_samples",
    "split_off",
    "t_interval",
    "weights_fingerprint",
]
