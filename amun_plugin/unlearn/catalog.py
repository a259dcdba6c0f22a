"""The built-in unlearners, in the order ``amun plugins`` lists them."""

from __future__ import annotations

from amun_plugin.unlearn.base import Unlearner

__all__ = ["builtin_unlearners"]


def builtin_unlearners() -> list[type[Unlearner]]:
    from amun_plugin.unlearn.amun import Amun

    return [Amun]
