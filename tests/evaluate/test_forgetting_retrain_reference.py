"""The ``retrain`` unlearner and the reference retrainings draw from one distribution (issue 27).

Both re-initialise as the architecture's ``build`` does (He init of the built-in networks) and
train with the same recipe and seed, so the retrain unlearner with seed s reproduces the
reference model of seed s, and retrain-vs-retrain on other seeds looks like the null to U-LiRA.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import amun_plugin
from amun_plugin.config import make_config
from amun_plugin.data.splits import SplitConfig, make_split
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.forgetting_evaluator import (
    ForgettingQualityConfig,
    ForgettingQualityEvaluator,
    _method_options,
)
from amun_plugin.evaluate.forgetting_protocol import run_protocol, timed
from amun_plugin.evaluate.ulira import ulira_test
from amun_plugin.models.inference import build_model
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.training import TrainConfig, train_classifier
from amun_plugin.unlearn.retrain import reinitialize

RECIPE = {"epochs": 6, "batch_size": 32, "lr": 0.05, "weight_decay": 0.0}
RUNS = 8


@pytest.fixture(scope="module")
def digits():
    host = get_plugin_manager(autoload=False)
    bundle = host.load_dataset("digits", {"test_fraction": 0.5})
    split = make_split(bundle.train, SplitConfig(fraction=0.1, seed=0))
    data = AuditData(split.retain(bundle.train), split.forget(bundle.train), bundle.test)
    architecture = host.make_architecture("mlp", {"hidden": [32]})
    original = train_classifier(architecture, bundle.train, TrainConfig(**RECIPE), seed=0)
    return host, data, architecture, original


@pytest.mark.parametrize(("name", "options", "shape"), [
    ("mlp", {"hidden": [16, 8]}, (1, 8, 8)),
    ("cnn", {"width": 4, "hidden": 16}, (1, 12, 12)),
    ("small_resnet", {}, (3, 8, 8)),
])
def test_reinitialize_draws_what_build_model_draws(name, options, shape):
    architecture = get_plugin_manager(autoload=False).make_architecture(name, options)
    reference = build_model(architecture, 10, shape, seed=3)
    model = build_model(architecture, 10, shape, seed=99)
    reinitialize(model, seed=3)
    for (key, a), b in zip(reference.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), key


def test_the_retrain_unlearner_reproduces_the_reference_model_of_its_seed(digits):
    host, data, architecture, original = digits
    unlearned = amun_plugin.unlearn(copy.deepcopy(original), data.forget, data.retain, method="retrain",
                                    plugins=host, seed=5, **RECIPE).model
    reference = train_classifier(architecture, data.retain, TrainConfig(**RECIPE), seed=5)
    for (key, a), b in zip(reference.state_dict().items(), unlearned.state_dict().values()):
        assert torch.equal(a, b), key


def _null_interval(n_models: int, n_examples: int, draws: int = 60) -> tuple[float, float]:
    """2.5 / 97.5 percentiles of U-LiRA's AUC between two samples of one distribution."""
    rng = np.random.default_rng(0)
    aucs = []
    for _ in range(draws):
        mean, scale = rng.normal(0, 3, n_examples), rng.uniform(0.5, 2, n_examples)
        u, r = (rng.normal(mean, scale, (n_models, n_examples)) for _ in range(2))
        aucs.append(ulira_test(u, r, bootstrap=0)["AUC"])
    return float(np.percentile(aucs, 2.5)), float(np.percentile(aucs, 97.5))


def test_retrain_against_the_reference_retrainings_is_the_null(digits):
    host, data, architecture, original = digits

    def unlearn_run(seed: int):
        return timed(lambda: amun_plugin.unlearn(original, data.forget, data.retain, method="retrain",
                                                 plugins=host, seed=seed, **RECIPE).model)

    def retrain_run(seed: int):
        return timed(lambda: train_classifier(architecture, data.retain, TrainConfig(**RECIPE), seed=seed))

    result = run_protocol(data, unlearn_run, retrain_run, unlearn_seeds=range(RUNS),
                          retrain_seeds=range(100, 100 + RUNS), bootstrap=100)
    lo, hi = _null_interval(RUNS, len(data.forget))
    auc_lo, auc_hi = result["ulira"]["AUC_ci"]
    assert auc_lo <= hi and auc_hi >= lo, (result["ulira"]["AUC"], (auc_lo, auc_hi), (lo, hi))


def test_the_evaluator_gives_retrain_the_reference_recipe_and_disjoint_seeds():
    options = {"architecture": "mlp", "recipe": dict(RECIPE), "method": "retrain", "runs": 3}
    evaluator = ForgettingQualityEvaluator(options, plugins=get_plugin_manager(autoload=False))
    assert evaluator.config.retrain_seed >= evaluator.config.runs
    assert _method_options(evaluator.config) == RECIPE  # no options: the reference side's recipe
    assert _method_options(make_config(ForgettingQualityConfig, {**options, "method_options": {"epochs": 2}})) == {
        "epochs": 2}
    with pytest.raises(InvalidInputError, match="retrain_seed"):
        ForgettingQualityEvaluator({**options, "retrain_seed": 1})
