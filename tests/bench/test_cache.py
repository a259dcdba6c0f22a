"""Content-hash keys and the artefact cache: computed once, reused, never stale."""

from __future__ import annotations

from pathlib import Path

import torch
from bench_helpers import tiny_suite

from amun_plugin.artifacts import ArtifactCache, content_hash, load_adversarial, save_adversarial
from amun_plugin.attacks.search import AdversarialSet
from amun_plugin.bench import workspace as workspace_module
from amun_plugin.bench.workspace import Workspace


def test_content_hash_is_canonical_and_sensitive() -> None:
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 1.5})
    assert len(content_hash({"a": 1})) == 20


def test_json_artefacts_are_created_once(tmp_path: Path) -> None:
    cache, calls = ArtifactCache(tmp_path), []
    make = lambda: calls.append(1) or {"x": 1}  # noqa: E731
    assert cache.json("k", "abc", make) == cache.json("k", "abc", make) == {"x": 1}
    assert len(calls) == 1 and cache.created["k"] == 1 and cache.hits["k"] == 1


def test_adversarial_sets_round_trip(tmp_path: Path) -> None:
    n = 4
    adv = AdversarialSet(
        x_adv=torch.rand(n, 1, 2, 2), y_adv=torch.tensor([1, 0, 2, 1]), y_true=torch.tensor([0, 0, 1, 2]),
        eps=torch.tensor([0.1, 0.0, float("inf"), 0.2]), distance_l2=torch.rand(n),
        grad_evals=torch.tensor([5, 0, 50, 7]), forward_evals=torch.ones(n, dtype=torch.long),
        found=torch.tensor([True, True, False, True]), already_misclassified=torch.tensor([False, True, False, False]),
        doublings=torch.tensor([0, 0, 3, 1]), backend="b", seconds=1.5, eps_init=0.04, num_classes=3)
    back = load_adversarial(save_adversarial(tmp_path / "a.safetensors", adv))
    for name in ("x_adv", "y_adv", "eps", "found", "already_misclassified", "grad_evals"):
        assert torch.equal(getattr(back, name), getattr(adv, name))
    assert (back.backend, back.seconds, back.num_classes) == ("b", 1.5, 3)


def test_models_and_adversarial_sets_are_shared_by_content_hash(tmp_path: Path, monkeypatch) -> None:
    trained = []
    real = workspace_module.train_original
    monkeypatch.setattr(workspace_module, "train_original", lambda *a, **k: trained.append(1) or real(*a, **k))
    config = tiny_suite()
    ws = Workspace(config, ArtifactCache(tmp_path))
    model, info = ws.original(0)
    again, _ = Workspace(config, ArtifactCache(tmp_path)).original(0)
    assert len(trained) == 1 and info["train_accuracy"] > 50
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    other = tiny_suite(training={"recipe": {"epochs": 2}})
    assert Workspace(other, ArtifactCache(tmp_path)).model_key("original", 0, "standard") != ws.model_key(
        "original", 0, "standard")
    split = ws.split(0.05, 0)
    amun = config.methods[1]
    key = ws.model_key("original", 0, "standard")
    first = ws.adversarial(model, key, split, amun)
    second = ws.adversarial(model, key, split, amun)
    assert ws.cache.created["adversarial"] == 1 and ws.cache.hits["adversarial"] == 1
    assert torch.equal(first.x_adv, second.x_adv) and len(first) == len(split.forget_indices)


def test_cells_are_named_by_the_methods_full_config(tmp_path: Path) -> None:
    from amun_plugin.bench.cells import resolved_hash
    from amun_plugin.bench.records import Cell
    from amun_plugin.unlearn.finetune import FinetuneConfig

    ws = Workspace(tiny_suite(), ArtifactCache(tmp_path))
    default_lr = resolved_hash(ws, "ft", {})
    assert resolved_hash(ws, "ft", {"lr": FinetuneConfig().lr}) == default_lr  # defaults count, not spelling
    assert resolved_hash(ws, "ft", {"lr": 0.5}) != default_lr
    cell = Cell("unlearn", "FT", resolved=default_lr)
    assert Cell("unlearn", "FT", resolved=resolved_hash(ws, "ft", {"lr": 0.5})).id != cell.id


def test_adversarial_keys_resolve_the_attack_backends_defaults(tmp_path: Path, monkeypatch) -> None:
    """D_A's key holds the backend's config with its defaults: spelling a default out names the same
    D_A, and a changed default (a new release of the search) never reuses a stale cached D_A."""
    from dataclasses import dataclass

    from amun_plugin.attacks import native_min_norm
    from amun_plugin.bench.suite_config import MethodSpec

    ws = Workspace(tiny_suite(), ArtifactCache(tmp_path))
    split, model_key = ws.split(0.05, 0), ws.model_key("original", 0, "standard")

    def key(attack_options: dict) -> str:
        spec = MethodSpec(name="amun", label="AMUN", options={"attack": "native_min_norm",
                                                                "attack_options": attack_options})
        return ws.adversarial_key(model_key, split, spec)

    default = key({})
    assert key({"steps": native_min_norm.NativeMinNormConfig().steps}) == default
    assert key({"steps": 3}) != default
    default_steps = native_min_norm.NativeMinNormConfig().boundary_steps

    @dataclass(frozen=True)
    class NextRelease(native_min_norm.NativeMinNormConfig):
        boundary_steps: int = default_steps + 1

    monkeypatch.setattr(native_min_norm.NativeMinNormL2, "config_class", NextRelease)
    assert key({}) != default
