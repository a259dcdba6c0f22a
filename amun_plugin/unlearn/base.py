"""The unlearner interface: a request in, a new model and its statistics out."""

from __future__ import annotations

import copy
import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping

import torch
from torch import nn

from amun_plugin.attacks.adversarial_set import AdversarialSet
from amun_plugin.config import NoConfig, config_to_dict, make_config
from amun_plugin.data.base import LabeledData
from amun_plugin.data.overlap import check_disjoint
from amun_plugin.device import preserved_mode, resolve_device
from amun_plugin.errors import InvalidInputError, MissingInputError, UnlearningDivergedError
from amun_plugin.progress import announce, bars_allowed
from amun_plugin.registry import Components

__all__ = ["ForgetRequest", "UnlearnContext", "UnlearnResult", "Unlearner"]


@dataclass(frozen=True, eq=False)
class ForgetRequest:
    """What to forget and what the unlearner may use.

    forget: D_F, the samples to remove.  retain: D_R (None in the "without D_R" setting).
    validation: held-out non-member samples (used by DAU).
    holdout: held-out samples the model never trained on (a validation or test split); AMUN's
    calibration compares D_F with them (``unlearn/calibration.py``). All share input shape and classes.
    adversarial: a precomputed adversarial set of ``forget`` (AMUN reuses it across requests,
    or takes it from another model: the transferred variant); None = compute it.
    reference: the model whose held-out and retain accuracies AMUN's calibration takes as its
    targets and accuracy budget (a continuous session can pass its original model, so that the
    budget holds for the whole session); None = the model being unlearned. Never modified.
    """

    forget: LabeledData
    retain: LabeledData | None = None
    validation: LabeledData | None = None
    adversarial: AdversarialSet | None = None
    holdout: LabeledData | None = None
    reference: nn.Module | None = None

    def __post_init__(self) -> None:
        if self.adversarial is not None and len(self.adversarial.y_true) != len(self.forget):
            raise InvalidInputError(
                f"the adversarial set has {len(self.adversarial.y_true)} samples, the forget set {len(self.forget)}"
            )
        for part in (self.retain, self.validation, self.holdout):
            if part is None:
                continue
            if part.input_shape != self.forget.input_shape:
                raise InvalidInputError(
                    f"{part.name} has input shape {part.input_shape}, forget has {self.forget.input_shape}"
                )
            if part.num_classes != self.forget.num_classes:
                raise InvalidInputError(
                    f"{part.name} has {part.num_classes} classes, forget has {self.forget.num_classes}"
                )
        if self.retain is not None:
            check_disjoint(self.forget, self.retain,
                           "D_R must be the training data without D_F (e.g. UnlearningSplit.retain(train))")

    @property
    def num_classes(self) -> int:
        return self.forget.num_classes

    @property
    def setting(self) -> str:
        """"with_retain" or "without_retain" (the paper's two settings)."""
        return "with_retain" if self.retain is not None else "without_retain"


@dataclass
class UnlearnContext:
    """What a running unlearner gets besides the model and the request."""

    device: torch.device
    seed: int
    generator: torch.Generator
    progress: bool
    plugins: Components
    """The registries (the plugin host's); AMUN finds its attack backend in ``plugins.attacks``."""


@dataclass
class UnlearnResult:
    """The unlearned model (a new object) and what happened."""

    model: nn.Module
    method: str
    config: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as ``model, stats = result``."""
        return iter((self.model, self.stats))


class Unlearner(ABC):
    """Base class of every unlearning method.

    A subclass sets ``name`` and ``config_class`` (a frozen dataclass), declares its needs as
    class data, and writes ``_unlearn``. ``run`` owns the invariants: the request is checked
    against the declared needs before any work, the input model is deep-copied (never touched),
    the copy is moved to the device, randomness is seeded, time is measured, and the returned
    model has the input model's train/eval flags.

    Class data:
        requires_retain: refuses requests without D_R (e.g. FT, l1-sparse).
        uses_retain: False if the method ignores D_R even when given.
        requires_validation: needs ``request.validation`` (e.g. DAU).
        requires_features: needs penultimate features (``model.features`` or a named layer).
    """

    name: ClassVar[str]
    config_class: ClassVar[type] = NoConfig
    description: ClassVar[str] = ""
    requires_retain: ClassVar[bool] = False
    uses_retain: ClassVar[bool] = True
    requires_validation: ClassVar[bool] = False
    requires_features: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any] | Any | None = None) -> None:
        self.config = make_config(self.config_class, config)

    @classmethod
    def check_class(cls) -> None:
        """Validate the declared capabilities (called at registration)."""
        for flag in ("requires_retain", "uses_retain", "requires_validation", "requires_features"):
            if not isinstance(getattr(cls, flag), bool):
                raise TypeError(f"{cls.__name__}.{flag} must be a bool")
        if cls.requires_retain and not cls.uses_retain:
            raise ValueError("requires_retain=True contradicts uses_retain=False")

    def check_request(self, request: ForgetRequest) -> None:
        """Refuse a request this method cannot serve, saying why and what would work."""
        if self.requires_retain and request.retain is None:
            raise MissingInputError(
                f"{self.name!r} needs the retain set D_R, and this request has none; {{how}}, "
                "or use a method that works without D_R (e.g. 'amun', 'rl', 'ga', 'bs', 'salun')",
                needs="retain", python="pass retain=...")
        if self.requires_validation and request.validation is None:
            raise MissingInputError(f"{self.name!r} needs a held-out validation set of non-members; {{how}}",
                                    needs="validation", python="pass validation=...")

    def validate(self, plugins: Components) -> None:
        """Check the options that name other components against the registries ``plugins``
        (e.g. the plugin host) before any work.

        The default checks a config field ``attack`` (a registered attack backend's name) with
        its ``attack_options``: an unknown name, unknown or invalid options, or a backend whose
        library is missing raise here (InvalidInputError / BackendUnavailableError), before the
        model is copied. Subclasses naming other components extend this."""
        attack = getattr(self.config, "attack", None)
        if isinstance(attack, str):
            backend = plugins.attacks.get(attack)
            try:
                backend(dict(getattr(self.config, "attack_options", None) or {}))
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"{self.name!r}: invalid attack_options for {attack!r}: {exc}") from exc
            backend.ensure_available()

    def run(
        self,
        model: nn.Module,
        request: ForgetRequest,
        *,
        plugins: Components,
        device: str | torch.device = "cpu",
        seed: int = 0,
        progress: bool = False,
    ) -> UnlearnResult:
        """Unlearn ``request.forget`` from a copy of ``model``; the input model is not modified."""
        if not isinstance(model, nn.Module):
            raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.check_request(request)
        self.validate(plugins)
        target = resolve_device(device)
        working = copy.deepcopy(model).to(target)
        _check_model_output(working, request, target)
        _warn_if_already_forgotten(working, request, target)
        generator = torch.Generator().manual_seed(seed)
        # bars only on a terminal; elsewhere this stage is announced by a line when it starts and ends
        ctx = UnlearnContext(target, seed, generator, bool(bars_allowed(progress)), plugins)
        lines = bool(progress) and not ctx.progress
        if lines:
            announce(f"unlearn {self.name}: started ({len(request.forget)} forget samples, {request.setting})")
        start = time.perf_counter()
        with preserved_mode(working), torch.random.fork_rng(devices=_cuda_devices(target)):
            torch.manual_seed(seed)
            stats = dict(self._unlearn(working, request, ctx))
        stats["seconds_total"] = time.perf_counter() - start
        _check_finite(working, self.name, config_to_dict(self.config))
        if lines:
            announce(f"unlearn {self.name}: done in {stats['seconds_total']:.1f} s")
        stats.setdefault("setting", request.setting)
        stats.setdefault("forget_size", len(request.forget))
        return UnlearnResult(working, self.name, config_to_dict(self.config), stats)

    @abstractmethod
    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        """Modify ``model`` (a private copy on ``ctx.device``) in place; return run statistics."""


def _check_finite(model: nn.Module, method: str, options: Mapping[str, Any]) -> None:
    """Refuse a run that left NaN or infinite weights or buffers (it would return a model whose
    every prediction is meaningless)."""
    bad = [name for name, t in [*model.named_parameters(), *model.named_buffers()]
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        lr = f" at lr {options['lr']:g}" if isinstance(options.get("lr"), (int, float)) else ""
        raise UnlearningDivergedError(
            f"{method} diverged{lr}: {len(bad)} tensor(s) of the unlearned model hold NaN or inf "
            f"(first: {bad[0]}); lower the learning rate or the number of epochs")


def _check_model_output(model: nn.Module, request: ForgetRequest, device: torch.device) -> None:
    probe = request.forget.x[:2].to(device)
    with torch.no_grad(), preserved_mode(model, training=False):
        try:
            out = model(probe)
        except Exception as exc:  # any failure of a user's forward pass is an input problem here
            raise InvalidInputError(
                f"the model failed on forget inputs of shape {tuple(probe.shape)}: {exc}"
            ) from exc
    if not isinstance(out, torch.Tensor) or out.shape != (probe.shape[0], request.num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidInputError(
            f"the model must return logits of shape (N, {request.num_classes}); got {shape}"
        )


def _warn_if_already_forgotten(model: nn.Module, request: ForgetRequest, device: torch.device) -> None:
    """One warning line when the model already misclassifies every forget sample: there is nothing
    to unlearn, and methods that move D_F across the decision boundary (AMUN) have no boundary to
    cross (their statistics, e.g. AMUN's median_l2, come out empty)."""
    x, y = request.forget.x, request.forget.y
    with torch.no_grad(), preserved_mode(model, training=False):
        wrong = sum(int((model(x[i:i + 512].to(device)).argmax(dim=1).cpu() != y[i:i + 512]).sum())
                    for i in range(0, len(x), 512))
    if wrong == len(x):
        warnings.warn(f"the model already misclassifies all {len(x)} forget samples: nothing is left to unlearn "
                      "(check the labels, or that this is the model trained on them)", UserWarning, stacklevel=3)


def _cuda_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []
