"""Algorithm 1 of AMUN: the nearest adversarial example of every sample, over any attack backend.

'Adversarial Machine UNlearning' (AMUN), Algorithm 1: for every sample (x, y) of the forget set,
find an adversarial example x_adv close to x and store (x_adv, model's prediction on x_adv).

Procedure (``nearest_adversarial``), in the backend's norm (L2 or L_inf, pixel units in [0, 1]):
    1. one prediction pass: a sample the model already misclassifies keeps x unchanged
       (distance 0, eps reported 0, label = the wrong prediction, no gradient spent);
    2. every other sample starts at radius ``eps_init`` (fixed, or chosen automatically on a probe,
       see ``SearchConfig``); each *round* attacks only the still-unfooled samples, in batches of
       ``batch_size``, at their current radius, then checks the prediction on the returned points;
       samples still classified correctly get eps <- 2 * eps and — when the backend
       ``supports_init`` and ``continue_from_iterate`` — continue from their current iterate;
    3. after ``max_doublings`` doublings the remaining samples are reported as failures (a warning
       names how many and the first indices; eps = +inf) instead of looping forever;
    4. refinement: ``refine_steps`` bisection iterations on t in [0, 1] along x + t (x_adv - x),
       keeping the smallest t tried whose prediction is still wrong (forward passes only). The
       label stored is the prediction at the final point, never the true label.

Modes (:attr:`SearchConfig.mode_name`): "Algorithm 1" (``refine_steps=0``: the paper's; exactly so
with ``PAPER_SETTINGS``, tested against a port) and "Algorithm 1 + bisection" (the default 10
steps of step 4, not in the paper: points onto the boundary, closer to x, lower p(y_adv | x_adv)).

Cost is counted per sample: ``grad_evals`` (forward+backward passes inside the backend) and
``forward_evals`` (prediction checks and bisection). The model's train/eval flags are restored and
its parameters are never changed. The search is deterministic for deterministic backends.

Example::
    >>> adv = nearest_adversarial(model, forget, NativePGDL2({"loss": "margin"}))
    >>> adv.summary()["median_l2"]; d_a = adv.as_labeled_data()
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from amun_plugin.attacks.adversarial_set import AdversarialSet
from amun_plugin.attacks.base import AttackBackend
from amun_plugin.config import make_config
from amun_plugin.data.base import LabeledData
from amun_plugin.device import model_device, preserved_mode, resolve_device
from amun_plugin.errors import InvalidInputError
from amun_plugin.progress import bars_allowed

__all__ = ["ALGORITHM_1", "ALGORITHM_1_BISECTION", "AdversarialSet", "SearchConfig", "nearest_adversarial",
           "perturbation_norm"]

# First rung of the automatic eps_init ladder (rungs are _PROBE_START[norm] * 2**k).
_PROBE_START = {"l2": 2.0**-8, "linf": 2.0**-10}


@dataclass(frozen=True)
class SearchConfig:
    """Options of :func:`nearest_adversarial`.

    Attributes:
        eps_init: first radius, in the backend's norm (pixel units). None = automatic (paper
            App. E.1): run the search on a probe of ``probe_size`` correctly classified samples
            (evenly spaced through the data) from a small radius, doubling as usual; eps_init is the
            smallest ladder rung at which a ``probe_quantile`` fraction of the probe was fooled.
            The probe samples keep the results of that finer search. (Default: 0.04)
        probe_size, probe_quantile: the probe for the automatic mode. (Default: 100, 0.95)
        max_doublings: doublings of eps before a sample is reported as a failure. (Default: 20)
        refine_steps: bisection iterations after the search; 0 = off, the paper's "Algorithm 1";
            > 0 = "Algorithm 1 + bisection" (not in the paper). (Default: 10)
        batch_size: samples per backend call and per prediction pass. (Default: 256)
        continue_from_iterate: continue from the current iterate after a doubling (backends with
            ``supports_init`` only); False restarts from x. (Default: True)
    """

    eps_init: float | None = 0.04
    probe_size: int = 100
    probe_quantile: float = 0.95
    max_doublings: int = 20
    refine_steps: int = 10
    batch_size: int = 256
    continue_from_iterate: bool = True

    def __post_init__(self) -> None:
        if self.eps_init is not None and not (math.isfinite(self.eps_init) and self.eps_init > 0):
            raise InvalidInputError(f"eps_init must be a finite number > 0 or None (automatic), got {self.eps_init!r}")
        for key, low in (("probe_size", 1), ("max_doublings", 0), ("refine_steps", 0), ("batch_size", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInputError(f"{key} must be an integer >= {low}, got {value!r}")
        if not (0.0 < self.probe_quantile <= 1.0):
            raise InvalidInputError(f"probe_quantile must lie in (0, 1], got {self.probe_quantile!r}")

    @property
    def mode_name(self) -> str:  # "Algorithm 1" (the paper's, no bisection) or "Algorithm 1 + bisection"
        return "Algorithm 1" if self.refine_steps == 0 else "Algorithm 1 + bisection"


ALGORITHM_1: Mapping[str, Any] = {"refine_steps": 0}  # the paper's, strictly: no bisection
ALGORITHM_1_BISECTION: Mapping[str, Any] = {"refine_steps": 10}  # + 10 bisection steps (not in the paper)


def perturbation_norm(x_adv: Tensor, x: Tensor, norm: str) -> Tensor:
    """Per-sample ||x_adv - x|| in ``norm`` ("l2" or "linf"); (N, ...) x 2 -> (N,)."""
    delta = (x_adv - x).flatten(1)
    if norm == "l2":
        return delta.norm(dim=1)
    if norm == "linf":
        return delta.abs().amax(dim=1)
    raise InvalidInputError(f"unknown norm {norm!r}; expected 'l2' or 'linf'")


class _State:
    """Per-sample working tensors of one search, on the model's device."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        n, dev = x.shape[0], x.device
        self.x, self.y = x, y
        self.x_adv = x.clone()
        self.y_adv = y.clone()
        self.eps = torch.zeros(n, dtype=torch.float32, device=dev)
        self.found = torch.zeros(n, dtype=torch.bool, device=dev)
        self.grad_evals = torch.zeros(n, dtype=torch.long, device=dev)
        self.forward_evals = torch.zeros(n, dtype=torch.long, device=dev)
        self.doublings = torch.zeros(n, dtype=torch.long, device=dev)


def nearest_adversarial(
    model: nn.Module,
    data: LabeledData,
    backend: AttackBackend,
    config: SearchConfig | Mapping[str, Any] | None = None,
    *,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> AdversarialSet:
    """Algorithm 1 (see the module docstring) on every sample of ``data`` with ``backend``.

    ``model`` maps (N, *data.input_shape) in [0, 1] to logits (N, data.num_classes) and must already
    be on ``device``. ``config`` defaults to ``SearchConfig()``. ``progress`` shows a tqdm bar over
    rounds. Returns an :class:`AdversarialSet` on the CPU, in the order of ``data``.
    """
    cfg = make_config(SearchConfig, config)
    target = _check_arguments(model, data, backend, device)
    backend.ensure_available()
    start = time.perf_counter()
    st = _State(data.x.to(target), data.y.to(target))
    with preserved_mode(model, training=False):
        todo = _mark_misclassified(model, st, data.num_classes, cfg.batch_size)
        eps_init = cfg.eps_init if cfg.eps_init is not None else 0.0
        if cfg.eps_init is None and todo.numel():
            eps_init, todo = _automatic_eps_init(model, backend, st, todo, cfg, progress)
        if todo.numel():
            _rounds(model, backend, st, todo, eps_init, cfg, f"nearest adversarial ({backend.name})", progress)
        attacked = st.found & (st.eps > 0)
        _refine(model, st, attacked.nonzero(as_tuple=True)[0], cfg.refine_steps, cfg.batch_size)
    _warn_failures(st, cfg)
    return _result(st, backend, time.perf_counter() - start, eps_init, data.num_classes)


def _check_arguments(model: nn.Module, data: LabeledData, backend: AttackBackend, device: Any) -> torch.device:
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(data, LabeledData):
        raise InvalidInputError(f"data must be a LabeledData, got {type(data).__name__} (see as_labeled_data)")
    if not isinstance(backend, AttackBackend):
        raise InvalidInputError(f"backend must be an AttackBackend instance, got {type(backend).__name__}")
    target, actual = resolve_device(device), model_device(model)
    if target.type != actual.type or (target.index or 0) != (actual.index or 0):
        raise InvalidInputError(f"the model is on {actual} but device={str(target)!r}: move it with model.to(...)")
    return target


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch_size: int, num_classes: int | None = None) -> Tensor:
    """Predicted labels (N,) of ``x`` (N, ...) in batches (the caller has set eval mode)."""
    preds = []
    for chunk in x.split(batch_size):
        logits = model(chunk)
        if num_classes is not None and (logits.ndim != 2 or logits.shape[1] != num_classes):
            raise InvalidInputError(
                f"the model returned outputs of shape {tuple(logits.shape)}; expected (N, {num_classes}) logits"
            )
        preds.append(logits.argmax(dim=1))
    return torch.cat(preds)


def _mark_misclassified(model: nn.Module, st: _State, num_classes: int, batch_size: int) -> Tensor:
    """One prediction pass; samples already misclassified are done (x kept, eps 0). Returns the
    indices of the others."""
    pred = _predict(model, st.x, batch_size, num_classes)
    st.forward_evals += 1
    wrong = pred != st.y
    st.y_adv[wrong] = pred[wrong]
    st.found[wrong] = True
    return (~wrong).nonzero(as_tuple=True)[0]


def _rounds(
    model: nn.Module, backend: AttackBackend, st: _State, idx: Tensor, eps_start: float,
    cfg: SearchConfig, desc: str, progress: bool,
) -> None:
    """Attack ``idx`` from radius ``eps_start``, doubling for the unfooled, at most
    ``cfg.max_doublings`` times."""
    st.eps[idx] = eps_start
    active = idx
    with tqdm(total=cfg.max_doublings + 1, desc=desc, disable=not bars_allowed(progress), leave=False) as bar:
        for round_number in range(cfg.max_doublings + 1):
            if active.numel() == 0:
                break
            if round_number > 0:
                st.eps[active] *= 2.0
                st.doublings[active] += 1
            fooled = _attack_round(model, backend, st, active, cfg)
            active = active[~fooled]
            bar.set_postfix(unfooled=int(active.numel()), eps=f"{float(st.eps[idx].max()):.3g}")
            bar.update(1)


def _attack_round(model: nn.Module, backend: AttackBackend, st: _State, active: Tensor, cfg: SearchConfig) -> Tensor:
    """One backend call per batch of ``active`` at its current radius; returns which were fooled."""
    use_init = backend.supports_init and cfg.continue_from_iterate
    fooled_parts = []
    for chunk in active.split(cfg.batch_size):
        init = st.x_adv[chunk] if use_init else None
        out = backend.perturb(model, st.x[chunk], st.y[chunk], st.eps[chunk], x_init=init)
        x_new = out.x_adv.to(st.x.device, st.x.dtype)
        st.grad_evals[chunk] += out.grad_evals.to(st.x.device)
        pred = _predict(model, x_new, cfg.batch_size)
        st.forward_evals[chunk] += 1
        fooled = pred != st.y[chunk]
        st.x_adv[chunk] = x_new
        st.y_adv[chunk] = pred
        st.found[chunk[fooled]] = True
        fooled_parts.append(fooled)
    return torch.cat(fooled_parts)


def _automatic_eps_init(
    model: nn.Module, backend: AttackBackend, st: _State, todo: Tensor, cfg: SearchConfig, progress: bool
) -> tuple[float, Tensor]:
    """Search a probe of ``todo`` from the ladder's first rung; eps_init = the rung at which a
    ``probe_quantile`` fraction was fooled. Returns (eps_init, the samples left to search)."""
    count = min(cfg.probe_size, int(todo.numel()))
    probe = todo[torch.linspace(0, todo.numel() - 1, count).round().long().to(todo.device)]
    _rounds(model, backend, st, probe, _PROBE_START[backend.norm], cfg, "probe for eps_init", progress)
    radii = torch.where(st.found[probe], st.eps[probe], torch.full_like(st.eps[probe], math.inf))
    ordered = radii.sort().values
    eps_init = float(ordered[max(math.ceil(cfg.probe_quantile * count) - 1, 0)])
    if not math.isfinite(eps_init):
        finite = ordered[torch.isfinite(ordered)]
        eps_init = float(finite.max()) if finite.numel() else _PROBE_START[backend.norm] * 2.0**cfg.max_doublings
        warnings.warn(
            f"automatic eps_init: fewer than {cfg.probe_quantile:.0%} of the {count} probe samples were fooled "
            f"within {cfg.max_doublings} doublings; using eps_init = {eps_init:.4g}",
            RuntimeWarning,
            stacklevel=3,
        )
    remaining = torch.ones(st.x.shape[0], dtype=torch.bool, device=todo.device)
    remaining[probe] = False
    return eps_init, todo[remaining[todo]]


@torch.no_grad()
def _refine(model: nn.Module, st: _State, idx: Tensor, steps: int, batch_size: int) -> None:
    """Bisection on t in [0, 1] along x + t (x_adv - x), keeping the smallest wrong t tried; the
    refined point replaces x_adv only if a final check confirms it is still misclassified."""
    if steps == 0:
        return
    for chunk in idx.split(batch_size):
        x0, y0 = st.x[chunk], st.y[chunk]
        direction = st.x_adv[chunk] - x0
        shape = (-1,) + (1,) * (x0.ndim - 1)
        low = torch.zeros(chunk.numel(), device=x0.device)
        high = torch.ones(chunk.numel(), device=x0.device)
        for _ in range(steps):
            mid = (low + high) / 2
            wrong = model((x0 + mid.view(shape) * direction).clamp(0.0, 1.0)).argmax(dim=1) != y0
            high = torch.where(wrong, mid, high)
            low = torch.where(wrong, low, mid)
        refined = (x0 + high.view(shape) * direction).clamp(0.0, 1.0)
        pred = model(refined).argmax(dim=1)
        st.forward_evals[chunk] += steps + 1
        ok = pred != y0
        st.x_adv[chunk[ok]] = refined[ok]
        st.y_adv[chunk[ok]] = pred[ok]


def _warn_failures(st: _State, cfg: SearchConfig) -> None:
    failed = (~st.found).nonzero(as_tuple=True)[0]
    if failed.numel():
        warnings.warn(
            f"{failed.numel()} of {st.x.shape[0]} samples found no adversarial example after "
            f"{cfg.max_doublings} doublings of eps (reported with eps = inf); first indices: "
            f"{failed[:10].tolist()}",
            RuntimeWarning,
            stacklevel=3,
        )


def _result(st: _State, backend: AttackBackend, seconds: float, eps_init: float, num_classes: int) -> AdversarialSet:
    eps = torch.where(st.found, st.eps, torch.full_like(st.eps, math.inf))
    return AdversarialSet(
        x_adv=st.x_adv.cpu(),
        y_adv=st.y_adv.cpu(),
        y_true=st.y.cpu(),
        eps=eps.cpu(),
        distance_l2=perturbation_norm(st.x_adv, st.x, "l2").float().cpu(),
        grad_evals=st.grad_evals.cpu(),
        forward_evals=st.forward_evals.cpu(),
        found=st.found.cpu(),
        already_misclassified=(st.found & (st.eps == 0)).cpu(),
        doublings=st.doublings.cpu(),
        backend=backend.name,
        seconds=float(seconds),
        eps_init=float(eps_init),
        num_classes=int(num_classes),
    )
