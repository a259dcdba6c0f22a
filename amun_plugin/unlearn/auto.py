"""``method="auto"``: run several unlearners and return the one that forgets best, judged without a
retrained model.

A party with a deletion request cannot retrain to find out which method suits its model. ``auto``
runs a set of candidates (registered unlearners with options; third-party ones included) on the
same request and judges each result by the **estimated Avg Gap** on held-out data
(:mod:`amun_plugin.unlearn.estimate`), within the accuracy budget. To keep the judgement unbiased,
the holdout is split: every candidate is compared on the selection part, on which none selected a
trained state. A calibrating candidate calibrates on the other part, except one whose calibration
makes the same split itself (AMUN choosing between its unions, see
:meth:`~amun_plugin.unlearn.base.Unlearner.holdout_when_judged`): it gets all of the holdout, as it
would alone, choosing its union (lowest estimated gap) on the selection part before the judge compares it.

**The first candidate stands unless another is better with confidence.** The candidates are listed
in order of preference (the defaults: the method that forgot best at the paper-regime preset first).
The first one within the accuracy budget is the choice; a later one replaces the choice only when
its estimated gap is lower in at least ``confidence`` of paired bootstrap resamples of D_F, H and D_R'
(:func:`~amun_plugin.unlearn.sampled_estimate.chance_lower`). On 100 held-out images the estimate's
noise is as large as the differences between similar methods (l1-Sparse and FT), and a calibrated
candidate's estimate on the selection part is the best of its own unions there. Measured at the
paper-regime preset (``benchmarks/results/auto-fmnist-paper``, RMIA Avg Gap, paired 95% t): revision 1
(lowest point estimate, FT among the candidates) chose FT on 4 of 10 forget sets with D_R at forget
10% and ended +0.34 ± 0.54 behind l1-Sparse; revision 2 kept l1-Sparse on all 10 (+0.00) at
0.42 ± 0.04 of a retraining, and matches the best fixed method without D_R (−0.02 ± 0.54 against
AMUN, n = 10). The order carries the result there: with AMUN listed first it kept AMUN on 8 of 10.

Cheap by design: the candidates share one adversarial set D_A (computed once, for every candidate
that declares ``reuses_adversarial``) and one measurement of the original model, and they *race*:
every training loop of a running candidate reports its model (``training.observing_steps``); once
it has run ``race_grace`` times as long as the current choice needed, its estimate is checked every
``check_every`` optimizer steps, and it is stopped when its chance of being better than the choice
falls to ``1 - confidence`` or below. A candidate outside the accuracy budget is never returned;
when none is within it, ``auto`` refuses to return a model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from torch import nn

from amun_plugin.config import config_to_dict
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import AmunError, InvalidInputError, UnlearningDivergedError
from amun_plugin.training.loop import observing_steps
from amun_plugin.unlearn.amun import AmunConfig, build_adversarial_set
from amun_plugin.unlearn.base import Capabilities, ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.calibration import split_holdout
from amun_plugin.unlearn.estimate import MembershipProbe, check_holdout, estimated_gap, retain_probe, within_budget
from amun_plugin.unlearn.sampled_estimate import SampleMeasure, chance_lower, measure_samples

__all__ = ["DEFAULT_CANDIDATES", "Auto", "AutoConfig", "NoCandidateWithinBudgetError"]

DEFAULT_CANDIDATES: Mapping[str, tuple[Mapping[str, Any], ...]] = {
    "with_retain": (
        {"method": "l1_sparse", "options": {"epochs": 10, "schedule": "step", "lr": 0.04, "step_size": 5}},
        {"method": "amun"},
    ),
    "without_retain": (
        {"method": "amun_salun"},
        {"method": "amun"},
        {"method": "salun", "options": {"epochs": 10, "lr": 0.0001, "saliency_ratio": 0.3}},
        {"method": "bs", "options": {"epochs": 10, "lr": 0.001, "schedule": "step", "step_size": 1}},
    ),
}
"""The candidates per setting, in order of preference: calibrated AMUN and the baselines at the
options the suites' retrain-free rule chose for them at the paper-regime preset, the method that
forgot best there first (``benchmarks/results/table1-fmnist-paper``, ``table2-fmnist-paper``,
``auto-fmnist-paper``: RMIA Avg Gap at forget 10%, n = 10, 95% t: with D_R l1-Sparse 2.28 ± 0.35,
FT 2.77 ± 0.65, AMUN 2.92 ± 0.41; without D_R AMUN 5.12 ± 0.63, AMUN+SalUn 5.26 ± 1.02, SalUn
7.20 ± 0.38, BS 7.38 ± 0.29; at 50%, n = 5, AMUN+SalUn 6.07 ± 1.08 ahead of AMUN 6.94 ± 0.95). FT is
not a default: it is l1-Sparse without the sparsity penalty, costs as much, and its estimate cannot
be told from l1-Sparse's on 100 held-out images; add it with ``candidates=``."""


class NoCandidateWithinBudgetError(AmunError):
    """Every candidate of ``auto`` lost more held-out (or retain) accuracy than the budget allows."""


@dataclass(frozen=True)
class AutoConfig:
    """The candidates (in order of preference) and how they are judged and raced.

    Attributes:
        candidates: the unlearners tried, in order of preference, each ``{"method": name, "options": {...},
            "label": text}`` (options and label optional). (Default: ``DEFAULT_CANDIDATES`` of the
            request's setting)
        selection_share: the share of the holdout no candidate calibrates on, on which all are
            compared. (Default: 0.5)
        accuracy_budget: points of held-out (and retain) accuracy below the original model's that
            a returned model may lose. (Default: 5.0)
        confidence: the bootstrap chance of a lower estimated gap a later candidate needs to replace
            the current choice; a running candidate whose chance falls to ``1 - confidence`` is
            stopped. 0.5 chooses by the point estimate (up to resampling). (Default: 0.9)
        resamples: paired bootstrap resamples of each comparison. (Default: 200)
        check_every: optimizer steps between two race checks of a running candidate. (Default: 20)
        race_grace: a running candidate is checked once it has run this many times as long as the
            current choice took. (Default: 1.0)
    """

    candidates: tuple[Mapping[str, Any], ...] | None = None
    selection_share: float = 0.5
    accuracy_budget: float = 5.0
    confidence: float = 0.9
    resamples: int = 200
    check_every: int = 20
    race_grace: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.selection_share < 1:
            raise InvalidInputError(f"auto: selection_share must be in (0, 1), got {self.selection_share!r}")
        if not 0.5 <= self.confidence < 1:
            raise InvalidInputError(f"auto: confidence must be in [0.5, 1), got {self.confidence!r}")
        if self.check_every < 1 or self.resamples < 1 or self.race_grace <= 0 or self.accuracy_budget < 0:
            raise InvalidInputError("auto: check_every >= 1, resamples >= 1, race_grace > 0 and "
                                    "accuracy_budget >= 0 are required")
        for candidate in self.candidates or ():
            if not isinstance(candidate, Mapping) or not isinstance(candidate.get("method"), str) \
                    or set(candidate) - {"method", "options", "label"}:
                raise InvalidInputError(f"auto: each candidate is {{method: NAME, options: {{...}}, label: TEXT}}, "
                                        f"got {candidate!r}")


@dataclass(frozen=True)
class _Candidate:
    label: str
    method: str
    options: Mapping[str, Any] = field(default_factory=dict)


class _Stopped(Exception):
    """Raised by the race check inside a candidate's training loop."""


class Auto(Unlearner):
    name = "auto"
    config_class = AutoConfig
    description = ("auto: run several unlearners in order of preference; keep the first unless another forgets "
                   "clearly better by the estimated Avg Gap on held-out data")
    capabilities = Capabilities(calibrates=True, requires_holdout=True, continuous=False)
    revision = 2
    """1: a candidate whose calibration sets the selection part aside by itself (AMUN choosing its
    union) calibrates on all of the holdout, as it would alone (until then: on the tuning part).
    2: the first candidate stands unless another is better with ``confidence`` (until then: the
    lowest point estimate won); the race stops by the same chance (until then: a 2-point margin);
    the defaults in order of preference (with D_R: l1-Sparse, AMUN; FT dropped)."""

    def candidates(self, request: ForgetRequest) -> list[_Candidate]:
        """The candidates of ``request``'s setting (the configured ones, else the defaults)."""
        chosen = self.config.candidates or DEFAULT_CANDIDATES[request.setting]
        out = [_Candidate(c.get("label") or _label(c), c["method"], dict(c.get("options") or {})) for c in chosen]
        if len({c.label for c in out}) != len(out):
            raise InvalidInputError(f"auto: candidate labels must differ, got {[c.label for c in out]}")
        return out

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: AutoConfig = self.config
        assert request.holdout is not None
        holdout = check_holdout(request.holdout, request.forget, request.retain)
        tuning, selection = split_holdout(holdout, config.selection_share, ctx.seed)
        judge = _Judge(model, request.forget, selection, retain_probe(request.retain, len(selection), ctx.seed),
                       request.membership, config, ctx)
        unlearners = {c.label: self._prepared(c, request, ctx) for c in self.candidates(request)}
        start = time.perf_counter()
        adversarial = self._shared_adversarial(model, request, unlearners, ctx)
        results: dict[str, Any] = {}
        rows = []
        for label, unlearner in unlearners.items():
            calibrate_on = unlearner.holdout_when_judged(holdout, tuning, config.selection_share) \
                if unlearner.calibrates_with(holdout=True) else None
            sub = ForgetRequest(request.forget, request.retain if unlearner.capabilities.uses_retain else None,
                                request.validation, adversarial if unlearner.capabilities.reuses_adversarial else None,
                                calibrate_on, request.reference, request.membership)
            row, result = judge.run(label, unlearner, model, sub)
            row["calibrated_on"] = len(calibrate_on) if calibrate_on is not None else 0
            rows.append(row)
            if result is not None:
                results[label] = result
        return self._choose(model, rows, results, judge, {
            "seconds_shared_adversarial": adversarial.seconds if adversarial is not None else 0.0,
            "seconds_candidates": time.perf_counter() - start, "tuning_size": len(tuning),
            "selection_size": len(selection),
            "membership": request.membership.name if request.membership is not None else "confidence"})

    def _prepared(self, candidate: _Candidate, request: ForgetRequest, ctx: UnlearnContext) -> Unlearner:
        """The candidate's unlearner, its options and the request checked before any work."""
        if candidate.method == self.name:
            raise InvalidInputError("auto cannot be its own candidate")
        unlearner = ctx.plugins.unlearners.get(candidate.method)(candidate.options)
        calibrated = unlearner.calibrates_with(holdout=True)
        unlearner.check_schedule(holdout=calibrated)
        unlearner.validate(ctx.plugins)
        if unlearner.capabilities.requires_retain and request.retain is None:
            raise InvalidInputError(f"auto: candidate {candidate.label!r} needs D_R, and this request has none")
        return unlearner

    @staticmethod
    def _shared_adversarial(model: nn.Module, request: ForgetRequest, unlearners: Mapping[str, Unlearner],
                            ctx: UnlearnContext) -> Any:
        """One D_A for every candidate that reuses one (AMUN's default search), or the request's."""
        if request.adversarial is not None or not any(u.capabilities.reuses_adversarial
                                                      for u in unlearners.values()):
            return request.adversarial
        first = next(u for u in unlearners.values() if u.capabilities.reuses_adversarial)
        if isinstance(first.config, AmunConfig):
            return build_adversarial_set(model, request.forget, first.config, ctx)
        return first.adversarial_set(model, request.forget, ctx)

    def _choose(self, model: nn.Module, rows: list[dict[str, Any]], results: Mapping[str, Any], judge: _Judge,
                shared: Mapping[str, Any]) -> dict[str, Any]:
        """Load the choice into ``model``; the statistics of every candidate and why it was chosen."""
        if judge.choice is None:
            summary = "; ".join(f"{r['label']}: {r['outcome']}" for r in rows)
            raise NoCandidateWithinBudgetError(
                f"auto: no candidate kept held-out / retain accuracy within {self.config.accuracy_budget} points of "
                f"the original model's ({summary}); no model is returned")
        best = next(r for r in rows if r["label"] == judge.choice.label)
        model.load_state_dict(results[best["label"]].model.state_dict())
        others = ", ".join(f"{r['label']} {r['estimated_gap']:.2f}" + (f" (chance lower {r['chance_lower']:.2f})"
                                                                       if r.get("chance_lower") is not None else "")
                           for r in rows if r is not best and r.get("estimated_gap") is not None)
        first = best is next((r for r in rows if r["finished"] and r["within_budget"]), None)
        rule = ("the first candidate within the accuracy budget, no later one better with chance >= "
                if first else "better than the earlier choice with chance >= ")
        why = (f"{rule}{self.config.confidence:g} (paired bootstrap of the estimated gap on {shared['selection_size']} "
               f"held-out samples no candidate selected a trained state on): {best['label']} "
               f"{best['estimated_gap']:.2f}" + (f" (others: {others})" if others else ""))
        gap0, terms0 = estimated_gap(judge.reference, judge.reference)
        return {"auto": {"chosen": best["label"], "why": why, "candidates": rows,
                         "original": {"estimated_gap": gap0, "terms": terms0,
                                      "measure": judge.reference.as_dict()}, **shared},
                "chosen_method": best["method"], "estimated_gap": best["estimated_gap"],
                "candidate_outcomes": "; ".join(_outcome(r) for r in rows),
                "candidate_stats": _scalars(results[best["label"]].stats)}


@dataclass
class _Choice:
    label: str
    measure: SampleMeasure
    seconds: float


class _Judge:
    """Runs candidates one after another, racing each against the current choice while it trains,
    and keeps the choice: the first candidate within budget, replaced by a later one only when that
    one's estimated gap is lower with bootstrap chance >= ``confidence``."""

    def __init__(self, original: nn.Module, forget: LabeledData, selection: LabeledData, retain: LabeledData | None,
                 membership: MembershipProbe | None, config: AutoConfig, ctx: UnlearnContext) -> None:
        self.forget, self.selection, self.retain, self.membership = forget, selection, retain, membership
        self.config, self.ctx = config, ctx
        self.original = self.measure(original, with_scores=False)
        self.reference = self.original.proxy()
        self.choice: _Choice | None = None

    def measure(self, model: nn.Module, with_scores: bool = True) -> SampleMeasure:
        return measure_samples(model, self.forget, self.selection, self.retain, self.membership,
                               device=self.ctx.device, with_scores=with_scores)

    def chance_lower(self, measure: SampleMeasure) -> float:
        assert self.choice is not None
        return chance_lower(measure, self.choice.measure, self.original, self.config.resamples, self.ctx.seed)

    def run(self, label: str, unlearner: Unlearner, model: nn.Module,
            request: ForgetRequest) -> tuple[dict[str, Any], Any]:
        """(the candidate's row, its result or None when it was stopped or diverged)."""
        row: dict[str, Any] = {"label": label, "method": unlearner.name, "options": _options(unlearner),
                               "finished": False, "checks": 0, "chance_lower": None}
        state = {"steps": 0, "seconds_checks": 0.0}
        start = time.perf_counter()
        rival = self.choice

        def check(current: nn.Module) -> None:
            state["steps"] += 1
            if rival is None or state["steps"] % self.config.check_every:
                return
            spent = time.perf_counter() - start - state["seconds_checks"]
            if spent < self.config.race_grace * rival.seconds:
                return
            began = time.perf_counter()
            chance = self.chance_lower(self.measure(current))
            state["seconds_checks"] += time.perf_counter() - began
            row["checks"] += 1
            if chance <= 1.0 - self.config.confidence:
                raise _Stopped(f"stopped after {spent:.1f} s: chance {chance:.2f} of an estimated gap below "
                               f"{rival.label}'s, clearly behind")

        ctx = self.ctx
        try:
            with observing_steps(check):
                result = unlearner.run(model, request, plugins=ctx.plugins, device=ctx.device, seed=ctx.seed,
                                       progress=ctx.progress)
        except _Stopped as stop:
            row.update(outcome=str(stop), stopped_early=True, seconds=time.perf_counter() - start,
                       estimated_gap=None, within_budget=False)
            return row, None
        except UnlearningDivergedError as exc:
            row.update(outcome=f"diverged: {exc}", stopped_early=False, seconds=time.perf_counter() - start,
                       estimated_gap=None, within_budget=False)
            return row, None
        seconds = time.perf_counter() - start
        measure = self.measure(result.model)
        now = measure.proxy()
        gap, terms = estimated_gap(now, self.reference)
        ok = within_budget(now, self.reference, self.config.accuracy_budget)
        row.update(finished=True, stopped_early=False, seconds=seconds, estimated_gap=gap, terms=terms,
                   within_budget=ok, outcome=f"estimated gap {gap:.2f}" + ("" if ok else " (over the accuracy budget)"))
        if ok:
            chance = None if self.choice is None else self.chance_lower(measure)
            row["chance_lower"] = chance
            if chance is None or chance >= self.config.confidence:
                self.choice = _Choice(label, measure, seconds - state["seconds_checks"])
        return row, result


def _outcome(row: Mapping[str, Any]) -> str:
    """One line per candidate for flat records (a bench cell keeps scalar statistics only)."""
    chance = f", chance lower {row['chance_lower']:.2f}" if row.get("chance_lower") is not None else ""
    return f"{row['label']}: {row['outcome']}{chance}, {row['seconds']:.1f} s"


def _label(candidate: Mapping[str, Any]) -> str:
    options = candidate.get("options") or {}
    return candidate["method"] + (" " + ", ".join(f"{k}={v}" for k, v in sorted(options.items())) if options else "")


def _options(unlearner: Unlearner) -> dict[str, Any]:
    """The options the candidate was given, as plain JSON data."""
    given = config_to_dict(unlearner.config)
    return {name: given[name] for name in sorted(unlearner.given_options) if name in given}


def _scalars(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-friendly scalar statistics of the chosen candidate."""
    return {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool)) or v is None}

