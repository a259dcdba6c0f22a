"""Every Python example of the README and of the docs pages it links to for the API runs as written,
with warnings turned into errors, and shows its point. The examples are taken from README.md and
``PAGES`` (```python blocks: the unlearn call in the README, the audit call in docs/auditing.md,
save / load in docs/unlearning.md, the plugin in docs/plugins.md, the ART run in
docs/art-workflow.md) and executed in order in one namespace, as a reader would run them in one
session.

The README leaves the reader's data and model as placeholders; here they are (small, on the
embedded scikit-learn digits, ``_reader_session``):

- ``model``: an MLP (hidden 256, 256) that memorises 719 digits (30 epochs, no weight decay);
- ``x_forget, y_forget`` / ``forget``: a random 10% of its training set, ``x_retain, y_retain`` /
  ``retain``: the rest (the ``method="auto"`` line names the pairs ``forget`` and ``retain``);
- ``x_val, y_val``: 800 test images the model never saw (enough that the calibration's halves
  measure its ~97% accuracy to within half its 5-point budget: no warning), ``x_test, y_test``:
  the other 278 test images;
- ``retrained_model``: the same recipe trained on the retain set only;
- ``MyNet``: the reader's own module class; here the registered MLP itself, so that the example's
  ``save_model(..., architecture="mlp", ...)`` line describes the same module.

The ART example (``<!-- art-example -->``, docs/art-workflow.md) is run by
``tests/test_readme_art_example.py``; the
plugin example is registered in a fresh plugin host and its method run.
"""

from __future__ import annotations

import re
import types
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import amun_plugin
from amun_plugin.data.splits import SplitConfig, make_split, split_off
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.testing import TinyNet, make_tiny_data
from amun_plugin.training import Schedule, TrainConfig, train_classifier

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# the pages whose Python examples this test runs (README.md's were all here before they moved)
PAGES = [README] + [ROOT / "docs" / name for name in ("unlearning.md", "auditing.md", "plugins.md", "art-workflow.md")]
RECIPE = TrainConfig(epochs=30, batch_size=32, lr=0.05, weight_decay=0.0, schedule=Schedule.COSINE)


def python_blocks() -> list[str]:
    return [block for page in PAGES
            for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)]


def _block(marker: str) -> str:
    found = [block for block in python_blocks() if marker in block]
    assert len(found) == 1, f"README.md and PAGES should have one Python example with {marker!r}, found {len(found)}"
    return found[0]


MARKERS = {"unlearn": "amun_plugin.unlearn(model", "audit": "amun_plugin.audit(",
           "save_load": "amun_plugin.save_model(", "plugin": "def amun_register_unlearners",
           "art": "unlearn_classifier("}


def test_every_readme_python_example_is_run_by_a_test() -> None:
    blocks = python_blocks()
    assert blocks
    for block in blocks:
        assert sum(marker in block for marker in MARKERS.values()) == 1, block[:200]


def _run(code: str, namespace: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(code, "README.md or docs/*.md", "exec"), namespace)


def _reader_session() -> dict[str, Any]:
    """The placeholders of the API examples (see the module docstring)."""
    host = get_plugin_manager()
    bundle = host.load_dataset("digits", {"seed": 0, "test_fraction": 0.6})
    architecture = host.make_architecture("mlp", {"hidden": [256, 256]})
    split = make_split(bundle.train, SplitConfig(fraction=0.1, seed=0))
    forget, retain = split.forget(bundle.train), split.retain(bundle.train)
    test, val = split_off(bundle.test, 800, 0, "holdout")
    model = train_classifier(architecture, bundle.train, RECIPE, seed=0)
    shape = tuple(bundle.train.x.shape[1:])
    return {"__name__": "readme_example", "model": model,
            "x_forget": forget.x, "y_forget": forget.y, "x_retain": retain.x, "y_retain": retain.y,
            "forget": (forget.x, forget.y), "retain": (retain.x, retain.y), "x_val": val.x, "y_val": val.y,
            "x_test": test.x, "y_test": test.y,
            "retrained_model": train_classifier(architecture, retain, RECIPE, seed=0),
            "MyNet": lambda: architecture.build(bundle.train.num_classes, shape)}


def test_the_api_examples_run_without_warnings_and_forget(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # the examples write audit/, mine.safetensors, orig.safetensors
    namespace = _reader_session()
    original = {k: v.clone() for k, v in namespace["model"].state_dict().items()}
    _run(_block(MARKERS["unlearn"]), namespace)
    stats = namespace["stats"]
    assert stats["finetune_schedule"] == "calibrated" and stats["calibration"]["chosen"]["within_budget"]
    assert namespace["result"].stats["auto"]["chosen"]
    assert all(torch.equal(v, original[k]) for k, v in namespace["model"].state_dict().items())  # never modified
    _run(_block(MARKERS["audit"]), namespace)
    report = namespace["report"]
    assert report["avg_gap"] is not None and (tmp_path / "audit").is_dir()
    _run(_block(MARKERS["save_load"]), namespace)
    assert namespace["metadata"].architecture == "mlp"
    assert (tmp_path / "mine.safetensors").exists() and (tmp_path / "orig.safetensors").exists()
    out = capsys.readouterr().out
    assert "within the accuracy budget" in out  # the calibration says why it chose its union


def test_the_plugin_example_registers_a_method_that_runs(monkeypatch) -> None:
    monkeypatch.setenv("AMUN_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugin = types.ModuleType("my_package.amun_hooks")
    _run(_block(MARKERS["plugin"]), plugin.__dict__)
    host = get_plugin_manager(autoload=False)
    host.register(plugin, name="my_plugin")
    data, model = make_tiny_data(), TinyNet()
    forget, retain = data.subset(list(range(9))), data.subset(list(range(9, len(data))))
    result = amun_plugin.unlearn(model, forget, retain, method="my_method", plugins=host)
    assert result.stats["my_stat"] == 1.0
    with pytest.raises(Exception, match="retain|D_R"):  # declared: it needs D_R, refused before any work
        amun_plugin.unlearn(model, forget, None, method="my_method", plugins=host)
