"""The cached artefacts of one suite: data and splits, original and retrained models, adversarial
sets, the RMIA reference bank and audit metrics, each got-or-created by content hash."""

from __future__ import annotations

import functools
import json
from functools import cached_property
from typing import Any, Mapping

from torch import nn

from amun_plugin.artifacts import ArtifactCache, content_hash, weights_fingerprint
from amun_plugin.attacks.search import AdversarialSet, nearest_adversarial
from amun_plugin.bench.suite_config import MethodSpec, SuiteConfig
from amun_plugin.config import config_to_dict
from amun_plugin.data.base import DatasetBundle, LabeledData
from amun_plugin.data.splits import SplitConfig, UnlearningSplit, make_split, split_off
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.audit import audit_many
from amun_plugin.evaluate.reference import ReferenceBank, build_reference_bank, concat_population
from amun_plugin.executors import Executor, Resources
from amun_plugin.models.inference import accuracy, build_model
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.progress import bars_allowed
from amun_plugin.training import checkpoint_metadata
from amun_plugin.training.robust import train_original

__all__ = ["Workspace", "split_key"]


@functools.lru_cache(maxsize=4)
def _bundle(name: str, options_json: str) -> DatasetBundle:
    return get_plugin_manager().load_dataset(name, json.loads(options_json))


def split_key(split: UnlearningSplit) -> str:
    """Content hash of a forget set (its train indices)."""
    return content_hash({"forget": split.forget_indices})


class Workspace:
    """Artefacts of ``config`` in ``cache``. Everything is deterministic given the config."""

    def __init__(self, config: SuiteConfig, cache: ArtifactCache, *, plugins: PluginHost | None = None,
                 progress: bool = False) -> None:
        self.config, self.cache, self.progress = config, cache, progress
        self._plugins = plugins
        self._opened_bank: ReferenceBank | None = None
        self._fingerprints: dict[int, str] = {}

    @property
    def plugins(self) -> PluginHost:
        if self._plugins is None:
            self._plugins = get_plugin_manager()
        return self._plugins

    @cached_property
    def bundle(self) -> DatasetBundle:
        spec = self.config.dataset
        return _bundle(spec.name, json.dumps(dict(spec.options), sort_keys=True))

    @property
    def train(self) -> LabeledData:
        return self.bundle.train

    @cached_property
    def _holdout(self) -> tuple[LabeledData | None, LabeledData]:
        size, test = self.config.validation_size, self.bundle.test
        if size <= 0:
            return None, test
        if size >= len(test):
            raise InvalidInputError(f"validation_size {size} must be smaller than the test set ({len(test)})")
        rest, validation = split_off(test, size, 0, "validation")
        return validation, rest

    @property
    def validation(self) -> LabeledData | None:
        """Held-out non-members (DAU), or None."""
        return self._holdout[0]

    @property
    def test(self) -> LabeledData:
        """D_T of every audit (the test set minus the validation hold-out)."""
        return self._holdout[1]

    @cached_property
    def architecture(self) -> Any:
        return self.plugins.make_architecture(self.config.model.name, self.config.model.options)

    def split(self, fraction: float, forget_seed: int) -> UnlearningSplit:
        """The random forget set of ``fraction`` of the train set drawn with ``forget_seed``."""
        return make_split(self.train, SplitConfig(fraction=fraction, seed=forget_seed))

    def init_fingerprint(self, seed: int) -> str:
        """Hash of the freshly initialised weights of ``seed``: part of every model key, so a
        change to an architecture's code or initialisation never reuses stale models."""
        if seed not in self._fingerprints:
            model = build_model(self.architecture, self.bundle.num_classes, self.bundle.input_shape, seed)
            self._fingerprints[seed] = weights_fingerprint(model)
        return self._fingerprints[seed]

    def _base_spec(self, variant: str) -> dict[str, Any]:
        training = self.config.training
        return {"dataset": config_to_dict(self.config.dataset), "model": config_to_dict(self.config.model),
                "recipe": config_to_dict(training.recipe), "variant": variant,
                "variant_options": training.variant_options(variant)}

    def model_key(self, role: str, seed: int, variant: str, split: UnlearningSplit | None = None) -> str:
        """Key of the original model (``split`` None) or of the model retrained without ``split``."""
        spec = {**self._base_spec(variant), "role": role, "seed": seed, "init": self.init_fingerprint(seed)}
        if split is not None:
            spec["without"] = split_key(split)
        return content_hash(spec)

    def original(self, seed: int, variant: str = "standard") -> tuple[nn.Module, dict[str, Any]]:
        """The original model of ``seed`` (trained on all of D) and its training info."""
        return self._model(self.model_key("original", seed, variant), self.train, seed, variant)

    def retrained(self, seed: int, split: UnlearningSplit, variant: str = "standard") -> tuple[nn.Module, dict]:
        """The gold standard: the original recipe and seed on D_R = D minus the forget set."""
        key = self.model_key("retrain", seed, variant, split)
        return self._model(key, split.retain(self.train), seed, variant)

    def _model(self, key: str, data: LabeledData, seed: int, variant: str) -> tuple[nn.Module, dict[str, Any]]:
        device = self.config.device

        def create() -> tuple[nn.Module, Any]:
            model, stats = train_original(
                self.architecture, data, self.config.training.recipe, variant=variant,
                options=self.config.training.variant_options(variant), seed=seed, device=device,
                progress=f"train {key[:8]}" if self.progress else False)
            extra = {"key": key, "train_seconds": stats.seconds, "train_size": len(data), "variant": variant,
                     "train_accuracy": accuracy(model, data, device=device),
                     "test_accuracy": accuracy(model, self.test, device=device)}
            return model, checkpoint_metadata(self.architecture, self.bundle, self.config.dataset.options,
                                              self.config.training.recipe, seed, extra)

        return self.cache.model("models", key, create, lambda path: self.plugins.load_model(path, device)[0])

    def adversarial_key(self, model_key: str, split: UnlearningSplit, method: MethodSpec) -> str:
        """Key of D_A: the model, the forget set and the method's attack settings, the backend's
        config with its defaults included (a changed default never reuses a stale D_A)."""
        config = self.plugins.unlearners.get(method.name)(dict(method.options)).config
        attack = {name: config_to_dict(config).get(name) for name in ("attack", "attack_options", "search")}
        backend = self.plugins.attacks.get(config.attack)(dict(config.attack_options))
        if getattr(backend, "config", None) is not None:  # the resolved config subsumes attack_options
            attack["attack_options"] = config_to_dict(backend.config)
        return content_hash({"model": model_key, "forget": split_key(split), "attack": attack})

    def adversarial(self, model: nn.Module, model_key: str, split: UnlearningSplit,
                    method: MethodSpec) -> AdversarialSet:
        """Algorithm 1 on the forget set with the attack settings of ``method``'s config (its
        ``attack``, ``attack_options`` and ``search`` fields), cached and shared across methods."""
        unlearner = self.plugins.unlearners.get(method.name)(dict(method.options))
        config = unlearner.config
        if not all(hasattr(config, name) for name in ("attack", "attack_options", "search")):
            raise InvalidInputError(f"method {method.label!r} ({method.name}) has no attack settings; "
                                    "set adversarial: none for it")

        def create() -> AdversarialSet:
            backend = self.plugins.attacks.get(config.attack)(dict(config.attack_options))
            return nearest_adversarial(model.to(self.config.device), split.forget(self.train), backend,
                                       config.search, device=self.config.device,
                                       progress=bool(bars_allowed(self.progress)))  # it draws tqdm bars itself

        return self.cache.adversarial("adversarial", self.adversarial_key(model_key, split, method), create)

    @cached_property
    def _bank_spec(self) -> dict[str, Any] | None:
        names = [e.name for e in self.config.evaluation.evaluators]
        if "rmia" not in names:
            return None
        options = {"num_models": 8, "seed": 0, **self.config.evaluation.reference}
        return {**self._base_spec("standard"), "validation_size": self.config.validation_size, "bank": options,
                "init": self.init_fingerprint(int(options["seed"]))}

    @property
    def bank_population(self) -> LabeledData:
        """The reference bank's population: D ∪ D_T, and the validation hold-out too when the
        suite's ``evaluation.reference.include_validation`` is set (so that the RMIA membership
        probe of the retrain-free estimate can score the hold-out)."""
        parts = [self.train, self.test]
        if self.config.evaluation.reference.get("include_validation") and self.validation is not None:
            parts.append(self.validation)
        return concat_population(*parts)

    def bank(self, executor: Executor | None = None, resources: Resources = Resources()) -> ReferenceBank | None:
        """The RMIA reference bank of the population D ∪ D_T (None when "rmia" is not evaluated);
        trained once per content hash, its models as ``executor`` jobs."""
        spec = self._bank_spec
        if spec is None:
            return None
        if self._opened_bank is None:
            folder = self.cache.root / "banks" / content_hash(spec)
            population = self.bank_population
            self._opened_bank = build_reference_bank(
                folder, population, self.architecture, self.config.training.recipe,
                num_models=int(spec["bank"]["num_models"]), seed=int(spec["bank"]["seed"]), executor=executor,
                resources=resources, device=self.config.device, progress=self.progress)
        return self._opened_bank

    def audit(self, model: nn.Module, retain: LabeledData, forget: LabeledData,
              cache_spec: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Every configured evaluator on ``model`` with D_R = ``retain``, D_F = ``forget`` and D_T.
        Cached when ``cache_spec`` (what identifies the model and the sets) is given."""
        evaluation = self.config.evaluation

        def run() -> dict[str, Any]:
            names = [e.name for e in evaluation.evaluators]
            options = {e.name: dict(e.options) for e in evaluation.evaluators if e.options}
            result = audit_many({"model": model}, retain, forget, self.test, names, reference_bank=self.bank(),
                                evaluator_options=options, device=self.config.device, seed=0,
                                plugins=self.plugins)
            return dict(result["model"]["metrics"])

        if cache_spec is None:
            return run()
        spec = {**cache_spec, "evaluation": config_to_dict(evaluation), "bank": self._bank_spec,
                "validation_size": self.config.validation_size}
        return self.cache.json("audits", content_hash(spec), run)
