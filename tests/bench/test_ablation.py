"""The ablation's substitutes for D_A (paper §6.2.1): right samples, right labels."""

from __future__ import annotations

import pytest
import torch

from amun_plugin.attacks.search import AdversarialSet
from amun_plugin.bench.ablation import substitute_set
from amun_plugin.bench.records import ABLATION_SUBSTITUTES as SUBSTITUTES
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError


def _sets(n: int = 64) -> tuple[AdversarialSet, LabeledData]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 4, 4, generator=g) * 0.5 + 0.25
    y = torch.arange(n) % 5
    delta = 0.05 * torch.randn(n, 1, 4, 4, generator=g)
    found = torch.ones(n, dtype=torch.bool)
    found[0] = False
    adv = AdversarialSet(
        x_adv=x + delta, y_adv=(y + 1) % 5, y_true=y, eps=torch.ones(n), distance_l2=delta.flatten(1).norm(dim=1),
        grad_evals=torch.ones(n, dtype=torch.long), forward_evals=torch.ones(n, dtype=torch.long), found=found,
        already_misclassified=torch.zeros(n, dtype=torch.bool), doublings=torch.zeros(n, dtype=torch.long),
        backend="t", seconds=0.0, eps_init=0.1, num_classes=5)
    return adv, LabeledData(x, y, 5, "forget")


@pytest.mark.parametrize("variant", SUBSTITUTES)
def test_each_substitute_keeps_or_replaces_what_its_name_says(variant: str) -> None:
    adv, forget = _sets()
    out = substitute_set(adv, forget, variant, seed=1)
    keep = adv.found
    x, y, x_adv, y_adv = forget.x[keep], forget.y[keep], adv.x_adv[keep], adv.y_adv[keep]
    assert len(out) == int(keep.sum())  # only the entries the search found
    if variant in ("adv", "adv_rl"):
        assert torch.equal(out.x, x_adv)
    if variant in ("orig", "orig_rl", "orig_advl"):
        assert torch.equal(out.x, x)
    if variant in ("adv", "adv_rs", "orig_advl"):
        assert torch.equal(out.y, y_adv)
    if variant == "orig":
        assert torch.equal(out.y, y)
    if variant in ("adv_rl", "orig_rl"):
        assert bool((out.y != y).all()) and not torch.equal(out.y, y_adv)
    if variant == "adv_rs":
        moved = (out.x - x).flatten(1).norm(dim=1)
        assert torch.allclose(moved, (x_adv - x).flatten(1).norm(dim=1), atol=1e-5)  # same distance
        assert not torch.allclose(out.x, x_adv)  # another direction


def test_substitutes_are_seeded_and_names_checked() -> None:
    adv, forget = _sets()
    a, b = substitute_set(adv, forget, "adv_rs", 3), substitute_set(adv, forget, "adv_rs", 3)
    assert torch.equal(a.x, b.x)
    with pytest.raises(InvalidInputError, match="unknown ablation variant"):
        substitute_set(adv, forget, "adv_xx", 0)
