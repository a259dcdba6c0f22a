"""Issue 16, item 9: the built wheel carries the suites and presets, so an installed ``amun`` runs
``amun bench table1 --dry-run`` outside a source checkout (it once said "known suites: (none)").

The wheel is built offline from a copy of the package, installed with ``pip --no-index --no-deps``
into a fresh venv that sees this interpreter's packages (torch, ...) through a ``.pth`` line, and
run from an empty folder with no PYTHONPATH: only the installed wheel can answer. About 20 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz")


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_runs_a_shipped_suite(tmp_path: Path) -> None:
    if not FASHION.exists():
        pytest.skip("the dry run reads Fashion-MNIST (.ci/run installs it)")
    source = tmp_path / "src"
    shutil.copytree(ROOT / "amun_plugin", source / "amun_plugin", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                  "-w", str(tmp_path / "dist"), str(source)], tmp_path, env)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("amun_plugin-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env)
    (Path(purelib.stdout.strip()) / "host_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run([str(python), "-m", "pip", "install", "--no-index", "--no-deps", "-q", str(wheel)], tmp_path, env)
    assert installed.returncode == 0, installed.stderr

    work = tmp_path / "empty"
    work.mkdir()
    where = _run([str(python), "-c", "import amun_plugin; print(amun_plugin.__file__)"], work, env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    dry = _run([str(venv / "bin" / "amun"), "bench", "table1", "--dry-run"], work, env)
    assert dry.returncode == 0, dry.stderr
    assert "table1 (fmnist-cnn)" in dry.stdout and "total: " in dry.stdout
    assert list(work.iterdir()) == []  # a dry run writes nothing
