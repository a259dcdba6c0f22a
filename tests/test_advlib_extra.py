"""Issue 29, item 10: ``amun_plugin[advlib]`` pulls visdom, whose sdist build imports pkg_resources
(gone from setuptools 81). No release of visdom ships a wheel or builds without it, so the extra
cannot install cleanly: one command pins setuptools for the build, for older pip (PIP_CONSTRAINT
reaches its build environment) and pip 26 (PIP_BUILD_CONSTRAINT), and the same command is in
pyproject.toml, docs/optional-extras.md and the backends' error. Measured (docs/optional-extras.md):
plain pip fails on 23.2.1 and 26.3; this command installs with pip 23.2.1, 24.0, 25.0, 25.3, 26.3."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from amun_plugin.attacks import advlib_backends
from amun_plugin.attacks.advlib_backends import ADVLIB_EXTRA, ADVLIB_INSTALL, AdvLibDDN
from amun_plugin.errors import BackendUnavailableError

ROOT = Path(__file__).resolve().parents[1]


def _advlib_extra() -> list[str]:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["optional-dependencies"]["advlib"])


def test_the_extra_names_adv_lib_only() -> None:
    assert _advlib_extra() == ["adv-lib>=0.2.8"]
    assert ADVLIB_EXTRA == "amun_plugin[advlib]"


def test_the_install_command_pins_setuptools_for_old_and_new_pip() -> None:
    first, second = (shlex.split(part) for part in ADVLIB_INSTALL.split(" && "))
    assert first[:2] == ["echo", "setuptools<81"] and first[-2:] == [">", "advlib-build.txt"]
    env = dict(word.split("=", 1) for word in second if "=" in word and not word.startswith("amun"))
    assert env == {"PIP_CONSTRAINT": "advlib-build.txt", "PIP_BUILD_CONSTRAINT": "advlib-build.txt"}
    assert second[-3:] == ["pip", "install", ADVLIB_EXTRA]


def test_pyproject_docs_and_error_give_the_same_command(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ADVLIB_INSTALL in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert ADVLIB_INSTALL in (ROOT / "docs" / "optional-extras.md").read_text(encoding="utf-8")
    monkeypatch.setattr(advlib_backends, "advlib_available", lambda: False)
    with pytest.raises(BackendUnavailableError) as caught:
        AdvLibDDN.ensure_available()
    assert ADVLIB_INSTALL in str(caught.value)
