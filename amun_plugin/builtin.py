"""The built-in components, registered through the same hooks as any third-party plugin: each
subpackage's one ``BUILTIN_*`` tuple."""

from __future__ import annotations

from amun_plugin.attacks import BUILTIN_ATTACKS
from amun_plugin.attacks.advlib_backends import available_advlib_backends
from amun_plugin.data import BUILTIN_DATASETS
from amun_plugin.evaluate import BUILTIN_EVALUATORS
from amun_plugin.hookspecs import Register, hookimpl
from amun_plugin.models import BUILTIN_ARCHITECTURES
from amun_plugin.unlearn import BUILTIN_UNLEARNERS


@hookimpl
def amun_register_unlearners(register: Register) -> None:
    for unlearner in BUILTIN_UNLEARNERS:
        register(unlearner)


@hookimpl
def amun_register_attacks(register: Register) -> None:
    for backend in BUILTIN_ATTACKS:
        register(backend)
    for backend in available_advlib_backends():  # only with the optional extra amun_plugin[advlib]
        register(backend)


@hookimpl
def amun_register_evaluators(register: Register) -> None:
    for evaluator in BUILTIN_EVALUATORS:
        register(evaluator)


@hookimpl
def amun_register_datasets(register: Register) -> None:
    for source in BUILTIN_DATASETS:
        register(source)


@hookimpl
def amun_register_models(register: Register) -> None:
    for architecture in BUILTIN_ARCHITECTURES:
        register(architecture)
