"""The ART example (docs/art-workflow.md, linked from the README) runs as written (no shortened
recipe: the point needs a memorising model), without warnings, and shows its point: ART's black-box
membership attack calls clearly more of the forget set than of unseen data members before
unlearning, and at most half that gap after (measured: 0.71 / 0.49 -> 0.49 / 0.41 with one torch
thread, as here; 0.68 / 0.51 -> 0.56 / 0.49 with two). ~2-6 minutes on 2 loaded CPU cores."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

pytest.importorskip("art")

from amun_plugin.data.fashion_mnist import DEFAULT_ROOT  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "docs" / "art-workflow.md"
LINE = r"^{}:\s+members among forget (\d\.\d\d) / unseen (\d\.\d\d), test acc (\d\.\d\d\d)$"


def art_example() -> str:
    block = re.search(r"<!-- art-example -->\n```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert block is not None, "docs/art-workflow.md lost its ART example"
    return block.group(1)


def test_readme_art_example_detects_the_forget_set_before_and_not_after(capsys) -> None:
    if not (Path(DEFAULT_ROOT) / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST is not installed in {DEFAULT_ROOT} (apt-get install dataset-fashion-mnist)")
    code = art_example()
    assert "unlearn_classifier(" in code and "MembershipInferenceBlackBox" in code and "holdout=" in code
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(code, str(PAGE), "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    before, after = (re.search(LINE.format(tag), out, re.M) for tag in ("before", "after"))
    assert before is not None and after is not None, out
    forget, unseen, accuracy = map(float, before.groups())
    assert forget - unseen >= 0.10, out  # the memorising model gives its forget set away
    gap_before = forget - unseen
    forget, unseen, accuracy_after = map(float, after.groups())
    # after unlearning, D_F looks (nearly) like unseen data
    assert forget - unseen <= min(0.10, gap_before / 2), out
    assert accuracy_after >= accuracy - 0.05, out  # within the calibration's 5-point budget
