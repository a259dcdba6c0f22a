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

from amun_plugin.api import audit, audit_many, continuous_session, load_model, save_model, unlearn
from amun_plugin.attacks.base import AttackBackend, AttackOutput
from amun_plugin.attacks.search import AdversarialSet, SearchConfig, nearest_adversarial
from amun_plugin.config import NoConfig
from amun_plugin.data.base import DatasetBundle, LabeledData, as_labeled_data
from amun_plugin.data.source import DatasetSource
from amun_plugin.errors import (
    AmunError,
    BackendUnavailableError,
    CheckpointError,
    DatasetNotFoundError,
    InvalidInputError,
    MissingInputError,
    PluginError,
    UnlearningDivergedError,
    UnsupportedSettingError,
)
from amun_plugin.evaluate.base import AuditData, EvaluationResult, Evaluator
from amun_plugin.evaluate.reference import ReferenceBank
from amun_plugin.hookspecs import hookimpl
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.checkpoint import CheckpointMetadata
from amun_plugin.plugins import PluginHost, PluginLoadError, get_plugin_manager
from amun_plugin.registry import Components
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext, Unlearner, UnlearnResult

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
    "ForgetRequest",
    "UnlearnContext",
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
    "PluginError",
    "UnlearningDivergedError",
    "UnsupportedSettingError",
]

__version__ = "0.1.0"
