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
    "MissingInputError",
    "NoHoldoutWarning",
    "PluginError",
    "UnlearningDivergedError",
    "UnsupportedSettingError",
]


class AmunError(Exception):
    """Base class of every user-facing error of amun_plugin."""


class InvalidInputError(AmunError, ValueError):
    """Bad user input: wrong shapes, labels out of range, pixels outside [0, 1], bad splits, bad config."""


class UnsupportedSettingError(AmunError):
    """A component was asked for a setting it cannot serve (e.g. fine-tuning without D_R)."""


class MissingInputError(UnsupportedSettingError):
    """A component needs an input the caller did not give. ``needs`` names the input ("retain",
    "validation", "reference_bank"); ``str()`` says how to give it in Python (``python``), and
    :meth:`phrased` says it for another interface (the CLI names its flags)."""

    def __init__(self, template: str, needs: str, python: str) -> None:
        self.template, self.needs, self.python = template, needs, python
        super().__init__(template.format(how=python))

    def phrased(self, how: str) -> str:
        """The message with ``how`` (e.g. "give --validation-size N") as the way to give the input."""
        return self.template.format(how=how)


class CheckpointError(AmunError):
    """A checkpoint is missing, corrupt, of an unknown format or does not match its metadata."""


class BackendUnavailableError(AmunError, ImportError):
    """An optional third-party backend (ART, torchattacks, Ray, ...) is not installed or broken."""


class PluginError(AmunError):
    """A plugin failed to load or registered something invalid (wrong base class, duplicate name)."""


class DatasetNotFoundError(AmunError, FileNotFoundError):
    """A dataset's files are not where they were expected; the message says how to get them."""


class UnlearningDivergedError(AmunError, ArithmeticError):
    """An unlearning run left non-finite weights (e.g. gradient ascent at too high a learning
    rate); the input model is untouched and nothing is returned."""


class NoHoldoutWarning(UserWarning):
    """A method that calibrates on held-out data runs its fixed schedule because no holdout was
    given; on a strongly memorising model it may not forget. Filter by this category."""
