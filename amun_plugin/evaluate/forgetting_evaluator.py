"""``forgetting_quality``: the NeurIPS 2023 forgetting score and a per-example U-LiRA test as an evaluator.

The audited model is the *original* model (before unlearning); ``data`` gives D_R, D_F and D_T.
The evaluator runs the configured unlearner ``runs`` times (seeds 0 .. runs − 1) and retrains
``runs`` models of ``architecture`` on D_R with ``recipe`` (seeds ``retrain_seed`` ..), then
scores them (:mod:`amun_plugin.evaluate.forgetting_protocol`). Retrained models are cached as
checkpoints in the bench's content-addressed cache (``cache_dir``, default ``$AMUN_BENCH_CACHE``
or ``~/.cache/amun_plugin/bench``), keyed by architecture, recipe, seed and the bytes of D_R, so
every method audited against the same D_R and every later run reuses them; every run's output is
cached too, so an interrupted evaluation resumes. For a method with an attack (AMUN), D_A is
searched once on the original model and shared by the runs.

    ForgettingQualityEvaluator({"architecture": "mlp", "recipe": {"epochs": 30}, "method": "amun", "runs": 16},
                               plugins=amun_plugin.get_plugin_manager()).evaluate(original, AuditData(...))

It needs the registries (``plugins``: the unlearner, its attack and the architecture are found
there); ``amun_plugin.audit`` hands them over.

Metrics: F and final_score in [0, 1] (higher = closer to retraining), RA_ratio, TA_ratio, runs,
max_resolvable_epsilon, ULiRA_TPR@1%FPR / ULiRA_TPR@0.1%FPR / ULiRA_AUC (percent) with _lo / _hi
(95% bootstrap over models). Scores: "forget" -> the per-example ε (n,); "confidence_unlearned"
(N, n) and "confidence_retrained" (N, n) -> the per-model logit-scaled confidences on D_F that F
and U-LiRA are computed from (model x example, seeds in order), to recompute F with other code.

The ``retrain`` method is judged as any other: with no ``method_options`` it gets ``recipe`` (so
both sides draw from one distribution; its seed s reproduces the reference model of seed s, hence
the default ``retrain_seed`` 1000, disjoint from the unlearning seeds 0 .. runs − 1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from amun_plugin.artifacts import ArtifactCache, content_hash, default_cache_dir
from amun_plugin.attacks.search import nearest_adversarial
from amun_plugin.config import config_to_dict, make_config
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData, EvaluationResult, Evaluator
from amun_plugin.evaluate.forgetting_protocol import data_hash, run_protocol, timed
from amun_plugin.models.checkpoint import CheckpointMetadata
from amun_plugin.models.inference import load_model
from amun_plugin.registry import Components
from amun_plugin.training import TrainConfig, train_classifier
from amun_plugin.unlearn.base import ForgetRequest

__all__ = ["ForgettingQualityConfig", "ForgettingQualityEvaluator", "protocol_metrics"]


@dataclass(frozen=True)
class ForgettingQualityConfig:
    """Options of :class:`ForgettingQualityEvaluator`.

    Attributes:
        architecture: registered architecture of the retrained models (required, e.g. "mlp"). (Default: "")
        architecture_options: that architecture's options (as for ``amun describe NAME``). (Default: {})
        recipe: TrainConfig fields of the retraining on D_R: pass the original model's recipe. (Default: {})
        method: registered unlearner run ``runs`` times on the original model. (Default: "amun")
        method_options: the unlearner's options. (Default: {})
        use_retain: give the unlearner D_R (False: the setting without the retain set). (Default: True)
        runs: N, the unlearned and the retrained models each (>= 3; the competition used 512). (Default: 8)
            The per-example epsilon buckets end at ceil(ln(N - 1)).
        retrain_seed: seed of the first retrained model (then retrain_seed + 1, ...); the unlearner's
            seeds are 0 .. runs - 1. (Default: 1000)
        cache_dir: artefact cache of the retrained models and the runs; None = the bench cache. (Default: None)
            The bench cache is ``$AMUN_BENCH_CACHE`` or ``~/.cache/amun_plugin/bench``.
        bootstrap: bootstrap resamples (over models) of the U-LiRA 95% intervals. (Default: 200)
    """

    architecture: str = ""
    architecture_options: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)
    method: str = "amun"
    method_options: Mapping[str, Any] = field(default_factory=dict)
    use_retain: bool = True
    runs: int = 8
    retrain_seed: int = 1000
    cache_dir: str | None = None
    bootstrap: int = 200

    def __post_init__(self) -> None:
        if self.runs < 3:
            raise InvalidInputError(f"forgetting_quality: runs must be >= 3, got {self.runs}")
        if not self.architecture:
            raise InvalidInputError("forgetting_quality needs the architecture of the retrained models "
                                    "(e.g. {'architecture': 'mlp', 'recipe': {...}})")
        if self.method == "retrain" and self.retrain_seed < self.runs:
            raise InvalidInputError(f"forgetting_quality: with method 'retrain', retrain_seed must be >= runs "
                                    f"({self.runs}): its seed s would reproduce the reference model of seed s")


def protocol_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The flat float metrics of a :func:`score_runs` result (U-LiRA intervals as _lo / _hi)."""
    out = {k: float(result[k]) for k in ("F", "final_score", "RA_ratio", "TA_ratio", "runs",
                                          "max_resolvable_epsilon")}
    for key, value in result["ulira"].items():
        if key.endswith("_ci"):
            out[f"ULiRA_{key[:-3]}_lo"], out[f"ULiRA_{key[:-3]}_hi"] = float(value[0]), float(value[1])
        elif key != "trials":
            out[f"ULiRA_{key}"] = float(value)
    return out


def _weights_hash(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


class ForgettingQualityEvaluator(Evaluator):
    name = "forgetting_quality"
    config_class: ClassVar[type] = ForgettingQualityConfig
    description = "NeurIPS-2023 forgetting score F and per-example U-LiRA over N unlearn / N retrain runs (slow)"
    needs_components = True

    def __init__(self, config: Mapping[str, Any] | Any | None = None, *, plugins: Components | None = None) -> None:
        super().__init__(config)
        self.plugins = plugins

    def _evaluate(self, model: nn.Module, data: AuditData, device: torch.device, seed: int) -> EvaluationResult:
        config: ForgettingQualityConfig = self.config
        host = self.plugins
        if host is None:
            raise InvalidInputError("forgetting_quality needs the registries: ForgettingQualityEvaluator(config, "
                                    "plugins=amun_plugin.get_plugin_manager()), or run it through amun_plugin.audit")
        cache = ArtifactCache(config.cache_dir or default_cache_dir())
        retrain_run, retrain_spec = _retrainer(host, cache, config, data, device)
        retain = data.retain if config.use_retain else None
        options = _method_options(config)
        shared: dict[str, Any] = {}

        def unlearn_run(s: int) -> tuple[nn.Module, float]:
            if "adversarial" not in shared:  # searched once, on the first run not read from the cache
                shared["adversarial"] = _shared_adversarial(host, config, model, data, device)
            request = ForgetRequest(data.forget, retain, adversarial=shared["adversarial"])
            unlearner = host.unlearners.get(config.method)(options)
            return timed(lambda: unlearner.run(model, request, plugins=host, device=device, seed=s).model)

        resolved = config_to_dict(host.unlearners.get(config.method)(options).config)
        unlearn_spec = {"role": "unlearn", "original": _weights_hash(model), "method": config.method,
                        "config": resolved, "use_retain": config.use_retain, "retain": data_hash(data.retain),
                        "test": data_hash(data.test)}
        result = run_protocol(data, unlearn_run, retrain_run, unlearn_seeds=range(config.runs),
                              retrain_seeds=range(config.retrain_seed, config.retrain_seed + config.runs),
                              cache=cache, unlearn_spec=unlearn_spec, retrain_spec=retrain_spec, device=device,
                              bootstrap=config.bootstrap)
        confidence = result["confidence"]
        return EvaluationResult(protocol_metrics(result), {
            "forget": np.asarray(result["epsilon"]), "confidence_unlearned": np.asarray(confidence["unlearned"]),
            "confidence_retrained": np.asarray(confidence["retrained"])})


def _method_options(config: ForgettingQualityConfig) -> dict[str, Any]:
    """The unlearner's options; ``retrain`` without options gets the reference side's recipe."""
    if config.method == "retrain" and not config.method_options:
        return dict(config.recipe)
    return dict(config.method_options)


def _retrainer(host: Components, cache: ArtifactCache, config: ForgettingQualityConfig, data: AuditData,
               device: Any) -> tuple[Any, dict[str, Any]]:
    """(seed -> (cached retrained model, its training seconds), the spec of the retrained side)."""
    architecture = host.models.get(config.architecture)(dict(config.architecture_options))
    recipe = make_config(TrainConfig, dict(config.recipe))
    spec = {"role": "forgetting_retrain", "architecture": architecture.name,
            "architecture_config": config_to_dict(architecture.config), "recipe": config_to_dict(recipe),
            "retain": data_hash(data.retain)}

    def run(seed: int) -> tuple[nn.Module, float]:
        def create() -> tuple[nn.Module, CheckpointMetadata]:
            trained, seconds = timed(lambda: train_classifier(architecture, data.retain, recipe, seed=seed,
                                                              device=device))
            metadata = CheckpointMetadata(architecture.name, config_to_dict(architecture.config),
                                          data.num_classes, data.retain.input_shape,
                                          recipe={**config_to_dict(recipe), "seed": seed},
                                          extra={"train_seconds": seconds})
            return trained, metadata

        key = content_hash({**spec, "seed": seed})
        model, info = cache.model("models", key, create, lambda path: load_model(path, host.models, device)[0])
        return model, float(info["train_seconds"])

    return run, {**spec, "test": data_hash(data.test)}


def _shared_adversarial(host: Components, config: ForgettingQualityConfig, model: nn.Module, data: AuditData,
                        device: Any) -> Any:
    """D_A of the forget set on the original model when the method has attack settings, else None."""
    unlearner = host.unlearners.get(config.method)(_method_options(config)).config
    if not all(hasattr(unlearner, name) for name in ("attack", "attack_options", "search")):
        return None
    backend = host.attacks.get(unlearner.attack)(dict(unlearner.attack_options))
    return nearest_adversarial(model, data.forget, backend, unlearner.search, device=device)
