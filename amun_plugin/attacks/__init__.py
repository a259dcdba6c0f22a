"""Attack backends (native, torchattacks, ART, optional adv-lib) behind one interface, and AMUN's
nearest-example search.

Backends are imported here without their optional third-party libraries: torchattacks, ART and
adv-lib are imported only when an attack runs (a missing one raises ``BackendUnavailableError``).
"""

from amun_plugin.attacks.advlib_backends import AdvLibALMA, AdvLibDDN, AdvLibFAB, AdvLibFMN, AdvLibStepsConfig
from amun_plugin.attacks.art_backend import ArtPGDConfig, ArtPGDL2
from amun_plugin.attacks.base import AttackBackend, AttackOutput
from amun_plugin.attacks.losses import AttackLoss, attack_loss, logit_margin
from amun_plugin.attacks.native_min_norm import NativeMinNormConfig, NativeMinNormL2
from amun_plugin.attacks.native_pgd import NativePGDConfig, NativePGDL2
from amun_plugin.attacks.search import (
    ALGORITHM_1,
    ALGORITHM_1_BISECTION,
    AdversarialSet,
    SearchConfig,
    nearest_adversarial,
    perturbation_norm,
)
from amun_plugin.attacks.torchattacks_backends import (
    TorchattacksFFGSM,
    TorchattacksFFGSMConfig,
    TorchattacksPGDConfig,
    TorchattacksPGDL2,
)

BUILTIN_ATTACKS: tuple[type[AttackBackend], ...] = (
    TorchattacksPGDL2, TorchattacksFFGSM, ArtPGDL2, NativePGDL2, NativeMinNormL2,
)
"""The attack backends amun_plugin registers through its own ``amun_register_attacks`` hook."""

__all__ = [
    "BUILTIN_ATTACKS",
    "ALGORITHM_1",
    "ALGORITHM_1_BISECTION",
    "AdvLibALMA",
    "AdvLibDDN",
    "AdvLibFAB",
    "AdvLibFMN",
    "AdvLibStepsConfig",
    "AdversarialSet",
    "ArtPGDConfig",
    "ArtPGDL2",
    "AttackBackend",
    "AttackLoss",
    "AttackOutput",
    "NativeMinNormConfig",
    "NativeMinNormL2",
    "NativePGDConfig",
    "NativePGDL2",
    "SearchConfig",
    "TorchattacksFFGSM",
    "TorchattacksFFGSMConfig",
    "TorchattacksPGDConfig",
    "TorchattacksPGDL2",
    "attack_loss",
    "logit_margin",
    "nearest_adversarial",
    "perturbation_norm",
]
