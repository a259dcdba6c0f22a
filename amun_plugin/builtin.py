"""The built-in components, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from amun_plugin.hookspecs import Register, hookimpl


@hookimpl
def amun_register_unlearners(register: Register) -> None:
    from amun_plugin.unlearn.catalog import builtin_unlearners

    for unlearner in builtin_unlearners():
        register(unlearner)


@hookimpl
def amun_register_attacks(register: Register) -> None:
    from amun_plugin.attacks.advlib_backends import available_advlib_backends
    from amun_plugin.attacks.art_backend import ArtPGDL2
    from amun_plugin.attacks.native_min_norm import NativeMinNormL2
    from amun_plugin.attacks.native_pgd import NativePGDL2
    from amun_plugin.attacks.torchattacks_backends import TorchattacksFFGSM, TorchattacksPGDL2

    for backend in (TorchattacksPGDL2, TorchattacksFFGSM, ArtPGDL2, NativePGDL2, NativeMinNormL2):
        register(backend)
    for backend in available_advlib_backends():  # only with the optional extra amun_plugin[advlib]
        register(backend)


@hookimpl
def amun_register_evaluators(register: Register) -> None:
    from amun_plugin.evaluate.catalog import builtin_evaluators

    for evaluator in builtin_evaluators():
        register(evaluator)


@hookimpl
def amun_register_datasets(register: Register) -> None:
    from amun_plugin.data.cifar import Cifar10Source, Cifar100Source
    from amun_plugin.data.digits import DigitsSource
    from amun_plugin.data.fashion_mnist import FashionMNISTSource

    for source in (DigitsSource, FashionMNISTSource, Cifar10Source, Cifar100Source):
        register(source)


@hookimpl
def amun_register_models(register: Register) -> None:
    from amun_plugin.models.cnn import CNN
    from amun_plugin.models.mlp import MLP
    from amun_plugin.models.resnet import ResNet18, SmallResNet

    for architecture in (MLP, CNN, SmallResNet, ResNet18):
        register(architecture)
