"""amun_plugin: machine unlearning with AMUN (nearest adversarial examples), its baselines and
their evaluation, as plugins for the PyTorch / ART / torchattacks ecosystem.

Quick start::

    import amun_plugin
    result = amun_plugin.unlearn(model, forget=(x_f, y_f), retain=(x_r, y_r), method="amun")
    new_model, stats = result

The public surface is this package's ``__all__`` (the API functions, the plugin host and the
``hookimpl`` marker, the base class of every component kind with the types it exchanges, the
errors) and the public namespaces listed in ``PUBLIC_NAMESPACES``; docs/api.md documents each
name. Every other module is internal and may change without notice.
"""

import importlib
import sys
import types
from typing import Any

from amun_plugin.errors import (
    AmunError,
    BackendUnavailableError,
    CheckpointError,
    DatasetNotFoundError,
    InvalidInputError,
    MissingInputError,
    NoHoldoutWarning,
    PluginError,
    UnlearningDivergedError,
    UnsupportedSettingError,
)

_LAZY = {
    "amun_plugin.api": ("audit", "audit_many", "continuous_session", "load_model", "save_model", "unlearn"),
    "amun_plugin.attacks.base": ("AttackBackend", "AttackOutput"),
    "amun_plugin.attacks.search": ("AdversarialSet", "SearchConfig", "nearest_adversarial"),
    "amun_plugin.config": ("NoConfig",),
    "amun_plugin.data.base": ("DatasetBundle", "LabeledData", "as_labeled_data"),
    "amun_plugin.data.source": ("DatasetSource",),
    "amun_plugin.evaluate.base": ("AuditData", "EvaluationResult", "Evaluator"),
    "amun_plugin.evaluate.reference": ("ReferenceBank",),
    "amun_plugin.hookspecs": ("hookimpl",),
    "amun_plugin.models.base": ("ModelArchitecture",),
    "amun_plugin.models.checkpoint": ("CheckpointMetadata",),
    "amun_plugin.plugins": ("PluginHost", "PluginLoadError", "get_plugin_manager"),
    "amun_plugin.registry": ("Components",),
    "amun_plugin.unlearn.base": ("Capabilities", "ForgetRequest", "UnlearnContext", "Unlearner", "UnlearnResult"),
    "amun_plugin.unlearn.estimate": ("MembershipProbe",),
    "amun_plugin.unlearn.job": ("UnlearnJob",),
}
"""Where each public name lives; imported on first use (PEP 562), so ``import amun_plugin`` (and
``amun --help``) loads no torch, ART or scikit-learn."""
_HOME = {name: module for module, names in _LAZY.items() for name in names}

PUBLIC_NAMESPACES = (
    "amun_plugin",
    "amun_plugin.unlearn",
    "amun_plugin.evaluate",
    "amun_plugin.attacks",
    "amun_plugin.data",
    "amun_plugin.models",
    "amun_plugin.training",
    "amun_plugin.art",
    "amun_plugin.bench",
    "amun_plugin.harness",
    "amun_plugin.testing",
)
"""The modules whose ``__all__`` is public (docs/api.md); import nothing else from amun_plugin."""

__all__ = [
    # the Python API
    "audit",
    "audit_many",
    "continuous_session",
    "load_model",
    "save_model",
    "unlearn",
    # the plugin host
    "Components",
    "PluginHost",
    "PluginLoadError",
    "get_plugin_manager",
    "hookimpl",
    # unlearners
    "Capabilities",
    "ForgetRequest",
    "MembershipProbe",
    "UnlearnContext",
    "UnlearnJob",
    "UnlearnResult",
    "Unlearner",
    # evaluators
    "AuditData",
    "EvaluationResult",
    "Evaluator",
    "ReferenceBank",
    # attack backends and AMUN's search
    "AdversarialSet",
    "AttackBackend",
    "AttackOutput",
    "SearchConfig",
    "nearest_adversarial",
    # datasets and architectures
    "CheckpointMetadata",
    "DatasetBundle",
    "DatasetSource",
    "LabeledData",
    "ModelArchitecture",
    "NoConfig",
    "as_labeled_data",
    # errors
    "AmunError",
    "BackendUnavailableError",
    "CheckpointError",
    "DatasetNotFoundError",
    "InvalidInputError",
    "MissingInputError",
    "NoHoldoutWarning",
    "PluginError",
    "UnlearningDivergedError",
    "UnsupportedSettingError",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use and kept (PEP 562)."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'amun_plugin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``amun_plugin.unlearn`` stays the function when the ``amun_plugin.unlearn`` subpackage is
    imported (an import statement still finds the subpackage in ``sys.modules``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _HOME and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
