"""Every error amun_plugin raises on purpose is an :class:`AmunError`.

Subclasses also derive from the matching built-in exception, so callers that already catch
``ValueError`` or ``ImportError`` keep working.
"""

from __future__ import annotations

__all__ = [
    "AmunError",
    "BackendUnavailableError",
    "CheckpointError",
    "DatasetNotFoundError",
    "InvalidInputError",
    "PluginError",
    "UnsupportedSettingError",
]


class AmunError(Exception):
    """Base class of every user-facing error of amun_plugin."""


class InvalidInputError(AmunError, ValueError):
    """Bad user input: wrong shapes, labels out of range, pixels outside [0, 1], bad splits, bad config."""


class UnsupportedSettingError(AmunError):
    """A component was asked for a setting it cannot serve (e.g. fine-tuning without D_R)."""


class CheckpointError(AmunError):
    """A checkpoint is missing, corrupt, of an unknown format or does not match its metadata."""


class BackendUnavailableError(AmunError, ImportError):
    """An optional third-party backend (ART, torchattacks, Ray, ...) is not installed or broken."""


class PluginError(AmunError):
    """A plugin failed to load or registered something invalid (wrong base class, duplicate name)."""


class DatasetNotFoundError(AmunError, FileNotFoundError):
    """A dataset's files are not where they were expected; the message says how to get them."""
