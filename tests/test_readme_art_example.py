"""The README's ART example runs as written (with fewer epochs, to stay quick)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("art")

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_art_example_runs(capsys):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- art-example -->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "the README lost its ART example"
    code = block.group(1)
    assert "unlearn_classifier(" in code and "MembershipInferenceBlackBox" in code and ".fit(" in code
    quick = code.replace("nb_epochs=40", "nb_epochs=3").replace("epochs=5)", "epochs=1)")
    assert quick != code
    exec(compile(quick, str(README), "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert re.search(r"^before: membership forget \d\.\d\d / unseen \d\.\d\d test acc", out, re.M)
    assert re.search(r"^after:  membership forget \d\.\d\d / unseen \d\.\d\d test acc", out, re.M)
