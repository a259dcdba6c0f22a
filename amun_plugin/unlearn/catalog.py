"""The built-in unlearners, in the order ``amun plugins`` lists them."""

from __future__ import annotations

from amun_plugin.unlearn.base import Unlearner

__all__ = ["builtin_unlearners"]


def builtin_unlearners() -> list[type[Unlearner]]:
    from amun_plugin.unlearn.amun import Amun
    from amun_plugin.unlearn.amun_salun import AmunSalUn
    from amun_plugin.unlearn.boundary_shrink import BoundaryShrink
    from amun_plugin.unlearn.continuous import AmunA
    from amun_plugin.unlearn.dau import Dau
    from amun_plugin.unlearn.finetune import Finetune
    from amun_plugin.unlearn.gradient_ascent import GradientAscent
    from amun_plugin.unlearn.l1_sparse import L1Sparse
    from amun_plugin.unlearn.random_label import RandomLabel
    from amun_plugin.unlearn.retrain import Retrain
    from amun_plugin.unlearn.salun import SalUn

    return [Amun, AmunA, AmunSalUn, Retrain, Finetune, RandomLabel, GradientAscent, BoundaryShrink, L1Sparse,
            SalUn, Dau]
