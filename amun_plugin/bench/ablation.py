"""The ``ablation`` suite's cells (AMUN paper §6.2.1, Figure 1): fine-tune the original model on
D_A or a substitute for it, in three unions, and record the test accuracy after every epoch.

With (x, y) a forget sample and (x_adv, y_adv) its entry of D_A (y_adv = the model's wrong
prediction), the substitutes X are (this project's reading of the paper's definitions):

    adv        (x_adv, y_adv)              D_A itself (AMUN)
    orig       (x, y)                      the forget samples with their true labels
    adv_rs     (x + r, y_adv)              r: a uniformly random direction with ||r||_2 = ||x_adv - x||_2
    adv_rl     (x_adv, y_r)                y_r: a random label other than y
    orig_rl    (x, y_r)                    the random-label set of RL
    orig_advl  (x, y_adv)                  the forget samples with the adversarial labels

Unions: ``all`` = D_R ∪ D_F ∪ X, ``forget`` = D_F ∪ X, ``adversarial`` = X alone. X is never
augmented (as D_A in AMUN); the fine-tuning recipe is the ablation method's config
(``ablation.method`` / ``ablation.options``, AMUN's by default).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from amun_plugin.attacks.adversarial_set import AdversarialSet
from amun_plugin.bench.records import ABLATION_SUBSTITUTES, ABLATION_UNIONS, Cell
from amun_plugin.bench.suite_config import AdversarialSource, MethodSpec, SuiteConfig
from amun_plugin.bench.workspace import Workspace
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError
from amun_plugin.models.inference import accuracy
from amun_plugin.training import train_model
from amun_plugin.unlearn.random_label import random_other_labels

__all__ = ["ablation_method", "ablation_record", "substitute_set"]



def substitute_set(adversarial: AdversarialSet, forget: LabeledData, variant: str, seed: int) -> LabeledData:
    """The set X of ``variant`` built from the found entries of ``adversarial`` (see the module
    docstring); random draws come from a CPU generator seeded with ``seed``."""
    if variant not in ABLATION_SUBSTITUTES:
        raise InvalidInputError(f"unknown ablation variant {variant!r}; choose from {', '.join(ABLATION_SUBSTITUTES)}")
    found = adversarial.found
    x, y = forget.x[found], forget.y[found]
    x_adv, y_adv = adversarial.x_adv[found], adversarial.y_adv[found]
    generator = torch.Generator().manual_seed(int(seed))
    inputs = {"adv": x_adv, "orig": x, "adv_rs": _random_direction(x, x_adv, generator), "adv_rl": x_adv,
              "orig_rl": x, "orig_advl": x}[variant]
    if variant in ("adv_rl", "orig_rl"):
        labels = random_other_labels(y, forget.num_classes, generator)
    else:
        labels = {"adv": y_adv, "orig": y, "adv_rs": y_adv, "orig_advl": y_adv}[variant]
    return LabeledData(inputs, labels, forget.num_classes, f"ablation_{variant}")


def _random_direction(x: Tensor, x_adv: Tensor, generator: torch.Generator) -> Tensor:
    """x + r with r uniform on the sphere of radius ||x_adv - x||_2 (per sample), clamped to [0, 1]."""
    radius = (x_adv - x).flatten(1).norm(dim=1)
    direction = torch.randn(x.shape, generator=generator)
    direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.ndim - 1)))
    return (x + radius.view(-1, *([1] * (x.ndim - 1))) * direction).clamp(0.0, 1.0)


def _union(ws: Workspace, retain: LabeledData, forget: LabeledData, x_set: LabeledData,
           union: str) -> tuple[LabeledData, Tensor]:
    """The union's data and its augmentation mask (X never augmented)."""
    parts = {"all": [(retain, True), (forget, True)], "forget": [(forget, True)], "adversarial": []}[union]
    parts = parts + [(x_set, False)]
    data = parts[0][0]
    for part, _ in parts[1:]:
        data = data.concat(part, name="union")
    mask = torch.cat([torch.full((len(part),), flag) for part, flag in parts])
    return data, mask


def ablation_method(config: SuiteConfig) -> MethodSpec:
    """The method whose D_A and fine-tuning recipe the ablation uses."""
    spec = config.ablation
    return MethodSpec(spec.method, options=dict(spec.options), adversarial=AdversarialSource.OWN)


def ablation_record(ws: Workspace, cell: Cell) -> dict[str, Any]:
    """Fine-tune a copy of the original model on the cell's union; test accuracy per epoch
    (entry 0 = before fine-tuning) and the final forget / retain accuracy."""
    spec = ws.config.ablation
    variant, union = cell.extra["variant"], cell.extra["union"]
    if union not in ABLATION_UNIONS:
        raise InvalidInputError(f"unknown ablation union {union!r}; choose from {', '.join(ABLATION_UNIONS)}")
    method = ablation_method(ws.config)
    split = ws.split(cell.fraction, cell.forget_seed)
    original, _ = ws.original(cell.original_seed, cell.variant)
    key = ws.model_key("original", cell.original_seed, cell.variant)
    adversarial = ws.adversarial(original, key, split, method)
    forget, retain = split.forget(ws.train), split.retain(ws.train)
    data, mask = _union(ws, retain, forget, substitute_set(adversarial, forget, variant, cell.unlearn_seed), union)
    recipe = ws.plugins.unlearners.get(spec.method)(dict(spec.options)).config.train_config()
    model = copy.deepcopy(original)
    device = ws.config.device
    curve = [accuracy(model, ws.test, device=device)]
    stats = train_model(model, data, recipe, device=device, seed=cell.unlearn_seed, augment_mask=mask,
                        epoch_end=lambda _epoch, m: curve.append(accuracy(m, ws.test, device=device)))
    return {**cell.coords(), "test_accuracy": curve, "forget_accuracy": accuracy(model, forget, device=device),
            "retain_accuracy": accuracy(model, retain, device=device), "seconds": stats.seconds,
            "train_size": len(data)}
