"""amun_plugin: machine unlearning with AMUN (nearest adversarial examples), its baselines and
their evaluation, as plugins for the PyTorch / ART / torchattacks ecosystem.

Quick start::

    import amun_plugin
    result = amun_plugin.unlearn(model, forget=(x_f, y_f), retain=(x_r, y_r), method="amun")
    new_model, stats = result
"""

from amun_plugin.api import audit, audit_many, continuous_session, load_model, save_model, unlearn
from amun_plugin.data.base import DatasetBundle, LabeledData, as_labeled_data
from amun_plugin.errors import (
    AmunError,
    BackendUnavailableError,
    CheckpointError,
    DatasetNotFoundError,
    InvalidInputError,
    PluginError,
    UnsupportedSettingError,
)
from amun_plugin.hookspecs import hookimpl
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.base import ForgetRequest, Unlearner, UnlearnResult

__all__ = [
    "AmunError",
    "BackendUnavailableError",
    "CheckpointError",
    "DatasetBundle",
    "DatasetNotFoundError",
    "ForgetRequest",
    "InvalidInputError",
    "LabeledData",
    "PluginError",
    "UnlearnResult",
    "Unlearner",
    "UnsupportedSettingError",
    "as_labeled_data",
    "audit",
    "audit_many",
    "continuous_session",
    "get_plugin_manager",
    "hookimpl",
    "load_model",
    "save_model",
    "unlearn",
]

__version__ = "0.1.0"
