"""The forgetting-quality protocol: N unlearner runs and N retrained models -> F, final score, U-LiRA.

From one original model, the unlearner is run with N seeds and N models are retrained on D_R
with N seeds. Each model is reduced to a :class:`RunOutput`: the logit-scaled confidence
s = log p_y − log Σ_{j≠y} p_j = z_y − logsumexp_{j≠y} z_j of every forget example (computed from
the logits with logsumexp, exact where p_y rounds to 1), its retain accuracy (RA) and test
accuracy (TA). :func:`score_runs` turns the two groups into the NeurIPS 2023 forgetting score
(:mod:`amun_plugin.evaluate.forgetting_quality`) and the per-example likelihood-ratio test
(:mod:`amun_plugin.evaluate.ulira`), and returns the per-model confidences with them.
:func:`run_protocol` drives the runs; with an
:class:`~amun_plugin.artifacts.ArtifactCache` every run's output is a JSON artefact named by
the content hash of what it depends on, so an interrupted protocol resumes run by run and the
retrained side is shared by every method audited against the same D_R.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from torch import nn

from amun_plugin.artifacts import content_hash
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.forgetting_quality import final_score, forgetting_score, max_resolvable_epsilon
from amun_plugin.evaluate.signals import logit_scaled_confidence
from amun_plugin.evaluate.ulira import ulira_test
from amun_plugin.models.inference import accuracy, predict_logits

__all__ = ["RunOutput", "data_hash", "measure", "run_protocol", "score_runs", "timed"]

ModelRun = Callable[[int], tuple[nn.Module, float]]
"""seed -> (a trained or unlearned model, the seconds it took)."""


@dataclass(frozen=True)
class RunOutput:
    """One model of the protocol: confidence (n,) float64 on the forget set, RA and TA in percent,
    and the wall time (s) spent producing the model."""

    confidence: np.ndarray
    retain_accuracy: float
    test_accuracy: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"confidence": [float(v) for v in self.confidence], "retain_accuracy": self.retain_accuracy,
                "test_accuracy": self.test_accuracy, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RunOutput":
        return cls(np.asarray(values["confidence"], dtype=np.float64), float(values["retain_accuracy"]),
                   float(values["test_accuracy"]), float(values["seconds"]))


def data_hash(data: LabeledData) -> str:
    """SHA-256 (20 hex) of a dataset's inputs and labels: part of every cache key of the protocol."""
    digest = hashlib.sha256()
    digest.update(data.x.detach().cpu().contiguous().numpy().tobytes())
    digest.update(data.y.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def measure(model: nn.Module, data: AuditData, seconds: float, device: Any = "cpu") -> RunOutput:
    """The :class:`RunOutput` of ``model`` on ``data`` (eval mode, no gradients)."""
    logits = predict_logits(model, data.forget.x, device=device)
    confidence = logit_scaled_confidence(logits, data.forget.y.cpu()).numpy()
    return RunOutput(confidence, accuracy(model, data.retain, device=device),
                     accuracy(model, data.test, device=device), float(seconds))


def timed(make: Callable[[], nn.Module]) -> tuple[nn.Module, float]:
    """``(make(), seconds it took)``."""
    start = time.perf_counter()
    model = make()
    return model, time.perf_counter() - start


def run_protocol(data: AuditData, unlearn_run: ModelRun, retrain_run: ModelRun, *, unlearn_seeds: Sequence[int],
                 retrain_seeds: Sequence[int], cache: Any = None, unlearn_spec: Mapping[str, Any] | None = None,
                 retrain_spec: Mapping[str, Any] | None = None, device: Any = "cpu",
                 bootstrap: int = 200) -> dict[str, Any]:
    """Run (or read back) every model and score them (:func:`score_runs`).

    ``cache`` (an ArtifactCache) with ``unlearn_spec`` / ``retrain_spec`` (what identifies each side
    besides the seed: original model, method and options; recipe and D_R) caches every run's output
    under kind "forgetting_runs"; without a cache everything is recomputed.
    """
    unlearned = _outputs(data, unlearn_run, unlearn_seeds, cache, unlearn_spec, device)
    retrained = _outputs(data, retrain_run, retrain_seeds, cache, retrain_spec, device)
    return score_runs(unlearned, retrained, bootstrap=bootstrap)


def _outputs(data: AuditData, run: ModelRun, seeds: Sequence[int], cache: Any, spec: Mapping[str, Any] | None,
             device: Any) -> list[RunOutput]:
    if len(set(seeds)) != len(seeds) or len(seeds) < 3:
        raise InvalidInputError(f"the protocol needs >= 3 distinct seeds per side, got {list(seeds)}")

    def compute(seed: int) -> dict[str, Any]:
        model, seconds = run(seed)
        return measure(model, data, seconds, device).to_dict()

    if cache is None or spec is None:
        return [RunOutput.from_dict(compute(s)) for s in seeds]
    forget = data_hash(data.forget)
    return [RunOutput.from_dict(cache.json("forgetting_runs", content_hash({**spec, "seed": s, "forget": forget}),
                                           lambda s=s: compute(s))) for s in seeds]


def score_runs(unlearned: Sequence[RunOutput], retrained: Sequence[RunOutput], *, bootstrap: int = 200,
               seed: int = 0) -> dict[str, Any]:
    """F, the final score and the U-LiRA test from N_u unlearned and N_r retrained runs (>= 3 each).

    Returns a JSON-ready mapping: "F", "final_score", "RA_ratio", "TA_ratio", "runs" (N = N_u, the
    unlearned models, which set the buckets as in the challenge), "max_resolvable_epsilon"
    (ceil(ln(N − 1))), "epsilon" (n,), "ulira" ({"TPR@1%FPR", "TPR@0.1%FPR", "AUC", their "_ci",
    "trials"}), mean RA / TA / seconds of each side, and "confidence": {"unlearned": (N_u, n),
    "retrained": (N_r, n)} nested lists, the per-model scores F is computed from (model x forget
    example, in the order of the seeds), so anyone can recompute F with their own code.
    """
    u = np.stack([o.confidence for o in unlearned])
    r = np.stack([o.confidence for o in retrained])
    f, eps = forgetting_score(u, r)
    ra_u, ra_r = [o.retain_accuracy for o in unlearned], [o.retain_accuracy for o in retrained]
    ta_u, ta_r = [o.test_accuracy for o in unlearned], [o.test_accuracy for o in retrained]
    n = len(unlearned)
    return {
        "F": f, "final_score": final_score(f, ra_u, ra_r, ta_u, ta_r),
        "RA_ratio": float(np.mean(ra_u) / np.mean(ra_r)), "TA_ratio": float(np.mean(ta_u) / np.mean(ta_r)),
        "runs": n, "max_resolvable_epsilon": max_resolvable_epsilon(n), "epsilon": [float(e) for e in eps],
        "ulira": ulira_test(u, r, bootstrap=bootstrap, seed=seed),
        "unlearned": _side(unlearned), "retrained": _side(retrained),
        "confidence": {"unlearned": u.tolist(), "retrained": r.tolist()},
    }


def _side(outputs: Sequence[RunOutput]) -> dict[str, float]:
    return {"RA": float(np.mean([o.retain_accuracy for o in outputs])),
            "TA": float(np.mean([o.test_accuracy for o in outputs])),
            "seconds_mean": float(np.mean([o.seconds for o in outputs])),
            "seconds_total": float(np.sum([o.seconds for o in outputs])), "models": len(outputs)}
