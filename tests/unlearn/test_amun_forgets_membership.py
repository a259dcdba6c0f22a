"""AMUN on the memorising fixture lowers the forget-vs-test membership AUC of the original model.

The fixture's TinyNet memorises 80 random images with random labels; D_F = its first 16, D_R the
other 64, D_T the 40 images it never saw. The confidence attack (``confidence_mia``) separates D_F
from D_T with FT_AUC 86.5 on the original. The margin is set from
``benchmarks/results/amun_fixture_auc`` (``benchmarks/amun_fixture_auc.py``, n = 10 unlearning seeds
per setting, this recipe): the drop was +12.4 ± 2.0 points (smallest 7.7) with D_R and +18.4 ± 0.6
(smallest 16.4) without; fine-tuning on the same inputs with D_F's *true* labels in place of the
adversarial ones (the fault this test guards against) raised FT_AUC instead (-3.6 ± 0.7, -1.6 ± 0.5).
"""

from __future__ import annotations

import pytest

import amun_plugin

# Fine-tuning strong enough to move a 3-class toy model (AMUN's defaults are for image datasets).
RECIPE = {"lr": 0.05, "epochs": 10, "step_size": 10, "batch_size": 16}
MARGIN = 5.0  # AUC points; below the smallest measured drop (7.7), above the broken code's (< 0)


def _ft_auc(model, forget, retain, test, host) -> float:
    report = amun_plugin.audit(model, retain, forget, test, ["confidence_mia"], plugins=host, plots=False)
    return report["metrics"]["confidence_mia.FT_AUC"]


@pytest.mark.filterwarnings("ignore:amun. no holdout given")
@pytest.mark.parametrize("with_retain", [True, False])
def test_amun_lowers_the_forget_vs_test_auc(memorising, with_retain: bool) -> None:
    model, members, non_members = memorising
    forget, retain = members.subset(range(16), name="forget"), members.subset(range(16, 80), name="retain")
    host = amun_plugin.get_plugin_manager(autoload=False)
    before = _ft_auc(model, forget, retain, non_members, host)
    assert before > 80  # the fixture leaks membership to begin with
    result = amun_plugin.unlearn(model, forget, retain if with_retain else None, plugins=host, seed=0, **RECIPE)
    after = _ft_auc(result.model, forget, retain, non_members, host)
    assert after <= before - MARGIN, (before, after)
    assert _ft_auc(model, forget, retain, non_members, host) == before  # the original is untouched
