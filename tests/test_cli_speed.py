"""``amun --help`` / ``--version`` start fast: they import no torch, ART or scikit-learn (issue 29,
item 6); the package face resolves its public names on first use. Each check runs in a fresh
interpreter, where ``sys.modules`` tells what was imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "art", "sklearn")

PROBE = """
import json, sys
from amun_plugin.cli import main
code = main({args!r})
print(json.dumps({{"code": code, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def _probe(args: list[str]) -> dict:
    """main(args) in a fresh interpreter: its exit code and which heavy modules it imported."""
    script = PROBE.format(args=args, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True,
                          env={"AMUN_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": ""})
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["train", "--help"], ["bench", "--help"]])
def test_help_and_version_import_no_torch(args: list[str]) -> None:
    assert _probe(args) == {"code": 0, "loaded": []}


def test_a_command_still_loads_what_it_needs() -> None:
    assert "torch" in _probe(["plugins", "--json"])["loaded"]


def test_the_package_face_is_lazy_and_unlearn_stays_the_function() -> None:
    script = ("import sys, amun_plugin; assert 'torch' not in sys.modules; import amun_plugin.unlearn.base; "
              "from amun_plugin.unlearn import AmunConfig; from amun_plugin.api import unlearn; "
              "assert amun_plugin.unlearn is unlearn; assert amun_plugin.AmunError.__module__ == 'amun_plugin.errors'; "
              "assert set(amun_plugin.__all__) <= set(dir(amun_plugin))")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
