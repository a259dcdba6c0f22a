"""Attack backend that delegates to ART's ProjectedGradientDescent with an L2 bound.

PGD in 'Towards Deep Learning Models Resistant to Adversarial Attacks' (Madry et al., 2018,
https://arxiv.org/abs/1706.06083), run by the Adversarial Robustness Toolbox as
``art.attacks.evasion.ProjectedGradientDescent(estimator, norm=2, eps, eps_step=eps * step_ratio,
max_iter=steps, num_random_init=0, targeted=False, batch_size, verbose=False)`` on a
``PyTorchClassifier`` built by :func:`amun_plugin.art_interop.wrap_pytorch_classifier`
(cross-entropy loss against the true labels, clip values (0, 1)). All ``steps`` are run (no early
stop); the nearest-example search refines the point by bisection.

Distance measure: L2, pixel units.

Options: :class:`ArtPGDConfig`.

Shape: x (N, ...) float in [0, 1], y (N,) int64, eps (N,) > 0 (one value per call: ``scalar_eps``,
the base class groups samples by radius). Output x_adv (N, ...) in [0, 1]; grad_evals = ``steps``
per sample. ART also runs two forward-only prediction passes per call to log its success rate, and
this backend one single-sample forward pass to learn the class count; those are not counted.

The model's train/eval flags, device and parameters' ``requires_grad`` flags are restored by the
base class (ART calls ``model.train(mode=False)`` and moves the model to its own device, which is the
model's device here); torch's global CPU RNG, from which ART's DataLoader draws a seed, is restored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from amun_plugin.art_interop import ART_PIP_NAME, from_numpy, import_art, one_hot, to_numpy, wrap_pytorch_classifier
from amun_plugin.attacks.base import AttackBackend, AttackOutput
from amun_plugin.attacks.losses import tempered
from amun_plugin.attacks.torchattacks_backends import check_max_logit_spread

__all__ = ["ArtPGDConfig", "ArtPGDL2"]


@dataclass(frozen=True)
class ArtPGDConfig:
    """Options of :class:`ArtPGDL2` (see the module docstring).

    Attributes:
        steps: ART's ``max_iter``, PGD iterations per call, all run. (Default: 50)
        step_ratio: ART's eps_step / eps, recomputed for every eps. (Default: 0.1)
        batch_size: ART's internal batch size (samples per forward/backward pass). (Default: 256)
        max_logit_spread: bound on the logits' spread (max - min) of the model ART sees; None = raw.
            ART attacks :class:`~amun_plugin.attacks.losses.TemperedLogits` (a per-sample temperature),
            so its cross-entropy gradient survives where the softmax reads 1.0 in float32. Success
            is judged on the real model. (Default: 10.0)
    """

    steps: int = 50
    step_ratio: float = 0.1
    batch_size: int = 256
    max_logit_spread: float | None = 10.0

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.step_ratio) and self.step_ratio > 0):
            raise ValueError(f"step_ratio must be a finite number > 0, got {self.step_ratio!r}")
        check_max_logit_spread(self.max_logit_spread)


class ArtPGDL2(AttackBackend):
    """ART ProjectedGradientDescent, norm 2, no random init, untargeted against the true label."""

    name = "art_pgd_l2"
    config_class: ClassVar[type] = ArtPGDConfig
    description = "ART ProjectedGradientDescent (L2, no random init, all iterations run)"
    norm = "l2"
    stops_early = False
    scalar_eps = True
    supports_init = False
    requires = {"art": ART_PIP_NAME}

    def _perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: Tensor, x_init: Tensor | None
    ) -> AttackOutput:
        evasion = import_art("art.attacks.evasion")
        config: ArtPGDConfig = self.config
        with torch.no_grad():
            num_classes = int(model(x[:1]).shape[1])
        view = tempered(model, config.max_logit_spread)
        classifier = wrap_pytorch_classifier(view, tuple(x.shape[1:]), num_classes, x.device)
        radius = float(eps[0])
        attack = evasion.ProjectedGradientDescent(
            classifier,
            norm=2,
            eps=radius,
            eps_step=radius * config.step_ratio,
            max_iter=int(config.steps),
            num_random_init=0,
            targeted=False,
            batch_size=int(config.batch_size),
            verbose=False,
        )
        with torch.random.fork_rng(devices=[]), torch.enable_grad():  # ART's DataLoader draws a seed
            adv = attack.generate(x=to_numpy(x), y=one_hot(y, num_classes))
        model.eval()
        return AttackOutput(from_numpy(adv, like=x), torch.full((x.shape[0],), int(config.steps), dtype=torch.long))
