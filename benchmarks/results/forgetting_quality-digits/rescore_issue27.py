"""Issue 27: the F of every row of a run folder by the old estimator and by the corrected one, on the same
per-model confidences (``results.jsonl``, ``forgetting.confidence``), beside the F this folder held at REV.

The old estimator and the old results are read from git at REV. Run from the repository root:

    .venv/bin/python benchmarks/results/forgetting_quality-digits/rescore_issue27.py FOLDER REV
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from amun_plugin.evaluate import forgetting_quality as corrected

CONTROLS = ("Original", "Retrain (other seed)")


def _git_show(rev: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout


def _old_estimator(rev: str) -> Any:
    path = Path(tempfile.mkdtemp()) / "forgetting_quality_old.py"
    path.write_text(_git_show(rev, "amun_plugin/evaluate/forgetting_quality.py"))
    spec = importlib.util.spec_from_file_location("forgetting_quality_old", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _key(record: dict[str, Any]) -> tuple[str, str]:
    return record["method"], "—" if record["method"] in CONTROLS else str(record.get("setting"))


def rescore(folder: Path, rev: str) -> dict[str, Any]:
    old = _old_estimator(rev)
    before = {}
    for line in _git_show(rev, f"{folder.as_posix()}/results.jsonl").splitlines():
        record = json.loads(line)
        before[_key(record)] = record["metrics"]["F"]
    rows = []
    for line in (folder / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        confidence = record["forgetting"]["confidence"]
        u, r = np.array(confidence["unlearned"]), np.array(confidence["retrained"])
        f_old, eps_old = old.forgetting_score(u, r)
        f_new, eps_new = corrected.forgetting_score(u, r)
        moved = np.abs(eps_new - eps_old)
        rows.append({"method": record["method"], "setting": _key(record)[1], "F_at_rev": before.get(_key(record)),
                     "F_old_estimator": f_old, "F_corrected": f_new, "F_change": f_new - f_old,
                     "examples_whose_epsilon_moved": int((moved > 1e-12).sum()),
                     "max_epsilon_move": float(moved.max())})
    return {"what": "issue 27: F of each row by the estimator at REV and by the corrected one on this folder's "
                    "per-model confidences; F_at_rev: the F this folder held at REV (per-model outputs of that run, "
                    "which differ where the unlearner's code changed since)",
            "rev": rev, "script": "benchmarks/results/forgetting_quality-digits/rescore_issue27.py", "rows": rows}


def main() -> None:
    folder, rev = Path(sys.argv[1]), sys.argv[2]
    payload = rescore(folder, rev)
    (folder / "rescoring_issue27.json").write_text(json.dumps(payload, indent=1) + "\n")
    for row in payload["rows"]:
        print(f"{row['method']:22s} {row['setting']:15s} at rev {row['F_at_rev']}  old {row['F_old_estimator']:.4f}  "
              f"corrected {row['F_corrected']:.4f}  ({row['examples_whose_epsilon_moved']} ε moved, "
              f"max {row['max_epsilon_move']:.3f})")


if __name__ == "__main__":
    main()
