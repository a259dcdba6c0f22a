"""The unlearner interface: a request in, a new model and its statistics out."""

from __future__ import annotations

import copy
import dataclasses
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
from amun_plugin.errors import InvalidInputError, MissingInputError, PluginError, UnlearningDivergedError
from amun_plugin.progress import announce, bars_allowed
from amun_plugin.registry import Components
from amun_plugin.unlearn.estimate import MembershipProbe

__all__ = ["Capabilities", "ForgetRequest", "UnlearnContext", "UnlearnResult", "Unlearner"]


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
    membership: the membership signal of the estimated gap on ``holdout``
    (:class:`~amun_plugin.unlearn.estimate.MembershipProbe`, e.g. RMIA from a reference bank);
    None = the logit-scaled confidence.
    """

    forget: LabeledData
    retain: LabeledData | None = None
    validation: LabeledData | None = None
    adversarial: AdversarialSet | None = None
    holdout: LabeledData | None = None
    reference: nn.Module | None = None
    membership: MembershipProbe | None = None

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


@dataclass(frozen=True)
class Capabilities:
    """What an unlearner declares it supports; callers read this declaration (never the class).

    Attributes:
        requires_retain: refuses requests without D_R (e.g. FT, l1-sparse).
        uses_retain: False if the method ignores D_R even when given.
        requires_validation: needs ``request.validation``, held-out non-members (e.g. DAU).
        requires_features: needs penultimate features (``model.features`` or a named layer).
        calibrates: given ``holdout`` (samples never trained on), the method calibrates itself on
            it without a retrained model; a method that does not calibrate refuses a holdout
            (it would be ignored).
        requires_holdout: refuses requests without a holdout (e.g. ``auto``, which judges on it).
        reuses_adversarial: takes a precomputed adversarial set of D_F (``request.adversarial``)
            and builds one with :meth:`Unlearner.adversarial_set`; a continuous session computes
            it once on the original model and hands it to every request.
        continuous: may serve the requests of a continuous-unlearning session (one run per request
            on the current model).
        fixed_schedule: the options that only the fixed (uncalibrated) schedule reads; with a
            holdout the calibrated schedule runs and passing any of them is an error naming it.
    """

    requires_retain: bool = False
    uses_retain: bool = True
    requires_validation: bool = False
    requires_features: bool = False
    calibrates: bool = False
    requires_holdout: bool = False
    reuses_adversarial: bool = False
    continuous: bool = True
    fixed_schedule: tuple[str, ...] = ()

    def check(self, owner: str) -> None:
        """Refuse a contradictory or mistyped declaration (TypeError / ValueError naming ``owner``)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "fixed_schedule":
                if not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
                    raise TypeError(f"{owner}.capabilities.fixed_schedule must be a tuple of option names")
            elif not isinstance(value, bool):
                raise TypeError(f"{owner}.{f.name} must be a bool, got {value!r}")
        if self.requires_retain and not self.uses_retain:
            raise ValueError(f"{owner}: requires_retain=True contradicts uses_retain=False")
        if self.requires_holdout and not self.calibrates:
            raise ValueError(f"{owner}: requires_holdout=True needs calibrates=True (the holdout is read)")
        if self.fixed_schedule and not self.calibrates:
            raise ValueError(f"{owner}: fixed_schedule names options a calibrated schedule ignores; "
                             "it needs calibrates=True")


_LEGACY_FLAGS = ("requires_retain", "uses_retain", "requires_validation", "requires_features", "calibrates",
                 "reuses_adversarial")
"""Class attributes an unlearner may still declare one by one (before :class:`Capabilities`); a
subclass's own values are folded into its ``capabilities``."""


class Unlearner(ABC):
    """Base class of every unlearning method.

    A subclass sets ``name`` and ``config_class`` (a frozen dataclass), declares what it supports
    in ``capabilities`` (:class:`Capabilities`), and writes ``_unlearn``. ``run`` owns the
    invariants: the request is checked against the declaration before any work, the input model
    is deep-copied (never touched), the copy is moved to the device, randomness is seeded, time is
    measured, and the returned model has the input model's train/eval flags.

    A subclass inherits its base's capabilities; class attributes named like a capability
    (``requires_retain = True``, the older style) are folded into them.
    """

    name: ClassVar[str]
    config_class: ClassVar[type] = NoConfig
    description: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    revision: ClassVar[int] = 0
    """The method's behaviour at unchanged options: a benchmark cell hashes it when it is not 0, so a
    change of behaviour moves that method's cells (recomputed on resume) and no other."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        legacy = {flag: cls.__dict__[flag] for flag in _LEGACY_FLAGS if flag in cls.__dict__}
        if legacy:  # checked (types, contradictions) by check_class at registration
            cls.capabilities = dataclasses.replace(cls.capabilities, **legacy)

    def __init__(self, config: Mapping[str, Any] | Any | None = None) -> None:
        self.config = make_config(self.config_class, config)
        self.given_options = _given_options(self.config_class, config)
        """The option names the caller set (a mapping's keys; an instance's non-default fields)."""

    @classmethod
    def check_class(cls) -> None:
        """Validate the declared capabilities (called at registration)."""
        if not isinstance(cls.capabilities, Capabilities):
            raise TypeError(f"{cls.__name__}.capabilities must be a Capabilities, got {cls.capabilities!r}")
        cls.capabilities.check(cls.__name__)
        if cls.capabilities.reuses_adversarial and cls.adversarial_set is Unlearner.adversarial_set:
            raise TypeError(f"{cls.__name__} declares reuses_adversarial but does not implement adversarial_set")

    def adversarial_set(self, model: nn.Module, forget: LabeledData, ctx: UnlearnContext) -> AdversarialSet:
        """The adversarial set of ``forget`` on ``model`` that this method would compute itself (for a
        method declaring ``reuses_adversarial``: a continuous session builds it once, on the original)."""
        raise NotImplementedError(f"{self.name!r} does not build adversarial sets")

    def check_request(self, request: ForgetRequest) -> None:
        """Refuse a request this method cannot serve, saying why and what would work."""
        caps = self.capabilities
        if caps.requires_retain and request.retain is None:
            raise MissingInputError(
                f"{self.name!r} needs the retain set D_R, and this request has none; {{how}}, "
                "or use a method that works without D_R (e.g. 'amun', 'rl', 'ga', 'bs', 'salun')",
                needs="retain", python="pass retain=...")
        if caps.requires_validation and request.validation is None:
            raise MissingInputError(f"{self.name!r} needs a held-out validation set of non-members; {{how}}",
                                    needs="validation", python="pass validation=...")
        if caps.requires_holdout and request.holdout is None:
            raise MissingInputError(f"{self.name!r} needs holdout=<samples the model never trained on>: it judges "
                                    "its results on them; {how}", needs="holdout", python="pass holdout=(x, y)")
        self.check_schedule(holdout=request.holdout is not None)

    def calibrates_with(self, holdout: bool) -> bool:
        """Whether a run with (``holdout`` True) or without held-out data runs the calibrated
        schedule; a method that can switch its calibration off (AMUN's ``calibration=None``)
        overrides this."""
        return self.capabilities.calibrates and holdout

    def holdout_when_judged(self, holdout: LabeledData, tuning: LabeledData, selection_share: float) -> LabeledData:
        """The held-out data this method calibrates on when another procedure (``auto``) judges its
        result on the rest of ``holdout`` after ``tuning`` (``split_holdout(holdout,
        selection_share, seed)``, same seed as the run): ``tuning``, so that nothing it calibrated on
        judges it. A method whose calibration sets that same rest aside by itself (AMUN choosing
        between unions) overrides this to take all of ``holdout``."""
        return tuning

    def schedule_options(self, options: Mapping[str, Any], calibrated: bool) -> dict[str, Any]:
        """``options`` without those the chosen schedule does not read (a suite shares one set of
        options between its calibrated and its fixed-option runs)."""
        unused = set(self.capabilities.fixed_schedule) if calibrated else set()
        return {k: v for k, v in options.items() if k not in unused}

    def check_schedule(self, holdout: bool) -> None:
        """No option or input the schedule chosen for a run with (``holdout``) or without held-out
        data would ignore: a holdout needs a calibrated run, and a calibrated run refuses the fixed
        schedule's options. Callers planning runs (sessions, suites) call it before any work."""
        calibrated = self.calibrates_with(holdout)
        if holdout and not calibrated:
            why = ("its calibration is switched off (calibration=None), so it runs its fixed schedule"
                   if self.capabilities.calibrates else "it does not calibrate on held-out data")
            raise InvalidInputError(f"{self.name!r} would ignore holdout: {why}; drop holdout")
        given = sorted(set(self.capabilities.fixed_schedule) & self.given_options) if calibrated else []
        if given:
            raise InvalidInputError(
                f"{self.name!r}: {', '.join(given)} belong(s) to the fixed schedule, but with holdout the calibrated "
                "schedule runs and chooses the learning rate and length itself (calibration={...}: lr_min, lr_max, "
                "max_epochs, ...); drop " + ", ".join(given) + ", or run the fixed schedule without a holdout "
                "(Python: no holdout=; amun unlearn: --holdout-size 0)")

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
            returned = self._unlearn(working, request, ctx)
        if not isinstance(returned, Mapping):
            raise PluginError(f"unlearner {self.name!r} ({type(self).__module__}.{type(self).__qualname__}) returned "
                              f"a {type(returned).__name__} from _unlearn; it must return a mapping of run statistics")
        stats = dict(returned)
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


def _given_options(config_class: type, config: Mapping[str, Any] | Any | None) -> frozenset[str]:
    """The option names a caller set: a mapping's keys, or an instance's fields that differ from
    their defaults (an instance does not say which it was given)."""
    if config is None:
        return frozenset()
    if isinstance(config, Mapping):
        return frozenset(config)
    defaults: Any
    try:
        defaults = make_config(config_class, None)
    except (InvalidInputError, TypeError):  # a config with required fields: every field counts as given
        defaults = None
    return frozenset(f.name for f in dataclasses.fields(config)
                     if defaults is None or getattr(config, f.name) != getattr(defaults, f.name))
