"""DAU: Discriminative Adversarial Unlearning (Sharma, Zhou, Ji, Chen; ``papers/`` and REFERENCE.md).

A min-max game between the defender D (the classifier) and an attacker A, a membership
classifier on per-class (logit, one-hot label, input sensitivity) features
(:mod:`amun_plugin.unlearn.dau_attacker`). For every retain batch (x_r, y_r), with a fresh
random forget batch F and validation batch V of equal size b (validation = held-out
non-members):

1. attacker step (Adam, lr 1e-3): ``L_A = CE(A(phi(F; V)), [1]*b + [0]*b)``
   (forget = member 1, validation = non-member 0);
2. defender step (SGD lr 0.01, momentum 0.9, wd 5e-4):

       L_D = CE(D(x_r), y_r) + 0.9 * CE(A(phi(F; V)), [0]*b + [1]*b)      (labels flipped)
             + 0.001 * L_BT(g(F), g(V))

   where phi are the attack features and g the penultimate features of D, with gradients
   flowing through D's outputs (logits, sensitivities and features) into D.

The attack features and the penultimate features of F and V are computed with D in eval mode
(what a deployed model shows an attacker); the retain batch runs in train mode. One forward of
[F; V] serves both steps: the attacker trains on it detached, then judges it again, updated,
for the defender. The attacker stays in train mode (its BatchNorm and dropout as in its own
step). ``attacker_warmup_steps`` optionally trains the attacker on the frozen original model
first (0 by default: the game starts from a fresh attacker).

How well the attacker does is measured held out: ``attacker_holdout`` of the forget and of the
validation samples are drawn once (seeded) and never train the attacker (their rows in a pair
batch still enter the defender's terms, so the defender unlearns all of D_F); after the warm-up
and after every epoch the attacker (eval mode) judges an equal number k of held-out forget and
validation samples, features taken with D in eval mode: ``attacker_heldout_accuracy_*`` (%,
chance 50), on 2k samples (``attacker_heldout_size`` = k; absent when k == 0).

Defaults (REFERENCE.md): 3 epochs over D_R, batch 128, weights 0.9 / 0.001, lambda_BT 5e-3,
attacker width 64 / 3 layers / 4 heads / FFN 128 / dropout 0.2, 10 sensitivity draws, h = 1e-3.
Needs D_R, a validation set and readable penultimate features (``model.features(x)`` or a
submodule named by ``feature_layer``, read through a forward hook).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.device import preserved_mode
from amun_plugin.errors import InvalidInputError, UnsupportedSettingError
from amun_plugin.models.features import penultimate_features
from amun_plugin.training import train_model
from amun_plugin.unlearn.base import Capabilities, ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.dau_attacker import (
    MembershipAttacker,
    attack_features,
    barlow_twins_loss,
    logits_and_sensitivity,
)
from amun_plugin.unlearn.finetune import FinetuneConfig, next_seed, train_summary

__all__ = ["Dau", "DauConfig", "check_features"]


@dataclass(frozen=True)
class DauConfig(FinetuneConfig):
    """DAU's knobs: the defender's SGD (see :class:`FinetuneConfig`; 3 epochs over D_R, lr 0.01)
    and the game.

    Attributes:
        pair_batch_size: b, forget and validation samples per step (each; capped by the smaller
            set). (Default: 128)
        attack_weight: weight of the flipped-label attacker loss. (Default: 0.9)
        bt_weight: weight of L_BT. (Default: 0.001)
        bt_off_diagonal: lambda, weight of the off-diagonal terms inside L_BT. (Default: 5e-3)
        bt_eps: added to the variance when standardising features. (Default: 1e-5)
        attacker_lr: Adam learning rate. (Default: 1e-3)
        attacker_width, attacker_layers, attacker_heads, attacker_ffn, attacker_dropout: the
            attacker's size. (Default: 64, 3, 4, 128, 0.2)
        sensitivity_draws, sensitivity_step: K and h of s(x). (Default: 10, 1e-3)
        sensitivity_grad: let the defender's gradient flow through s(x) as well as through the
            logits; False saves K extra backward graphs (memory, large models). (Default: True)
        feature_layer: submodule whose output is the penultimate feature (None: ``model.features``).
        attacker_warmup_steps: attacker-only steps on the original model first. (Default: 0)
        attacker_holdout: fraction of the forget and of the validation samples the attacker never
            trains on, to measure its accuracy held out. (Default: 0.2)
    """

    epochs: int = 3
    pair_batch_size: int = 128
    attack_weight: float = 0.9
    bt_weight: float = 0.001
    bt_off_diagonal: float = 5e-3
    bt_eps: float = 1e-5
    attacker_lr: float = 1e-3
    attacker_width: int = 64
    attacker_layers: int = 3
    attacker_heads: int = 4
    attacker_ffn: int = 128
    attacker_dropout: float = 0.2
    sensitivity_draws: int = 10
    sensitivity_step: float = 1e-3
    sensitivity_grad: bool = True
    feature_layer: str | None = None
    attacker_warmup_steps: int = 0
    attacker_holdout: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.pair_batch_size >= 2, "pair_batch_size must be >= 2"),
            (min(self.attack_weight, self.bt_weight, self.bt_off_diagonal, self.bt_eps) >= 0, "weights must be >= 0"),
            (self.attacker_lr > 0 and self.sensitivity_step > 0, "attacker_lr and sensitivity_step must be > 0"),
            (min(self.attacker_width, self.attacker_layers, self.attacker_heads, self.attacker_ffn) >= 1,
             "attacker sizes must be >= 1"),
            (self.attacker_width % self.attacker_heads == 0, "attacker_width must be a multiple of attacker_heads"),
            (0 <= self.attacker_dropout < 1, "attacker_dropout must lie in [0, 1)"),
            (self.sensitivity_draws >= 1, "sensitivity_draws must be >= 1"),
            (self.attacker_warmup_steps >= 0, "attacker_warmup_steps must be >= 0"),
            (0 <= self.attacker_holdout <= 0.5, "attacker_holdout must lie in [0, 0.5]"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInputError(f"invalid DauConfig: {message}")


def check_features(model: nn.Module, x: Tensor, layer: str | None) -> int:
    """The width of ``model``'s penultimate features on a probe ``x``; a model whose features
    cannot be read is refused with :class:`UnsupportedSettingError` (nothing is trained)."""
    try:
        with torch.no_grad(), preserved_mode(model, training=False):
            return int(penultimate_features(model, x, layer).shape[1])
    except InvalidInputError as exc:
        raise UnsupportedSettingError(
            f"dau needs the model's penultimate features: {exc}; or choose a method without that need "
            f"(e.g. 'amun', 'salun', 'rl')"
        ) from exc


class _Game:
    """The attacker, its optimiser and the sampling of forget / validation pairs."""

    def __init__(self, forget: LabeledData, validation: LabeledData, config: DauConfig, ctx: UnlearnContext) -> None:
        self.forget, self.validation, self.config, self.device = forget, validation, config, ctx.device
        self.generator = torch.Generator().manual_seed(next_seed(ctx))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(next_seed(ctx))
            self.attacker = MembershipAttacker(
                forget.num_classes, config.attacker_width, config.attacker_layers, config.attacker_heads,
                config.attacker_ffn, config.attacker_dropout,
            ).to(ctx.device)
        self.optimizer = torch.optim.Adam(self.attacker.parameters(), lr=config.attacker_lr)
        self.b = min(config.pair_batch_size, len(forget), len(validation))
        self.membership = torch.cat([torch.ones(self.b), torch.zeros(self.b)]).long().to(ctx.device)
        self.held_forget, self.trains_forget = self._holdout(len(forget))
        self.held_validation, self.trains_validation = self._holdout(len(validation))

    def _holdout(self, n: int) -> tuple[Tensor, Tensor]:
        """(held-out indices (h,), mask (n,) of the samples the attacker may train on)."""
        held = torch.randperm(n, generator=self.generator)[: int(self.config.attacker_holdout * n)]
        trains = torch.ones(n, dtype=torch.bool)
        trains[held] = False
        return held, trains

    def _pairs(self) -> tuple[Tensor, Tensor, Tensor]:
        """A pair batch: x (2b, ...), y (2b,) and which rows (2b,) the attacker may train on."""
        f = torch.randperm(len(self.forget), generator=self.generator)[: self.b]
        v = torch.randperm(len(self.validation), generator=self.generator)[: self.b]
        x = torch.cat([self.forget.x[f], self.validation.x[v]]).to(self.device)
        y = torch.cat([self.forget.y[f], self.validation.y[v]]).to(self.device)
        rows = torch.cat([self.trains_forget[f], self.trains_validation[v]]).to(self.device)
        return x, y, rows

    @property
    def heldout_size(self) -> int:
        """k: held-out samples judged per side (forget / validation)."""
        return min(len(self.held_forget), len(self.held_validation))

    def heldout_accuracy(self, defender: nn.Module) -> float:
        """% of k held-out forget + k held-out validation samples the attacker (eval mode) labels
        correctly (member / non-member); features from ``defender`` in eval mode, no gradients."""
        k, cfg = self.heldout_size, self.config
        x = torch.cat([self.forget.x[self.held_forget[:k]], self.validation.x[self.held_validation[:k]]])
        y = torch.cat([self.forget.y[self.held_forget[:k]], self.validation.y[self.held_validation[:k]]])
        truth = torch.cat([torch.ones(k), torch.zeros(k)]).long()
        correct = 0
        with preserved_mode(defender, training=False), preserved_mode(self.attacker, training=False), \
                torch.no_grad():
            for chunk in torch.arange(2 * k).split(max(2, cfg.pair_batch_size)):
                xs, ys = x[chunk].to(self.device), y[chunk].to(self.device)
                logits, sensitivity = logits_and_sensitivity(
                    defender, xs, cfg.sensitivity_draws, cfg.sensitivity_step, self.generator, False)
                predicted = self.attacker(attack_features(logits, ys, sensitivity)).argmax(dim=1).cpu()
                correct += int((predicted == truth[chunk]).sum())
        return 100.0 * correct / (2 * k)

    def play(self, defender: nn.Module, with_defender_loss: bool) -> Tensor | None:
        """One attacker step on a fresh pair batch; then, if asked, the defender's adversarial
        terms ``w_A * CE(A(phi), flipped) + w_BT * L_BT`` (with gradients into ``defender``)."""
        cfg = self.config
        x, y, rows = self._pairs()
        with preserved_mode(defender, training=False), torch.set_grad_enabled(with_defender_loss):
            logits, sensitivity = logits_and_sensitivity(
                defender, x, cfg.sensitivity_draws, cfg.sensitivity_step, self.generator, cfg.sensitivity_grad
            )
            features = attack_features(logits, y, sensitivity)
            hidden = penultimate_features(defender, x, cfg.feature_layer) if with_defender_loss else None
        if bool(rows.any()):
            self._attacker_step(features.detach()[rows], self.membership[rows])
        if hidden is None:
            return None
        flipped = 1 - self.membership
        adversarial = F.cross_entropy(self.attacker(features), flipped)
        bt = barlow_twins_loss(hidden[: self.b], hidden[self.b :], cfg.bt_off_diagonal, cfg.bt_eps)
        return cfg.attack_weight * adversarial + cfg.bt_weight * bt

    def _attacker_step(self, features: Tensor, membership: Tensor) -> None:
        """One Adam step of the attacker (train mode) on ``features`` (r, C, 3) with labels (r,)."""
        self.attacker.train()
        loss = F.cross_entropy(self.attacker(features), membership)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


class _DefenderLoss:
    """``loss_fn`` for the retain batches: CE(retain) plus the game's adversarial terms."""

    def __init__(self, game: _Game, model: nn.Module) -> None:
        self.game, self.model = game, model

    def __call__(self, logits: Tensor, y: Tensor, _indices: Tensor) -> Tensor:
        terms = self.game.play(self.model, with_defender_loss=True)
        assert terms is not None
        return F.cross_entropy(logits, y) + terms


class Dau(Unlearner):
    """DAU: unlearn by defending against a jointly trained membership attacker."""

    name = "dau"
    config_class = DauConfig
    description = "DAU: min-max game against a membership attacker, with a Barlow-Twins feature regulariser"
    capabilities = Capabilities(requires_retain=True, requires_validation=True, requires_features=True)

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: DauConfig = self.config
        assert request.retain is not None and request.validation is not None  # check_request
        if min(len(request.forget), len(request.validation)) < 2:
            raise InvalidInputError("dau needs at least 2 forget and 2 validation samples (batch statistics of L_BT)")
        check_features(model, request.forget.x[:2].to(ctx.device), config.feature_layer)
        game = _Game(request.forget, request.validation, config, ctx)
        for _ in range(config.attacker_warmup_steps):
            game.play(model, with_defender_loss=False)
        held = game.heldout_size > 0
        warmup = game.heldout_accuracy(model) if held else None
        per_epoch: list[float] = []

        def epoch_end(_epoch: int, defender: nn.Module) -> None:
            if held:
                per_epoch.append(game.heldout_accuracy(defender))

        stats = train_model(
            model, request.retain, config.train_config(), device=ctx.device, seed=ctx.seed,
            loss_fn=_DefenderLoss(game, model), epoch_end=epoch_end, progress="DAU" if ctx.progress else False,
        )
        heldout = {"attacker_heldout_size": game.heldout_size, "attacker_heldout_accuracy_after_warmup": warmup,
                   "attacker_heldout_accuracy_per_epoch": per_epoch,
                   "attacker_heldout_accuracy_final": per_epoch[-1] if per_epoch else warmup} if held else {}
        return {"pair_batch_size": game.b, **heldout, **train_summary(stats)}
