"""l1-sparse: CE on D_R plus alpha_t ||theta||_1 with alpha_t = alpha_0 (1 - t / T)."""

from __future__ import annotations

import pytest

import amun_plugin
from amun_plugin.errors import InvalidInputError
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.l1_sparse import L1SparseConfig, l1_coefficient, l1_norm


def test_the_coefficient_decays_linearly_to_zero() -> None:
    assert [l1_coefficient(5e-4, t, 5) for t in range(5)] == pytest.approx([5e-4, 4e-4, 3e-4, 2e-4, 1e-4])
    assert L1SparseConfig().alpha == 5e-4


def test_each_epoch_uses_its_coefficient_and_the_penalty_shrinks_the_weights(tiny_model, tiny_data) -> None:
    forget, retain = tiny_data.subset(range(0, 15)), tiny_data.subset(range(15, 90))
    host = get_plugin_manager(autoload=False)
    common = dict(method="l1_sparse", plugins=host, epochs=4, lr=0.05, weight_decay=0.0, batch_size=16)
    result = amun_plugin.unlearn(tiny_model, forget, retain, alpha=0.01, **common)
    assert result.stats["l1_alpha_per_epoch"] == pytest.approx([0.01, 0.0075, 0.005, 0.0025])
    plain = amun_plugin.unlearn(tiny_model, forget, retain, alpha=0.0, **common)
    assert l1_norm(result.model).item() < l1_norm(plain.model).item() - 1.0
    assert result.stats["l1_norm_final"] == pytest.approx(l1_norm(result.model).item())


def test_the_amun_authors_growing_schedule_multiplies_by_2_minus_2t_over_t_each_epoch() -> None:
    grow = [l1_coefficient(1.0, t, 10, "grow") for t in range(10)]
    expected, alpha = [], 1.0
    for t in range(10):
        alpha *= 2 - 2 * t / 10
        expected.append(alpha)
    assert grow == pytest.approx(expected)
    decay = [l1_coefficient(1.0, t, 10) for t in range(10)]
    assert sum(grow) / sum(decay) == pytest.approx(9.708, abs=1e-3)  # ~10x the decaying schedule on average
    with pytest.raises(InvalidInputError, match="alpha_schedule"):
        L1SparseConfig(alpha_schedule="up")
