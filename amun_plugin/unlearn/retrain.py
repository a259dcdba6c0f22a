"""Retrain: the exact-unlearning gold standard — train the same architecture from scratch on D_R.

Every module of a copy of the model that has ``reset_parameters()`` (or torch's private
``_reset_parameters()``) re-draws its weights from a
CPU RNG seeded with the run's seed (so the initialisation is the same on every device; BatchNorm
also resets its running statistics), children before their parent, the order in which
``__init__`` builds them: a network whose ``__init__`` re-initialises its layers (the built-in
mlp, cnn and resnets: He init) re-applies that step in its own ``reset_parameters()``, so a
reset draws from the distribution the architecture's ``build`` draws from (for the built-ins,
with seed s exactly ``models.inference.build_model(architecture, ..., s)``). Then the copy is
trained on D_R alone with the original recipe (seeded with the same seed), minimising
``L = CE(f(x), y)``: the same distribution as every reference retraining
(``training.train_original``). Nothing of the trained weights survives; a parameter
owned by a module without ``reset_parameters()`` would survive, so such a model is refused.

The recipe is given as config fields that mirror :class:`~amun_plugin.training.TrainConfig`
exactly (same names, defaults and checks): pass the recipe the original model was trained with
(``amun train`` records it in the checkpoint) to retrain faithfully.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import nn

from amun_plugin.errors import UnsupportedSettingError
from amun_plugin.training import TrainConfig, train_model
from amun_plugin.unlearn.base import Capabilities, ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.finetune import train_summary

__all__ = ["Retrain", "RetrainConfig", "reinitialize"]


@dataclass(frozen=True)
class RetrainConfig(TrainConfig):
    """The training recipe, field for field a :class:`TrainConfig` (epochs, batch_size, lr,
    momentum, weight_decay, schedule, step_size, gamma, augment, nesterov; same defaults)."""

    def train_config(self) -> TrainConfig:
        return TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})


def reinitialize(model: nn.Module, seed: int) -> int:
    """Re-draw every parameter of ``model`` in place with ``reset_parameters()``, seeded, each
    module after its children (the order of construction).

    The model is reset on the CPU (device-independent values) and moved back. Returns the number
    of modules reset. Raises :class:`UnsupportedSettingError` (before changing anything) if a
    parameter belongs to a module without ``reset_parameters()``.
    """
    orphans = [
        f"{name}.{pname}" if name else pname
        for name, module in model.named_modules()
        if _reset_method(module) is None
        for pname, _ in module.named_parameters(recurse=False)
    ]
    if orphans:
        raise UnsupportedSettingError(
            f"retrain cannot re-initialise parameter(s) {', '.join(orphans[:5])}: their module has no "
            f"reset_parameters(); give it one, or retrain the model with your own training code"
        )
    first = next(iter(list(model.parameters()) + list(model.buffers())), None)
    device = first.device if first is not None else torch.device("cpu")
    model.cpu()
    count = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for module in _children_first(model, set()):
            reset = _reset_method(module)
            if reset is not None:
                reset()
                count += 1
    model.to(device)
    return count


def _children_first(module: nn.Module, seen: set[int]) -> Iterator[nn.Module]:
    """Every module once, each after its children (post-order, children in registration order)."""
    if id(module) in seen:
        return
    seen.add(id(module))
    for child in module.children():
        yield from _children_first(child, seen)
    yield module


def _reset_method(module: nn.Module) -> Callable[[], None] | None:
    """``reset_parameters`` (or torch's private ``_reset_parameters``, e.g. MultiheadAttention)."""
    for attribute in ("reset_parameters", "_reset_parameters"):
        method = getattr(module, attribute, None)
        if callable(method):
            return method  # type: ignore[no-any-return]
    return None


class Retrain(Unlearner):
    """Retrain from scratch on D_R with the configured recipe (needs D_R)."""

    name = "retrain"
    config_class = RetrainConfig
    description = "Retrain: re-initialise the architecture and train from scratch on D_R (the gold standard)"
    capabilities = Capabilities(requires_retain=True)

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: RetrainConfig = self.config
        assert request.retain is not None  # check_request refused the request otherwise
        modules_reset = reinitialize(model, ctx.seed)
        stats = train_model(
            model, request.retain, config.train_config(), device=ctx.device, seed=ctx.seed,
            progress="retrain" if ctx.progress else False,
        )
        return {"retain_size": len(request.retain), "modules_reset": modules_reset, **train_summary(stats)}
